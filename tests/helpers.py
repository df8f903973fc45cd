"""Small models and helpers shared by the tests."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

import ebgan_keras as ek

IMAGE_SHAPE = (8, 8, 1)
LATENT_DIM = 4

#: Marks an end-to-end test slow except on TensorFlow: the default run checks
#: each backend-independent path once, on TensorFlow; `--run-slow` (CI's step
#: of slow tests) repeats it on JAX and PyTorch.
slow_off_tensorflow = (
    pytest.mark.slow
    if keras.backend.backend() != "tensorflow"
    else pytest.mark.usefixtures()
)


def tiny_generator(batch_norm: bool = True) -> keras.Model:
    return ek.networks.ebgan_mlp_generator(
        latent_dim=LATENT_DIM,
        image_shape=IMAGE_SHAPE,
        hidden_units=(16,),
        batch_norm=batch_norm,
    )


def tiny_discriminator() -> keras.Model:
    return ek.networks.ebgan_mlp_discriminator(
        image_shape=IMAGE_SHAPE, encoder_units=(16, 8)
    )


def tiny_model(cls=ek.EBGANPT, **kwargs):
    kwargs.setdefault("seed", 0)
    if cls in (ek.EBGAN, ek.EBGANPT):
        kwargs.setdefault("margin", 2.0)
    return cls(tiny_generator(), tiny_discriminator(), **kwargs)


def tiny_images(num: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, (num, *IMAGE_SHAPE)).astype("float32")


def fixed_latent_class(base):
    """A subclass of `base` whose training latents are fixed constants."""

    class FixedLatents(base):
        fixed_latents = None
        fixed_mix = None

        def sample_latents(self, num_samples, seed=None):
            if seed is not None or self.fixed_latents is None:
                return super().sample_latents(num_samples, seed=seed)
            return ops.convert_to_tensor(self.fixed_latents)

        def interpolation_weights(self, batch_size):
            # The critic family's gradient-penalty weights `eps`, fixed too.
            if self.fixed_mix is None:
                return super().interpolation_weights(batch_size)
            return ops.convert_to_tensor(self.fixed_mix)

    FixedLatents.__name__ = f"FixedLatents{base.__name__}"
    return FixedLatents


def run_in_step(model: keras.Model, fn, data):
    """Runs `fn(data)` the way a training step of `model` does.

    On JAX, `ebgan_keras.backend.value_and_grad` needs the scope that
    `stateful_step` opens (it maps the model's variables to values).
    """
    from ebgan_keras import backend

    if keras.backend.backend() == "jax":
        state = (
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            [v.value for v in model.metrics_variables],
        )
        logs, _ = backend.stateful_step(model, fn, state, data, training=False)
        return logs
    return backend.stateful_step(model, fn, data, training=False)


def numpy_weights(model: keras.Model) -> list[np.ndarray]:
    return [np.array(ops.convert_to_numpy(v)) for v in model.weights]


def tiny_zoo_config(name: str) -> dict:
    """The `ebgan_pt_mnist` recipe shrunk: 32-unit nets, 1 epoch of
    mnist_subset, 40 samples scored by plain sampling only."""
    from ebgan_keras.zoo import stages

    config = stages.read_config("ebgan_pt_mnist")
    config["name"] = name
    config["generator"]["kwargs"]["hidden_units"] = [32]
    config["discriminator"]["kwargs"]["encoder_units"] = [32, 16]
    config["training"].update({"data": "mnist_subset", "epochs": 1})
    config["evaluation"].update(
        {"reference": "mnist_subset", "num_samples": 40, "samplers": {"prior": {}}}
    )
    return config
