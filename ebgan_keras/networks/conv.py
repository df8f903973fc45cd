"""DCGAN-style networks: the generator, EBGAN's autoencoder critic, a scalar critic."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import layers

from ebgan_keras.networks.layers import LayerNormalization
from ebgan_keras.networks.layers import upsample_conv


def check_image_size(image_size: int, low: int = 8, high: int = 256) -> int:
    """Validates a power-of-two image size; returns it as int.

    Args:
        image_size: int. Height (= width) of the images.
        low: int. Smallest size accepted. Defaults to `8`.
        high: int. Largest size accepted. Defaults to `256`.

    Returns:
        `image_size` as an int.
    """
    size = int(image_size)
    if size != image_size or size < low or size > high or size & (size - 1):
        raise ValueError(
            f"`image_size` must be a power of two from {low} to {high}. "
            f"Received: image_size={image_size!r}"
        )
    return size


def _check_filters(filters: Sequence[int], size: int) -> tuple[int, ...]:
    """The encoder's filters as ints: 1 to log2(size) stride-2 layers."""
    filters = tuple(int(f) for f in filters)
    if not filters or size >> len(filters) < 1:
        raise ValueError(
            f"`filters` must have between 1 and log2(image_size) entries. "
            f"Received: filters={filters} for image_size={size}"
        )
    return filters


def dcgan_generator(
    latent_dim: int = 100,
    image_size: int = 64,
    channels: int = 3,
    filters: int = 64,
    name: str = "dcgan_generator",
) -> keras.Model:
    """DCGAN-style generator used by EBGAN for CelebA, LSUN and ImageNet.

    A dense projection to `4 x 4 x filters * image_size / 8`, then
    4x4 stride-2 transposed convolutions (`FastConv2DTranspose`) that double
    the size and halve the channels, with batch norm and ReLU, up to
    `image_size` with `channels` outputs and `tanh`.

    Args:
        latent_dim: int. Size of the latent input. Defaults to `100`.
        image_size: int. A power of two from 8 to 256. Defaults to `64`.
        channels: int. Image channels. Defaults to `3`.
        filters: int. Channels of the last hidden layer; they double at each
            smaller scale. Defaults to `64`.
        name: str. Model name.

    Returns:
        A functional `keras.Model` from `(N, latent_dim)` to
        `(N, image_size, image_size, channels)`.

    Example:

    >>> g = dcgan_generator(latent_dim=16, image_size=32, channels=1, filters=8)
    >>> g.output_shape
    (None, 32, 32, 1)
    """
    size = check_image_size(image_size)
    upsamplings = int(math.log2(size // 4))
    width = filters * 2 ** (upsamplings - 1)
    latents = keras.Input((latent_dim,), name="latents")
    x = layers.Dense(4 * 4 * width, use_bias=False, name="project")(latents)
    x = layers.Reshape((4, 4, width), name="reshape")(x)
    x = layers.BatchNormalization(name="project_batch_norm")(x)
    x = layers.ReLU(name="project_relu")(x)
    for i in range(upsamplings - 1):
        width //= 2
        x = upsample_conv(width, use_bias=False, name=f"up_{i}")(x)
        x = layers.BatchNormalization(name=f"up_{i}_batch_norm")(x)
        x = layers.ReLU(name=f"up_{i}_relu")(x)
    x = upsample_conv(channels, name="to_pixels")(x)
    images = layers.Activation("tanh", name="images")(x)
    return keras.Model(latents, images, name=name)


def _batch_norm_encoder(image_size: int, channels: int, filters: Sequence[int]):
    """EBGAN's convolutional encoder: `(images input, code)` tensors."""
    size = check_image_size(image_size)
    filters = _check_filters(filters, size)
    images = keras.Input((size, size, channels), name="images")
    x = images
    for i, width in enumerate(filters):
        x = layers.Conv2D(
            width, 4, strides=2, padding="same", use_bias=i == 0, name=f"down_{i}"
        )(x)
        if i > 0:
            x = layers.BatchNormalization(name=f"down_{i}_batch_norm")(x)
        x = layers.LeakyReLU(0.2, name=f"down_{i}_leaky_relu")(x)
    return images, x


def ebgan_conv_discriminator(
    image_size: int = 64,
    channels: int = 3,
    filters: Sequence[int] = (64, 128, 256),
    name: str = "ebgan_conv_discriminator",
) -> keras.Model:
    """Convolutional autoencoder discriminator of EBGAN.

    Encoder `(64)4c2s-(128)4c2s-(256)4c2s` (batch norm after all but the
    first, leaky ReLU 0.2); its output is the code. The decoder mirrors it
    with 4x4 stride-2 transposed convolutions, batch norm and leaky ReLU, and
    ends in `channels` outputs with `tanh`.

    Args:
        image_size: int. A power of two from 8 to 256. Defaults to `64`.
        channels: int. Image channels. Defaults to `3`.
        filters: tuple of int. Channels of each encoder layer. Defaults to
            `(64, 128, 256)`, the paper's.
        name: str. Model name.

    Returns:
        A functional `keras.Model` from images to `(reconstruction, code)`,
        the code of shape `(N, image_size / 2^len(filters), ..., filters[-1])`.

    Example:

    >>> d = ebgan_conv_discriminator(image_size=32, channels=1, filters=(8, 16))
    >>> [tuple(t.shape) for t in d.outputs]
    [(None, 32, 32, 1), (None, 8, 8, 16)]
    """
    images, code = _batch_norm_encoder(image_size, channels, filters)
    filters = _check_filters(filters, check_image_size(image_size))
    x = code
    for i, width in enumerate(reversed(filters[:-1])):
        x = upsample_conv(width, use_bias=False, name=f"up_{i}")(x)
        x = layers.BatchNormalization(name=f"up_{i}_batch_norm")(x)
        x = layers.LeakyReLU(0.2, name=f"up_{i}_leaky_relu")(x)
    x = upsample_conv(channels, name="to_pixels")(x)
    reconstruction = layers.Activation("tanh", name="reconstruction")(x)
    return keras.Model(images, [reconstruction, code], name=name)


def gan_conv_discriminator(
    image_size: int = 64,
    channels: int = 3,
    filters: Sequence[int] = (64, 128, 256),
    name: str = "gan_conv_discriminator",
) -> keras.Model:
    """DCGAN discriminator: the encoder of `ebgan_conv_discriminator`, one logit.

    The same convolutions, batch norm and leaky ReLU as the autoencoder
    discriminator's encoder, flattened into a dense layer to one logit: the
    like-for-like `ek.GAN` baseline of the convolutional energy-based entries.

    Args:
        image_size: int. A power of two from 8 to 256. Defaults to `64`.
        channels: int. Image channels. Defaults to `3`.
        filters: tuple of int. Channels of each convolution. Defaults to
            `(64, 128, 256)`.
        name: str. Model name.

    Returns:
        A functional `keras.Model` from images to logits `(N, 1)`.

    Example:

    >>> d = gan_conv_discriminator(image_size=32, channels=1, filters=(8, 16))
    >>> d.output_shape
    (None, 1)
    """
    images, code = _batch_norm_encoder(image_size, channels, filters)
    x = layers.Flatten(name="flatten")(code)
    logits = layers.Dense(1, name="logit")(x)
    return keras.Model(images, logits, name=name)


def dcgan_critic(
    image_size: int = 64,
    channels: int = 3,
    filters: Sequence[int] = (64, 128, 256),
    normalization: str | None = "layer",
    name: str = "dcgan_critic",
) -> keras.Model:
    """DCGAN-style critic with one score per image and no batch norm.

    The encoder of `ebgan_conv_discriminator` (4x4 stride-2 convolutions,
    leaky ReLU 0.2) with a dense head to one unbounded score. Batch norm is
    replaced by layer norm (or nothing): a gradient penalty constrains each
    sample's score alone, which batch statistics would mix (Gulrajani et al.,
    2017, section 4). The layer norm is `ek.networks.LayerNormalization`,
    whose second derivative is exact on TensorFlow too. For `ek.WGANGP`,
    `ek.LossSensitiveGAN` and `ek.GLSGAN`.

    Args:
        image_size: int. A power of two from 8 to 256. Defaults to `64`.
        channels: int. Image channels. Defaults to `3`.
        filters: tuple of int. Channels of each convolution. Defaults to
            `(64, 128, 256)`.
        normalization: str or None. `"layer"` (layer norm after every
            convolution but the first) or `None`. Defaults to `"layer"`.
        name: str. Model name.

    Returns:
        A functional `keras.Model` from images to scores `(N, 1)`.

    Example:

    >>> d = dcgan_critic(image_size=32, channels=1, filters=(8, 16))
    >>> d.output_shape
    (None, 1)
    """
    size = check_image_size(image_size)
    filters = _check_filters(filters, size)
    if normalization not in ("layer", None):
        raise ValueError(
            "`normalization` must be 'layer' or None (no batch norm under a "
            f"gradient penalty). Received: normalization={normalization!r}"
        )
    images = keras.Input((size, size, channels), name="images")
    x = images
    for i, width in enumerate(filters):
        x = layers.Conv2D(width, 4, strides=2, padding="same", name=f"down_{i}")(x)
        if i > 0 and normalization == "layer":
            x = LayerNormalization(name=f"down_{i}_layer_norm")(x)
        x = layers.LeakyReLU(0.2, name=f"down_{i}_leaky_relu")(x)
    x = layers.Flatten(name="flatten")(x)
    scores = layers.Dense(1, name="score")(x)
    return keras.Model(images, scores, name=name)
