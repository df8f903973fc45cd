"""Gradient mechanics, one thin adapter per Keras backend.

All maths of the library is written once in `keras.ops`. What differs per
backend is only how a gradient is taken (TensorFlow: a tape; PyTorch:
`torch.autograd.grad`; JAX: `jax.value_and_grad` of a stateless function) and,
for JAX, how the training step carries its state. The adapter is picked once,
at import, like Keras picks its trainer.
"""

from __future__ import annotations

import keras

_BACKEND = keras.backend.backend()

if _BACKEND == "jax":
    from ebgan_keras.backend.jax import stateful_step
    from ebgan_keras.backend.jax import value_and_grad
elif _BACKEND == "tensorflow":
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

__all__ = ["stateful_step", "value_and_grad"]
