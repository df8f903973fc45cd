"""TensorFlow adapter: gradients from a `tf.GradientTape`, `tf.distribute` replicas.

Variables update in place, so the training step runs as written; under a
`tf.distribute` strategy each replica runs it on its slice of the batch, and
the replica functions here average or gather over the replicas.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence

import tensorflow as tf


def value_and_grad(loss_fn: Callable, variables: Sequence) -> tuple:
    """Runs `loss_fn()` and differentiates its loss with respect to `variables`.

    Args:
        loss_fn: callable. Takes no argument, reads the variables, and returns
            `(loss, aux)`.
        variables: list of `keras.Variable`. What to differentiate against.

    Returns:
        `(loss, aux, gradients)`, the gradients in the order of `variables`.
    """
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        for variable in variables:
            tape.watch(variable.value)
        loss, aux = loss_fn()
    values = [variable.value for variable in variables]
    gradients = tape.gradient(loss, values)
    # A variable the loss does not depend on gets a zero gradient, not None.
    gradients = [
        tf.zeros_like(value) if gradient is None else gradient
        for value, gradient in zip(values, gradients)
    ]
    return loss, aux, gradients


def input_value_and_grad(energy_fn: Callable, inputs) -> tuple:
    """Per-sample energies of `inputs` and the gradient of their sum.

    Args:
        energy_fn: callable. Maps a batch `(N, ...)` to energies `(N,)`.
        inputs: tensor `(N, ...)`. Latents (DDLS) or images (a gradient
            penalty).

    Returns:
        `(energy, gradient)`: `(N,)` and the shape of `inputs`. Inside a
        differentiated loss the gradient can be differentiated again (the
        enclosing tape records this one).
    """
    inputs = tf.convert_to_tensor(inputs)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(inputs)
        energy = energy_fn(inputs)
    return energy, tape.gradient(energy, inputs)


def where_finite(finite, gradients: Sequence) -> list:
    """`gradients` where `finite` is true, else zeros: one `where` each (XLA
    fuses it into the update).

    Args:
        finite: scalar bool tensor.
        gradients: list of tensors.

    Returns:
        list of tensors, the order of `gradients`.
    """
    return [tf.where(finite, g, tf.zeros_like(g)) for g in gradients]


def apply_gradients(optimizer, gradients: Sequence, variables: Sequence) -> None:
    """`optimizer.apply(gradients, variables)`; the compiler fuses the update.

    Args:
        optimizer: `keras.optimizers.Optimizer`.
        gradients: list of tensors, in the order of `variables`.
        variables: list of `keras.Variable`.
    """
    optimizer.apply(gradients, variables)


def stateful_step(model, step_fn: Callable, *args, training: bool = True):
    """Runs `step_fn(data)`; TensorFlow variables update in place.

    Args:
        model: the `keras.Model` being trained.
        step_fn: callable. The backend-independent step.
        *args: what the Keras TensorFlow trainer passes to `train_step` /
            `test_step`: `(data,)`.
        training: bool. A training step (else a test step). Defaults to
            `True`.

    Returns:
        The logs of `step_fn`.
    """
    del model, training
    (data,) = args
    logs = step_fn(data)
    if _multi_worker():
        # Keras reduces the step's logs over the workers of a multi-worker
        # strategy with `strategy.reduce(MEAN, value, axis=0)`, which fails on
        # scalars (Keras 3.15). The logs are equal on every replica already
        # (`cross_replica_mean`); as vectors of one value they reduce to it.
        logs = {name: tf.reshape(value, (1,)) for name, value in logs.items()}
    return logs


def _multi_worker() -> bool:
    strategy = tf.distribute.get_strategy()
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def compile_function(model, fn: Callable, jit_compile: bool) -> Callable:
    """`tf.function(jit_compile=True)` of `fn(*args)`.

    Args:
        model: the model whose variables `fn` reads (a `tf.function` reads
            them live, so it is not needed here).
        fn: callable. Written in `keras.ops`; takes and returns tensors.
        jit_compile: bool. Compile with XLA; `False` returns `fn` unchanged.

    Returns:
        A callable with the arguments of `fn`.
    """
    del model
    if not jit_compile:
        return fn
    return tf.function(fn, jit_compile=True, reduce_retracing=True)


def skip_batches(model, train_function: Callable, count: int) -> Callable:
    """Wraps `train_function` so that its next `count` batches are drawn, unused.

    Args:
        model: the `keras.Model` being trained; its `train_function` is set
            back to `train_function` once the batches are skipped.
        train_function: the compiled `train_function(iterator)`.
        count: int. Batches to skip.

    Returns:
        The wrapping train function.
    """
    remaining = [count]

    def skipping(iterator):
        if remaining[0] <= 0:
            model.train_function = train_function
            return train_function(iterator)
        remaining[0] -= model.steps_per_execution
        for _ in range(model.steps_per_execution):
            iterator.get_next()
        return {}

    return skipping


def num_replicas() -> int:
    """Replicas that run the step in sync (`tf.distribute`); 1 without a strategy."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def replica_id():
    """Index of the replica running the step (0 without a strategy)."""
    context = tf.distribute.get_replica_context()
    return 0 if context is None else context.replica_id_in_sync_group


def cross_replica_mean(values: dict) -> dict:
    """Averages a dict of scalars over the replicas, so all replicas agree.

    Without a strategy (or with one replica) the values are returned as is.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values
    return context.all_reduce(tf.distribute.ReduceOp.MEAN, values)


def all_gather(tensor):
    """Concatenates a per-replica batch over the replicas (differentiable).

    The gradient flows back to each replica's own slice, summed over the
    replicas' losses, as the optimizer's all-reduce of the gradients expects.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return tensor
    return context.all_gather(tensor, axis=0)


def gpu_available() -> bool:
    """Whether TensorFlow sees a GPU (`tf.config.list_physical_devices`)."""
    return bool(tf.config.list_physical_devices("GPU"))


#: Training steps per compiled call used by the training driver. Measured on
#: the MNIST MLP (this project's 2-core CPU): one step per call swings
#: between 19 and 38 steps/s from epoch to epoch, ten per call hold ~40.
STEPS_PER_EXECUTION = 10
#: XLA on CPU computes convolution gradients on a slow path (a DDLS step of the
#: BEGAN 32x32 nets 8x slower than TensorFlow without XLA): the samplers run
#: convolutional nets as `tf.function` graphs without XLA.
XLA_SLOW_CONVOLUTIONS = True
