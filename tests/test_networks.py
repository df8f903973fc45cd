"""The papers' architectures and the fast transposed convolution."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

import ebgan_keras as ek


@pytest.mark.parametrize("filters", [1, 3, 7, 32])
def test_fast_conv_transpose_equals_keras_conv_transpose(rng, filters):
    # On JAX, 1-3 filters take XLA's own op, 4-31 the fused convolution and
    # 32 and more the four phase convolutions: `call` must match on each.
    x = rng.normal(size=(3, 5, 6, 4)).astype("float32")
    reference = keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same")
    expected = ops.convert_to_numpy(reference(x))
    fast = ek.networks.FastConv2DTranspose(filters)
    fast.build(x.shape)
    fast.set_weights(reference.get_weights())
    np.testing.assert_allclose(ops.convert_to_numpy(fast(x)), expected, atol=1e-5)


@pytest.mark.parametrize("filters", [1, 6, 32, 40])
def test_fast_conv_transpose_phase_path_equals_keras_on_every_backend(rng, filters):
    # The phase decomposition runs on JAX (one fused convolution below 32
    # filters, four phase convolutions from 32); check its maths everywhere.
    x = rng.normal(size=(2, 3, 4, 5)).astype("float32")
    reference = keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same")
    expected = ops.convert_to_numpy(reference(x))
    fast = ek.networks.FastConv2DTranspose(filters, use_bias=False)
    fast.build(x.shape)
    fast.set_weights(reference.get_weights()[:1])
    bias = ops.convert_to_numpy(reference.bias)
    phased = ops.convert_to_numpy(fast._phase_conv_transpose(x)) + bias
    np.testing.assert_allclose(phased, expected, atol=1e-5)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_dcgan_and_conv_discriminator_shapes(size):
    generator = ek.networks.dcgan_generator(
        latent_dim=8, image_size=size, channels=3, filters=4
    )
    discriminator = ek.networks.ebgan_conv_discriminator(
        image_size=size, channels=3, filters=(4, 8, 16)
    )
    assert generator.output_shape == (None, size, size, 3)
    reconstruction, code = discriminator.outputs
    assert tuple(reconstruction.shape) == (None, size, size, 3)
    assert tuple(code.shape) == (None, size // 8, size // 8, 16)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_began_shapes(size):
    generator = ek.networks.began_generator(
        latent_dim=8, image_size=size, channels=1, filters=4
    )
    discriminator = ek.networks.began_discriminator(
        image_size=size, channels=1, filters=4, hidden_dim=8
    )
    assert generator.output_shape == (None, size, size, 1)
    assert [tuple(t.shape) for t in discriminator.outputs] == [
        (None, size, size, 1),
        (None, 8),
    ]
    # No batch norm anywhere in BEGAN.
    for model in (generator, discriminator):
        assert not any(
            isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers
        )


def test_mlp_paper_setting():
    generator = ek.networks.ebgan_mlp_generator(latent_dim=64)
    discriminator = ek.networks.ebgan_mlp_discriminator()
    assert generator.output_shape == (None, 28, 28, 1)
    assert [tuple(t.shape) for t in discriminator.outputs] == [
        (None, 28, 28, 1),
        (None, 512),
    ]
    dense = [
        layer.units
        for layer in generator.layers
        if isinstance(layer, keras.layers.Dense)
    ]
    assert dense == [1024, 1024, 784]


@pytest.mark.parametrize(
    "builder",
    [
        lambda: ek.networks.dcgan_generator(latent_dim=8, image_size=32, filters=4),
        lambda: ek.networks.ebgan_conv_discriminator(image_size=32, filters=(4, 8)),
        lambda: ek.networks.began_discriminator(image_size=16, filters=4, hidden_dim=8),
    ],
)
def test_networks_round_trip_through_config(builder, rng):
    model = builder()
    clone = keras.Model.from_config(
        model.get_config(),
        custom_objects={"FastConv2DTranspose": ek.networks.FastConv2DTranspose},
    )
    clone.set_weights(model.get_weights())
    x = rng.uniform(-1, 1, (2, *model.input_shape[1:])).astype("float32")
    for a, b in zip(keras.tree.flatten(model(x)), keras.tree.flatten(clone(x))):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b))


@pytest.mark.parametrize("size", [0, 48, 512, 32.5])
def test_image_size_must_be_power_of_two(size):
    with pytest.raises(ValueError, match=f"Received: image_size={size!r}"):
        ek.networks.dcgan_generator(image_size=size)


def test_image_shape_must_be_three_dimensional():
    with pytest.raises(ValueError, match=r"Received: image_shape=\(28, 28\)"):
        ek.networks.ebgan_mlp_generator(image_shape=(28, 28))
