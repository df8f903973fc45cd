"""Fully connected BiGAN networks for MNIST: an encoder and a joint discriminator."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from ebgan_keras.networks.mlp import _check_shape


def bigan_mlp_encoder(
    image_shape: Sequence[int] = (28, 28, 1),
    latent_dim: int = 64,
    hidden_units: Sequence[int] = (1024, 1024),
    batch_norm: bool = True,
    name: str = "bigan_mlp_encoder",
) -> keras.Model:
    """Fully connected encoder `E(x) -> z` of BiGAN's MNIST model.

    `prod(image_shape) -> hidden_units... -> latent_dim`, leaky ReLU (0.2,
    after batch norm) in the hidden layers and a linear output: the mirror of
    `ek.networks.ebgan_mlp_generator` (Donahue et al., 2017, used such a
    fully connected encoder on MNIST).

    Args:
        image_shape: tuple of int. Input image shape. Defaults to
            `(28, 28, 1)`.
        latent_dim: int. Size of the code, the generator's latent size.
            Defaults to `64`.
        hidden_units: tuple of int. Width of each hidden layer. Defaults to
            `(1024, 1024)`.
        batch_norm: bool. Batch norm after each hidden layer. Defaults to
            `True`.
        name: str. Model name.

    Returns:
        A functional `keras.Model` from images to latents `(N, latent_dim)`.

    Example:

    >>> e = bigan_mlp_encoder(latent_dim=16, hidden_units=(64,))
    >>> e.output_shape
    (None, 16)
    """
    image_shape = _check_shape(image_shape)
    images = keras.Input(image_shape, name="images")
    x = layers.Flatten(name="flatten")(images)
    for i, units in enumerate(hidden_units):
        x = layers.Dense(units, use_bias=not batch_norm, name=f"dense_{i}")(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"batch_norm_{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"leaky_relu_{i}")(x)
    latents = layers.Dense(int(latent_dim), name="latents")(x)
    return keras.Model(images, latents, name=name)


def bigan_mlp_discriminator(
    image_shape: Sequence[int] = (28, 28, 1),
    latent_dim: int = 64,
    image_units: Sequence[int] = (1024, 512),
    latent_units: Sequence[int] = (512,),
    joint_units: Sequence[int] = (1024,),
    unary_terms: bool = False,
    name: str = "bigan_mlp_discriminator",
) -> keras.Model:
    """Fully connected joint discriminator `D(x, z)` of BiGAN and BigBiGAN.

    An `x` trunk (`image_units`, leaky ReLU 0.2) and a `z` trunk
    (`latent_units`) are concatenated into a joint head (`joint_units`) that
    ends in one score `s_xz`. With `unary_terms=True` (BigBiGAN, Donahue and
    Simonyan, 2019), each trunk also ends in a score of its own, `s_x` and
    `s_z`, and the model returns `[s_x, s_z, s_xz]`; the joint head is the
    same in both forms, so a BiGAN discriminator is the BigBiGAN one without
    its two unary heads. No batch norm: the scores of a sample depend on that
    sample only.

    Args:
        image_shape: tuple of int. Input image shape. Defaults to
            `(28, 28, 1)`.
        latent_dim: int. Size of the latent input. Defaults to `64`.
        image_units: tuple of int. Widths of the `x` trunk. Defaults to
            `(1024, 512)`.
        latent_units: tuple of int. Widths of the `z` trunk. Defaults to
            `(512,)`.
        joint_units: tuple of int. Widths of the joint head. Defaults to
            `(1024,)`.
        unary_terms: bool. Also return the unary scores. Defaults to `False`.
        name: str. Model name.

    Returns:
        A functional `keras.Model` from `[images, latents]` to the joint
        score `(N, 1)`, or to `[s_x, s_z, s_xz]`, each `(N, 1)`.

    Example:

    >>> d = bigan_mlp_discriminator(latent_dim=16, image_units=(64,),
    ...                             latent_units=(32,), joint_units=(64,),
    ...                             unary_terms=True)
    >>> [tuple(t.shape) for t in d.outputs]
    [(None, 1), (None, 1), (None, 1)]
    """
    image_shape = _check_shape(image_shape)
    images = keras.Input(image_shape, name="images")
    latents = keras.Input((int(latent_dim),), name="latents")
    x = layers.Flatten(name="flatten")(images)
    for i, units in enumerate(image_units):
        x = layers.Dense(units, name=f"image_{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"image_{i}_leaky_relu")(x)
    z = latents
    for i, units in enumerate(latent_units):
        z = layers.Dense(units, name=f"latent_{i}")(z)
        z = layers.LeakyReLU(0.2, name=f"latent_{i}_leaky_relu")(z)
    joint = layers.Concatenate(name="joint")([x, z])
    for i, units in enumerate(joint_units):
        joint = layers.Dense(units, name=f"joint_{i}")(joint)
        joint = layers.LeakyReLU(0.2, name=f"joint_{i}_leaky_relu")(joint)
    score_xz = layers.Dense(1, name="score_xz")(joint)
    if not unary_terms:
        return keras.Model([images, latents], score_xz, name=name)
    score_x = layers.Dense(1, name="score_x")(x)
    score_z = layers.Dense(1, name="score_z")(z)
    return keras.Model([images, latents], [score_x, score_z, score_xz], name=name)
