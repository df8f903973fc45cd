"""ek.GAN: the non-saturating baseline on the shared core."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import IMAGE_SHAPE
from helpers import LATENT_DIM
from helpers import fixed_latent_class
from helpers import numpy_weights
from helpers import tiny_generator
from helpers import tiny_images
from keras import ops

import ebgan_keras as ek


def tiny_gan(cls=ek.GAN, **kwargs):
    kwargs.setdefault("seed", 0)
    discriminator = ek.networks.gan_mlp_discriminator(
        image_shape=IMAGE_SHAPE, hidden_units=(16,)
    )
    return cls(tiny_generator(), discriminator, **kwargs)


def softplus(x):
    return np.logaddexp(0.0, x)


def test_energy_is_minus_the_logit():
    model = tiny_gan()
    images = tiny_images(5)
    logits = ops.convert_to_numpy(model.discriminator(images))[:, 0]
    np.testing.assert_allclose(model.energy(images), -logits, rtol=1e-5, atol=1e-6)


def test_losses_are_the_non_saturating_gan_losses():
    model = tiny_gan()
    real = tiny_images(6)
    latents = np.random.default_rng(1).standard_normal((6, LATENT_DIM))
    latents = latents.astype("float32")
    fake = ops.convert_to_numpy(model.generator(latents, training=False))
    logit_real = ops.convert_to_numpy(model.discriminator(real))[:, 0]
    logit_fake = ops.convert_to_numpy(model.discriminator(fake))[:, 0]
    d_loss, aux = model.discriminator_loss(real, latents, training=False)
    expected_d = np.mean(softplus(-logit_real)) + np.mean(softplus(logit_fake))
    np.testing.assert_allclose(ops.convert_to_numpy(d_loss), expected_d, rtol=1e-5)
    np.testing.assert_allclose(
        ops.convert_to_numpy(aux["energy_real"]), -logit_real.mean(), rtol=1e-5
    )
    g_loss, _ = model.generator_loss(latents, training=False)
    # Non-saturating: -log sigmoid(D(G(z))), not log(1 - sigmoid(D(G(z)))).
    np.testing.assert_allclose(
        ops.convert_to_numpy(g_loss), np.mean(softplus(-logit_fake)), rtol=1e-5
    )


def test_one_step_moves_both_networks_like_the_formula():
    cls = fixed_latent_class(ek.GAN)
    model = tiny_gan(cls)
    rng = np.random.default_rng(2)
    model.fixed_latents = rng.standard_normal((8, LATENT_DIM)).astype("float32")
    model.compile(keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.1))
    before = numpy_weights(model.discriminator)
    g_before = numpy_weights(model.generator)
    history = model.fit(tiny_images(8), batch_size=8, epochs=1, verbose=0)
    assert {"d_loss", "g_loss", "energy_real", "energy_fake"} <= set(history.history)
    assert all(
        not np.allclose(a, b)
        for a, b in zip(before, numpy_weights(model.discriminator))
    )
    assert any(
        not np.allclose(a, b) for a, b in zip(g_before, numpy_weights(model.generator))
    )
    d_iterations, g_iterations = (
        int(ops.convert_to_numpy(o.iterations))
        for o in (model.d_optimizer, model.g_optimizer)
    )
    assert d_iterations == g_iterations == 1


def test_default_optimizers_are_the_dcgan_setting():
    d_optimizer, g_optimizer = tiny_gan().default_optimizers()
    for optimizer in (d_optimizer, g_optimizer):
        assert float(ops.convert_to_numpy(optimizer.learning_rate)) == pytest.approx(
            2e-4
        )
        assert optimizer.beta_1 == 0.5


def test_discriminator_must_return_one_logit():
    with pytest.raises(ValueError, match="one logit per image"):
        ek.GAN(tiny_generator(), ek.networks.ebgan_mlp_discriminator(IMAGE_SHAPE))


def test_save_load_and_ddls_in_logit_form(tmp_path):
    model = tiny_gan()
    model.compile()
    model.fit(tiny_images(16), batch_size=8, epochs=1, verbose=0)
    path = tmp_path / "gan.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, ek.GAN)
    images = tiny_images(4)
    np.testing.assert_allclose(loaded.energy(images), model.energy(images), atol=1e-5)
    sampler = ek.samplers.DDLS(step_size=0.01, num_steps=3, seed=0)
    samples, latents = sampler.sample(loaded, 4)
    assert samples.shape == (4, *IMAGE_SHAPE) and np.all(np.isfinite(samples))
    assert latents.shape == (4, LATENT_DIM)
