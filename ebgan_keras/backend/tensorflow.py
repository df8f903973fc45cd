"""TensorFlow adapter: gradients from a `tf.GradientTape`."""

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


def stateful_step(model, step_fn: Callable, data, training: bool = True):
    """Runs a stateful training step; TensorFlow variables update in place."""
    del model, training
    return step_fn(data)
