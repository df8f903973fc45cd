"""The energy-based GANs of the library."""

from ebgan_keras.models.began import BEGAN
from ebgan_keras.models.ebgan import EBGAN
from ebgan_keras.models.ebgan_pt import EBGANPT
from ebgan_keras.models.energy_gan import EnergyGAN
from ebgan_keras.models.gan import GAN
from ebgan_keras.models.gan_optimizer import GANOptimizer
from ebgan_keras.models.magan import MAGAN

__all__ = ["BEGAN", "EBGAN", "EBGANPT", "EnergyGAN", "GAN", "GANOptimizer", "MAGAN"]
