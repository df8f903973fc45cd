"""The shared base: a new model is one file of hooks; epoch rules run through fit."""

from __future__ import annotations

import numpy as np
from helpers import IMAGE_SHAPE
from helpers import tiny_discriminator
from helpers import tiny_generator
from helpers import tiny_images
from helpers import tiny_model
from keras import ops

import ebgan_keras as ek


def value(x) -> float:
    return float(np.asarray(ops.convert_to_numpy(x)))


def test_a_model_of_hooks_trains_through_the_shared_step():
    # WGAN-GP is one file of loss hooks (models/wgan_gp.py) on the base.
    critic = ek.networks.gan_mlp_discriminator(IMAGE_SHAPE, hidden_units=(16,))
    model = ek.WGANGP(tiny_generator(batch_norm=False), critic, critic_steps=2, seed=0)
    model.compile()
    before = [ops.convert_to_numpy(v).copy() for v in critic.trainable_variables]
    history = model.fit(tiny_images(32), batch_size=16, epochs=1, verbose=0)
    for name in ("d_loss", "g_loss", "gradient_penalty"):
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
