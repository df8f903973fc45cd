"""The BEGAN generator and autoencoder discriminator."""

from __future__ import annotations

import math

import keras
from keras import layers

from ebgan_keras.networks.conv import check_image_size


def _decoder(hidden, image_size: int, channels: int, filters: int, prefix: str):
    """BEGAN's decoder: dense to 8x8, (two 3x3 convs, nearest x2) per scale."""
    upsamplings = int(math.log2(image_size // 8))
    x = layers.Dense(8 * 8 * filters, name=f"{prefix}_project")(hidden)
    x = layers.Reshape((8, 8, filters), name=f"{prefix}_reshape")(x)
    for i in range(upsamplings + 1):
        for j in range(2):
            x = layers.Conv2D(
                filters, 3, padding="same", activation="elu", name=f"{prefix}_{i}_{j}"
            )(x)
        if i < upsamplings:
            x = layers.UpSampling2D(
                2, interpolation="nearest", name=f"{prefix}_up_{i}"
            )(x)
    return layers.Conv2D(channels, 3, padding="same", name=f"{prefix}_to_pixels")(x)


def _encoder(image_size: int, channels: int, filters: int, hidden_dim: int):
    """BEGAN's encoder: `(images input, h)` tensors (see `began_discriminator`)."""
    size = check_image_size(image_size)
    downsamplings = int(math.log2(size // 8))
    images = keras.Input((size, size, channels), name="images")
    x = layers.Conv2D(filters, 3, padding="same", activation="elu", name="encoder_in")(
        images
    )
    for i in range(downsamplings + 1):
        width = filters * (i + 1)
        for j in range(2):
            x = layers.Conv2D(
                width, 3, padding="same", activation="elu", name=f"encoder_{i}_{j}"
            )(x)
        if i < downsamplings:
            x = layers.Conv2D(
                filters * (i + 2),
                3,
                strides=2,
                padding="same",
                activation="elu",
                name=f"encoder_down_{i}",
            )(x)
    x = layers.Flatten(name="flatten")(x)
    return images, layers.Dense(hidden_dim, name="hidden")(x)


def began_generator(
    latent_dim: int = 64,
    image_size: int = 64,
    channels: int = 3,
    filters: int = 64,
    name: str = "began_generator",
) -> keras.Model:
    """BEGAN generator: the decoder of the BEGAN discriminator.

    Dense to `8 x 8 x filters`, then per scale two 3x3 convolutions with ELU
    and a nearest-neighbour upsampling, and a final 3x3 convolution to
    `channels` (no activation, as in the paper). No batch norm.

    Args:
        latent_dim: int. `N_z`. Defaults to `64`.
        image_size: int. A power of two from 8 to 256. Defaults to `64`.
        channels: int. Image channels. Defaults to `3`.
        filters: int. `n`, the channels of every convolution. Defaults to `64`.
        name: str. Model name.

    Returns:
        A functional `keras.Model` from `(N, latent_dim)` to images.

    Example:

    >>> g = began_generator(latent_dim=8, image_size=16, channels=1, filters=4)
    >>> g.output_shape
    (None, 16, 16, 1)
    """
    size = check_image_size(image_size)
    latents = keras.Input((latent_dim,), name="latents")
    images = _decoder(latents, size, channels, filters, "decoder")
    return keras.Model(latents, images, name=name)


def began_discriminator(
    image_size: int = 64,
    channels: int = 3,
    filters: int = 64,
    hidden_dim: int = 64,
    name: str = "began_discriminator",
) -> keras.Model:
    """BEGAN autoencoder discriminator.

    Encoder: a 3x3 convolution, then per scale two 3x3 convolutions (ELU) and
    a stride-2 3x3 convolution that subsamples, with `filters * (scale + 1)`
    channels (linear growth, as in the paper), down to 8x8, then a dense
    bottleneck `h` of `hidden_dim` units with no activation (the code).
    Decoder: as `began_generator`. No batch norm.

    Args:
        image_size: int. A power of two from 8 to 256. Defaults to `64`.
        channels: int. Image channels. Defaults to `3`.
        filters: int. `n`. Defaults to `64`.
        hidden_dim: int. `N_h`, size of the bottleneck. Defaults to `64`.
        name: str. Model name.

    Returns:
        A functional `keras.Model` from images to `(reconstruction, h)`.

    Example:

    >>> d = began_discriminator(image_size=16, channels=1, filters=4, hidden_dim=8)
    >>> [tuple(t.shape) for t in d.outputs]
    [(None, 16, 16, 1), (None, 8)]
    """
    images, hidden = _encoder(image_size, channels, filters, hidden_dim)
    size = check_image_size(image_size)
    reconstruction = _decoder(hidden, size, channels, filters, "decoder")
    return keras.Model(images, [reconstruction, hidden], name=name)


def began_gan_discriminator(
    image_size: int = 64,
    channels: int = 3,
    filters: int = 64,
    hidden_dim: int = 64,
    name: str = "began_gan_discriminator",
) -> keras.Model:
    """BEGAN's encoder with one logit: the `ek.GAN` baseline on BEGAN's nets.

    The encoder of `began_discriminator` (ELU convolutions to the dense
    bottleneck `h`), then a dense layer from `h` to one logit, in place of
    the decoder.

    Args:
        image_size: int. A power of two from 8 to 256. Defaults to `64`.
        channels: int. Image channels. Defaults to `3`.
        filters: int. `n`. Defaults to `64`.
        hidden_dim: int. `N_h`, size of the bottleneck. Defaults to `64`.
        name: str. Model name.

    Returns:
        A functional `keras.Model` from images to logits `(N, 1)`.

    Example:

    >>> d = began_gan_discriminator(image_size=16, channels=1, filters=4, hidden_dim=8)
    >>> d.output_shape
    (None, 1)
    """
    images, hidden = _encoder(image_size, channels, filters, hidden_dim)
    logits = layers.Dense(1, name="logit")(hidden)
    return keras.Model(images, logits, name=name)
