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


def stateful_step(model, step_fn: Callable, data, training: bool = True):
    """Runs a stateful training step; TensorFlow variables update in place."""
    del model, training
    return step_fn(data)
