"""The fully connected MNIST networks of the EBGAN paper."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
from keras import layers


def ebgan_mlp_generator(
    latent_dim: int = 64,
    image_shape: Sequence[int] = (28, 28, 1),
    hidden_units: Sequence[int] = (1024, 1024),
    batch_norm: bool = True,
    name: str = "ebgan_mlp_generator",
) -> keras.Model:
    """Fully connected generator of the EBGAN paper's MNIST grid.

    `latent_dim -> hidden_units... -> prod(image_shape)`, ReLU (after batch
    norm) in the hidden layers and `tanh` at the output, so images lie in
    `[-1, 1]`. The paper searched depth in {2..5} and width in {400..3200}.

    Args:
        latent_dim: int. Size of the latent input. Defaults to `64`.
        image_shape: tuple of int. Output image shape. Defaults to
            `(28, 28, 1)`.
        hidden_units: tuple of int. Width of each hidden layer. Defaults to
            `(1024, 1024)`.
        batch_norm: bool. Batch norm after each hidden layer. Defaults to
            `True`.
        name: str. Model name.

    Returns:
        A functional `keras.Model` from `(N, latent_dim)` to
        `(N, *image_shape)`.

    Example:

    >>> g = ebgan_mlp_generator(latent_dim=64, hidden_units=(256,))
    >>> g.output_shape
    (None, 28, 28, 1)
    """
    image_shape = _check_shape(image_shape)
    latents = keras.Input((latent_dim,), name="latents")
    x = latents
    for i, units in enumerate(hidden_units):
        x = layers.Dense(units, use_bias=not batch_norm, name=f"dense_{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"batch_norm_{i}")(x)
        x = layers.ReLU(name=f"relu_{i}")(x)
    x = layers.Dense(math.prod(image_shape), activation="tanh", name="to_pixels")(x)
    images = layers.Reshape(image_shape, name="images")(x)
    return keras.Model(latents, images, name=name)


def ebgan_mlp_discriminator(
    image_shape: Sequence[int] = (28, 28, 1),
    encoder_units: Sequence[int] = (1024, 512),
    batch_norm: bool = False,
    dropout: float = 0.0,
    name: str = "ebgan_mlp_discriminator",
) -> keras.Model:
    """Fully connected autoencoder discriminator of the EBGAN paper's MNIST grid.

    Encoder `prod(image_shape) -> encoder_units...` with ReLU (the last
    layer's output is the code used by the pulling-away term); decoder a
    single layer back to the pixels with `tanh`, as in the paper.

    Args:
        image_shape: tuple of int. Input image shape. Defaults to
            `(28, 28, 1)`.
        encoder_units: tuple of int. Width of each encoder layer; the last is
            the code size. Defaults to `(1024, 512)`.
        batch_norm: bool. Batch norm in the encoder's hidden layers.
            Defaults to `False`.
        dropout: float. Dropout rate after each encoder layer (the paper's
            grid switches dropout in D on and off). Defaults to `0.0` (none).
        name: str. Model name.

    Returns:
        A functional `keras.Model` from images to `(reconstruction, code)`.

    Example:

    >>> d = ebgan_mlp_discriminator(encoder_units=(256, 128))
    >>> [tuple(t.shape) for t in d.outputs]
    [(None, 28, 28, 1), (None, 128)]
    """
    image_shape = _check_shape(image_shape)
    _check_rate(dropout)
    images = keras.Input(image_shape, name="images")
    x = layers.Flatten(name="flatten")(images)
    for i, units in enumerate(encoder_units):
        last = i == len(encoder_units) - 1
        x = layers.Dense(units, use_bias=last or not batch_norm, name=f"encoder_{i}")(x)
        if batch_norm and not last:
            x = layers.BatchNormalization(name=f"encoder_batch_norm_{i}")(x)
        x = layers.ReLU(name=f"encoder_relu_{i}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"encoder_dropout_{i}")(x)
    code = x
    x = layers.Dense(math.prod(image_shape), activation="tanh", name="decoder")(code)
    reconstruction = layers.Reshape(image_shape, name="reconstruction")(x)
    return keras.Model(images, [reconstruction, code], name=name)


def _check_shape(image_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(d) for d in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            "`image_shape` must be (height, width, channels) of positive ints. "
            f"Received: image_shape={tuple(image_shape)}"
        )
    return shape


def _check_rate(dropout: float) -> None:
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(
            f"`dropout` must be a rate in [0, 1). Received: dropout={dropout!r}"
        )


def gan_mlp_discriminator(
    image_shape: Sequence[int] = (28, 28, 1),
    hidden_units: Sequence[int] = (1024, 512),
    dropout: float = 0.0,
    name: str = "gan_mlp_discriminator",
) -> keras.Model:
    """Fully connected GAN discriminator: the EBGAN encoder with one logit.

    `prod(image_shape) -> hidden_units...` with leaky ReLU (0.2), then a
    dense layer to one logit: the same body as `ebgan_mlp_discriminator`'s
    encoder, so that `ek.GAN` and the energy-based models compare on equal
    networks.

    Args:
        image_shape: tuple of int. Input image shape. Defaults to
            `(28, 28, 1)`.
        hidden_units: tuple of int. Width of each hidden layer. Defaults to
            `(1024, 512)`.
        dropout: float. Dropout rate after each hidden layer. Defaults to
            `0.0` (none).
        name: str. Model name.

    Returns:
        A functional `keras.Model` from images to logits `(N, 1)`.

    Example:

    >>> d = gan_mlp_discriminator(hidden_units=(256,))
    >>> d.output_shape
    (None, 1)
    """
    image_shape = _check_shape(image_shape)
    _check_rate(dropout)
    images = keras.Input(image_shape, name="images")
    x = layers.Flatten(name="flatten")(images)
    for i, units in enumerate(hidden_units):
        x = layers.Dense(units, name=f"hidden_{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"hidden_{i}_leaky_relu")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"hidden_{i}_dropout")(x)
    logits = layers.Dense(1, name="logit")(x)
    return keras.Model(images, logits, name=name)
