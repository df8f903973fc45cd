"""The shared base: a new model is one file of hooks; epoch rules run through fit."""

from __future__ import annotations

import keras
import numpy as np
from helpers import IMAGE_SHAPE
from helpers import tiny_discriminator
from helpers import tiny_generator
from helpers import tiny_images
from helpers import tiny_model
from keras import ops

import ebgan_keras as ek
from ebgan_keras import backend


def value(x) -> float:
    return float(np.asarray(ops.convert_to_numpy(x)))


class CriticGAN(ek.models.BaseGAN):
    """WGAN-GP written as hooks only: what a future model file holds."""

    discriminator_steps = 2
    tracked_logs = ek.models.BaseGAN.tracked_logs + ("penalty",)

    def default_optimizers(self):
        return (
            keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9),
            keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9),
        )

    def check_discriminator(self, discriminator):
        outputs = self.discriminator_output_spec()
        if tuple(outputs.shape[1:]) != (1,):
            raise ValueError(f"One score per image. Received: {outputs.shape}")

    def compute_energy(self, images, training=False):
        scores = ops.reshape(self.discriminator(images, training=training), (-1,))
        scores = ops.cast(scores, "float32")
        return -scores, scores

    def discriminator_loss(self, real, latents, training=True):
        fake = ops.stop_gradient(self.generator(latents, training=training))
        energy_real, _ = self.compute_energy(real, training=training)
        energy_fake, _ = self.compute_energy(fake, training=training)
        mix = keras.random.uniform(
            (ops.shape(real)[0], 1, 1, 1), seed=self.seed_generator
        )
        mixed = mix * real + (1.0 - mix) * fake
        _, gradient = backend.input_value_and_grad(
            lambda x: self.compute_energy(x, training=training)[0], mixed
        )
        norm = ops.sqrt(ops.sum(ops.square(gradient), axis=(1, 2, 3)) + 1e-12)
        penalty = ops.mean(ops.square(norm - 1.0))
        loss = ops.mean(energy_real) - ops.mean(energy_fake) + 10.0 * penalty
        aux = {
            "energy_real": ops.mean(energy_real),
            "energy_fake": ops.mean(energy_fake),
            "penalty": penalty,
        }
        return loss, aux

    def generator_loss(self, latents, training=True):
        fake = self.generator(latents, training=training)
        energy_fake, _ = self.compute_energy(fake, training=training)
        return ops.mean(energy_fake), {}


def test_a_new_model_is_one_class_of_hooks():
    critic = ek.networks.gan_mlp_discriminator(IMAGE_SHAPE, hidden_units=(16,))
    model = CriticGAN(tiny_generator(batch_norm=False), critic, seed=0)
    model.compile()
    before = [ops.convert_to_numpy(v).copy() for v in critic.trainable_variables]
    history = model.fit(tiny_images(32), batch_size=16, epochs=1, verbose=0)
    for name in ("d_loss", "g_loss", "penalty"):
        assert np.all(np.isfinite(history.history[name])), name
    # Two critic updates per generator update (discriminator_steps).
    assert int(value(model.d_optimizer.iterations)) == 4
    assert int(value(model.g_optimizer.iterations)) == 2
    assert int(value(model.optimizer.iterations)) == 2
    after = [ops.convert_to_numpy(v) for v in critic.trainable_variables]
    # Every kernel moved (the output bias cancels out of the critic loss).
    assert all(not np.allclose(a, b) for a, b in zip(after, before) if a.ndim == 2)
    # The samplers work on it through `compute_energy`.
    images, _ = ek.samplers.DDLS(step_size=0.01, num_steps=2, seed=0).sample(model, 3)
    assert images.shape == (3, *IMAGE_SHAPE)


class CountingEBGAN(ek.EBGAN):
    """Counts its epoch hook calls; turns the generator on after the first epoch."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = []
        self.generator_on = False

    @property
    def trains_generator(self):
        return self.generator_on

    def on_train_begin(self):
        self.calls.append("begin")
        return False

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(epoch)
        changed = not self.generator_on
        self.generator_on = True
        return changed


def _counting_model():
    return CountingEBGAN(tiny_generator(), tiny_discriminator(), margin=2.0, seed=0)


def test_fit_runs_the_model_hooks_once_and_rebuilds_the_step():
    model = _counting_model()
    model.compile()
    model.fit(tiny_images(32), batch_size=16, epochs=3, verbose=0)
    assert model.calls == ["begin", 0, 1, 2]
    # The step traced without the generator was rebuilt after epoch 0.
    assert int(value(model.g_optimizer.iterations)) == 4
    assert int(value(model.d_optimizer.iterations)) == 6


def test_passing_the_maganmarginupdate_callback_does_not_run_the_hooks_twice():
    model = _counting_model()
    model.compile()
    callback = ek.callbacks.MAGANMarginUpdate()
    assert isinstance(callback, ek.models.ModelHooks)
    model.fit(tiny_images(32), batch_size=16, epochs=2, verbose=0, callbacks=[callback])
    assert model.calls == ["begin", 0, 1]


def test_energy_and_logit_models_are_siblings():
    assert issubclass(ek.EnergyGAN, ek.models.BaseGAN)
    assert issubclass(ek.GAN, ek.models.BaseGAN)
    assert not issubclass(ek.GAN, ek.EnergyGAN)
    # The energy settings belong to the autoencoder family only.
    gan = ek.GAN(
        tiny_generator(),
        ek.networks.gan_mlp_discriminator(IMAGE_SHAPE, hidden_units=(8,)),
    )
    assert "energy_reduction" not in gan.get_config()
    assert tiny_model(ek.EBGAN).get_config()["energy_reduction"] == "l2"


def test_callbacks_module_reexports_the_nan_guard():
    assert ek.callbacks.TerminateOnNonFinite is ek.models.hooks.TerminateOnNonFinite
