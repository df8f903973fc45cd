"""ebgan_keras: energy-based GANs for Keras 3 on TensorFlow, JAX and PyTorch."""

from ebgan_keras import callbacks
from ebgan_keras import data
from ebgan_keras import losses
from ebgan_keras import metrics
from ebgan_keras import networks
from ebgan_keras import plot
from ebgan_keras import samplers
from ebgan_keras import zoo
from ebgan_keras.models import BEGAN
from ebgan_keras.models import EBGAN
from ebgan_keras.models import EBGANPT
from ebgan_keras.models import GAN
from ebgan_keras.models import MAGAN
from ebgan_keras.models import EnergyGAN

__version__ = "0.1.0"

__all__ = [
    "BEGAN",
    "EBGAN",
    "EBGANPT",
    "MAGAN",
    "GAN",
    "EnergyGAN",
    "callbacks",
    "data",
    "losses",
    "metrics",
    "networks",
    "plot",
    "samplers",
    "zoo",
]
