"""Architectures of the papers, each a function returning a Keras model."""

from ebgan_keras.networks.mlp import ebgan_mlp_discriminator
from ebgan_keras.networks.mlp import ebgan_mlp_generator

__all__ = ["ebgan_mlp_discriminator", "ebgan_mlp_generator"]
