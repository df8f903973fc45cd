"""Every backend-specific mechanic of the library, one adapter module per backend.

All maths of the library is written once in `keras.ops`. What differs per
backend lives in `ebgan_keras/backend/{jax,tensorflow,torch}.py`, which
define the same functions with the same signatures:

- `value_and_grad(loss_fn, variables)`: a loss and its gradients with respect
  to variables (the training step).
- `input_value_and_grad(energy_fn, inputs)`: per-sample energies and their
  gradient with respect to the inputs (DDLS's latent gradient; a gradient
  penalty).
- `where_finite(finite, gradients)` and `apply_gradients(optimizer,
  gradients, variables)`: the guarded optimizer update of the training step
  (compiled backends: one `where` per gradient and `optimizer.apply`, which
  XLA fuses; eager PyTorch skips the guard's pass when the step is finite
  and fuses Adam's update).
- `stateful_step(model, step_fn, *args, training=True)`: runs a
  stateful-looking step inside the backend's trainer (on JAX, `args` is
  `(state, data)` and the new state is returned with the logs).
- `compile_function(model, fn, jit_compile)`: compiles a `keras.ops`
  function that reads the model's variables (`jax.jit`, `tf.function`).
- `skip_batches(model, train_function, count)`: draws and drops batches, for
  exact resume.
- `num_replicas()`, `replica_id()`, `cross_replica_mean(values)`,
  `all_gather(tensor)`: data parallelism inside the step (`tf.distribute`;
  identities elsewhere).
- `gpu_available()`: whether the backend computes on a GPU (the recipes'
  `training.mixed_precision: "auto"`).
- `STEPS_PER_EXECUTION`: training steps per compiled call that the training
  driver uses; `XLA_SLOW_CONVOLUTIONS`: whether the samplers should not
  compile convolutional nets with XLA. Both are measured choices of
  formulation, documented in the adapters.

The adapter is picked once, at import, like Keras picks its trainer.

`ebgan_keras.backend.keras_internals` (one module for all backends) holds
the few private Keras and TensorFlow attributes the library relies on
(walking every layer of a network, a callback's resume epoch, a multi-worker
health check), so that nothing else names one.
"""

from __future__ import annotations

import importlib

import keras

_ADAPTERS = {
    "jax": "ebgan_keras.backend.jax",
    "tensorflow": "ebgan_keras.backend.tensorflow",
    "torch": "ebgan_keras.backend.torch",
}

_BACKEND = keras.backend.backend()
if _BACKEND not in _ADAPTERS:
    raise ImportError(
        f"ebgan_keras supports the Keras backends {sorted(_ADAPTERS)}. "
        f"Received: KERAS_BACKEND={_BACKEND!r}"
    )
_adapter = importlib.import_module(_ADAPTERS[_BACKEND])

value_and_grad = _adapter.value_and_grad
input_value_and_grad = _adapter.input_value_and_grad
stateful_step = _adapter.stateful_step
where_finite = _adapter.where_finite
apply_gradients = _adapter.apply_gradients
compile_function = _adapter.compile_function
skip_batches = _adapter.skip_batches
num_replicas = _adapter.num_replicas
replica_id = _adapter.replica_id
cross_replica_mean = _adapter.cross_replica_mean
all_gather = _adapter.all_gather
gpu_available = _adapter.gpu_available
STEPS_PER_EXECUTION = _adapter.STEPS_PER_EXECUTION
XLA_SLOW_CONVOLUTIONS = _adapter.XLA_SLOW_CONVOLUTIONS

__all__ = [
    "STEPS_PER_EXECUTION",
    "XLA_SLOW_CONVOLUTIONS",
    "all_gather",
    "apply_gradients",
    "compile_function",
    "cross_replica_mean",
    "gpu_available",
    "input_value_and_grad",
    "num_replicas",
    "replica_id",
    "skip_batches",
    "stateful_step",
    "value_and_grad",
    "where_finite",
]
