"""JAX adapter: a stateless, jitted step that carries the whole training state.

The Keras JAX trainer calls `train_step(state, data)` with the values of the
model's trainable, non-trainable, optimizer and metric variables, and expects
their new values back. Inside that step, variables have no live values. The
step here opens one `keras.StatelessScope` that maps *every* variable to its
value in `state`, runs the backend-independent, stateful-looking step of the
model inside it, and reads every variable's new value back out of the scope.
So both optimizers (routed through `model.optimizer`, see `GANOptimizer`),
batch-norm statistics, the seed generator, metrics, `k` and `margin` all move
on, exactly as they do on TensorFlow and PyTorch.

Gradients are taken by `jax.value_and_grad` of a function that opens a
nested scope: it holds the outer scope's values with the differentiated
variables replaced by the traced arguments. Updates made inside it (batch
norm statistics, seeds of dropout layers) are returned as auxiliary outputs
and written to the outer scope.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence

import jax
from keras import StatelessScope
from keras.src.backend.common.stateless_scope import get_stateless_scope


def _state_groups(model, training: bool) -> tuple:
    if not training:  # the Keras JAX trainer's test_step carries no optimizer
        return (
            model.trainable_variables,
            model.non_trainable_variables,
            model.metrics_variables,
        )
    return (
        model.trainable_variables,
        model.non_trainable_variables,
        model.optimizer.variables,
        model.metrics_variables,
    )


def stateful_step(model, step_fn: Callable, state, data, training: bool = True):
    """Runs `step_fn(data)` on the values in `state`; returns `(logs, state)`.

    Args:
        model: the `keras.Model` being trained.
        step_fn: callable. The backend-independent training step; it reads and
            assigns variables as if they were stateful.
        state: the tuple `(trainable, non_trainable, optimizer, metrics)` of
            variable values that the Keras JAX trainer carries (without
            `optimizer` for a test step).
        data: one batch.
        training: bool. A training step (else a test step).
            Defaults to `True`.

    Returns:
        `(logs, new_state)`.
    """
    groups = _state_groups(model, training)
    mapping = []
    for variables, values in zip(groups, state):
        mapping.extend(zip(variables, values))
    with StatelessScope(state_mapping=mapping) as scope:
        logs = step_fn(data)
    new_state = tuple(
        [scope.get_current_value(variable) for variable in variables]
        for variables in groups
    )
    return logs, new_state


def value_and_grad(loss_fn: Callable, variables: Sequence) -> tuple:
    """Runs `loss_fn()` and differentiates its loss with respect to `variables`.

    Must run inside the scope opened by `stateful_step` (or any
    `keras.StatelessScope` that maps every variable the loss reads).

    Args:
        loss_fn: callable. Takes no argument, reads the variables, and returns
            `(loss, aux)`.
        variables: list of `keras.Variable`. What to differentiate against.

    Returns:
        `(loss, aux, gradients)`, the gradients in the order of `variables`.
    """
    outer = get_stateless_scope()
    if outer is None:
        raise RuntimeError(
            "ebgan_keras.backend.jax.value_and_grad must run inside a "
            "keras.StatelessScope (the training step opens one)."
        )
    base = dict(outer.state_mapping)
    differentiated = {id(variable) for variable in variables}

    def stateless_loss(values):
        mapping = dict(base)
        for variable, value in zip(variables, values):
            mapping[id(variable)] = value
        scope = StatelessScope()
        scope.state_mapping = mapping
        with scope:
            loss, aux = loss_fn()
        updates = {
            key: value
            for key, value in scope.state_mapping.items()
            if key not in differentiated and value is not base.get(key)
        }
        return loss, (aux, updates)

    initial = [outer.get_current_value(variable) for variable in variables]
    (loss, (aux, updates)), gradients = jax.value_and_grad(
        stateless_loss, has_aux=True
    )(initial)
    # Write batch-norm statistics and seed states back to the outer scope.
    outer.state_mapping.update(updates)
    return loss, aux, gradients
