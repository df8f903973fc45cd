"""Architectures of the papers, each a function returning a Keras model."""

from ebgan_keras.networks.began import began_discriminator
from ebgan_keras.networks.began import began_gan_discriminator
from ebgan_keras.networks.began import began_generator
from ebgan_keras.networks.bigan import bigan_mlp_discriminator
from ebgan_keras.networks.bigan import bigan_mlp_encoder
from ebgan_keras.networks.conv import dcgan_critic
from ebgan_keras.networks.conv import dcgan_generator
from ebgan_keras.networks.conv import ebgan_conv_discriminator
from ebgan_keras.networks.conv import gan_conv_discriminator
from ebgan_keras.networks.ladder import LadderNetwork  # noqa: F401
from ebgan_keras.networks.layers import FastConv2DTranspose
from ebgan_keras.networks.layers import LayerNormalization
from ebgan_keras.networks.mlp import ebgan_mlp_discriminator
from ebgan_keras.networks.mlp import ebgan_mlp_generator
from ebgan_keras.networks.mlp import gan_mlp_discriminator

__all__ = [
    "FastConv2DTranspose",
    "LayerNormalization",
    "began_discriminator",
    "began_gan_discriminator",
    "began_generator",
    "bigan_mlp_discriminator",
    "bigan_mlp_encoder",
    "dcgan_critic",
    "dcgan_generator",
    "ebgan_conv_discriminator",
    "ebgan_mlp_discriminator",
    "ebgan_mlp_generator",
    "gan_conv_discriminator",
    "gan_mlp_discriminator",
]
