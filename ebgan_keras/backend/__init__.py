"""Gradient mechanics, one thin adapter per Keras backend.

All maths of the library is written once in `keras.ops`. What differs per
backend is only how a gradient is taken (TensorFlow: a tape; PyTorch:
`torch.autograd.grad`; JAX: `jax.value_and_grad` of a stateless function) and,
for JAX, how the training step carries its state. The adapter is picked once,
at import, like Keras picks its trainer.
"""

from __future__ import annotations

import keras

# Data parallelism inside the step exists only with `tf.distribute`: there,
# each replica runs the step on its slice of the batch. JAX's
# `keras.distribution` shards one global step instead, so the step sees the
# whole batch and these are identities (as on PyTorch, which has neither).


def num_replicas() -> int:
    """Replicas that run the step in sync; 1 outside `tf.distribute`."""
    return 1


def replica_id():
    """Index of the replica running the step; 0 outside `tf.distribute`."""
    return 0


def cross_replica_mean(values: dict) -> dict:
    """Averages scalars over the replicas; identity outside `tf.distribute`."""
    return values


def all_gather(tensor):
    """Concatenates a batch over the replicas; identity outside `tf.distribute`."""
    return tensor


_BACKEND = keras.backend.backend()

if _BACKEND == "jax":
    from ebgan_keras.backend.jax import stateful_step
    from ebgan_keras.backend.jax import value_and_grad
elif _BACKEND == "tensorflow":
    from ebgan_keras.backend.tensorflow import all_gather  # noqa: F811
    from ebgan_keras.backend.tensorflow import cross_replica_mean  # noqa: F811
    from ebgan_keras.backend.tensorflow import num_replicas  # noqa: F811
    from ebgan_keras.backend.tensorflow import replica_id  # noqa: F811
    from ebgan_keras.backend.tensorflow import stateful_step
    from ebgan_keras.backend.tensorflow import value_and_grad
elif _BACKEND == "torch":
    from ebgan_keras.backend.torch import stateful_step
    from ebgan_keras.backend.torch import value_and_grad
else:
    raise ImportError(
        "ebgan_keras supports the Keras backends 'tensorflow', 'jax' and "
        f"'torch'. Received: KERAS_BACKEND={_BACKEND!r}"
    )

__all__ = [
    "all_gather",
    "cross_replica_mean",
    "num_replicas",
    "replica_id",
    "stateful_step",
    "value_and_grad",
]

# TEMPORARY (merged with the seam rewrite): per-backend formulation choices.
STEPS_PER_EXECUTION = 10 if _BACKEND == "tensorflow" else 1
XLA_SLOW_CONVOLUTIONS = _BACKEND == "tensorflow"
