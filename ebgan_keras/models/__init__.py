"""The GANs of the library, on one base class (`BaseGAN`).

`BaseGAN` holds what every model shares (networks, latent prior, the two
optimizers, the training step on every backend, saving); `EnergyGAN`
(autoencoder discriminator: EBGAN, EBGANPT, BEGAN, MAGAN), `GAN` (logit
discriminator) and `CriticGAN` (a scalar critic under a gradient penalty:
WGANGP, LossSensitiveGAN, GLSGAN) are its subclasses, each model file its
loss hooks.
"""

from ebgan_keras.models.base import BaseGAN
from ebgan_keras.models.began import BEGAN
from ebgan_keras.models.bigan import BiGAN
from ebgan_keras.models.critic import CriticGAN
from ebgan_keras.models.ebgan import EBGAN
from ebgan_keras.models.ebgan_pt import EBGANPT
from ebgan_keras.models.energy_gan import EnergyGAN
from ebgan_keras.models.gan import GAN
from ebgan_keras.models.gan_optimizer import GANOptimizer
from ebgan_keras.models.hooks import ModelHooks
from ebgan_keras.models.ladder import EBGANLN  # noqa: F401 (ek.semi_supervised)
from ebgan_keras.models.loss_sensitive_gan import GLSGAN
from ebgan_keras.models.loss_sensitive_gan import LossSensitiveGAN
from ebgan_keras.models.magan import MAGAN
from ebgan_keras.models.wgan_gp import WGANGP

__all__ = [
    "BEGAN",
    "EBGAN",
    "EBGANPT",
    "GAN",
    "GLSGAN",
    "MAGAN",
    "MODEL_CLASSES",
    "WGANGP",
    "BaseGAN",
    "BiGAN",
    "CriticGAN",
    "EnergyGAN",
    "GANOptimizer",
    "LossSensitiveGAN",
    "ModelHooks",
]
#: The model classes of the library, each also `ek.<name>`: `__all__` but
#: the helpers (the one list of them).
MODEL_CLASSES = tuple(
    name
    for name in __all__
    if name not in ("MODEL_CLASSES", "GANOptimizer", "ModelHooks")
)
