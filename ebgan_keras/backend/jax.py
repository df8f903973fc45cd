"""JAX adapter: stateless, jitted functions that carry the whole model state.

The Keras JAX trainer calls `train_step(state, data)` with the values of the
model's trainable, non-trainable, optimizer and metric variables, and expects
their new values back. Inside that step, variables have no live values.
`stateful_step` opens one `keras.StatelessScope` that maps *every* variable
to its value in `state`, runs the backend-independent, stateful-looking step
of the model inside it, and reads every variable's new value back out of the
scope. So both optimizers (routed through `model.optimizer`, see
`GANOptimizer`), batch-norm statistics, the seed generator, metrics, `k` and
`margin` all move on, exactly as they do on TensorFlow and PyTorch.

Gradients are taken by `jax.value_and_grad` of a function that opens a
nested scope: it holds the enclosing scope's values with the differentiated
variables replaced by the traced arguments. Updates made inside it (batch
norm statistics, seeds of dropout layers) are returned as auxiliary outputs
and written to the enclosing scope.

Keras has no public getter of the current `StatelessScope`, so the scopes
opened here are kept on a module-level, per-thread stack that
`value_and_grad` reads; nested calls (a gradient inside a loss, as a
gradient penalty needs) push their own scope.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from collections.abc import Sequence

import jax
from keras import StatelessScope
from keras import ops

# The `StatelessScope`s opened by this module, innermost last, per thread
# (Keras keeps its current scope per thread too).
_LOCAL = threading.local()


def _scopes() -> list:
    if not hasattr(_LOCAL, "scopes"):
        _LOCAL.scopes = []
    return _LOCAL.scopes


@contextlib.contextmanager
def _scope(scope: StatelessScope):
    with scope:
        _scopes().append(scope)
        try:
            yield scope
        finally:
            _scopes().pop()


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


def value_and_grad(loss_fn: Callable, variables: Sequence) -> tuple:
    """Runs `loss_fn()` and differentiates its loss with respect to `variables`.

    Must run inside `stateful_step` (which opens the scope that maps every
    variable the loss reads to its value).

    Args:
        loss_fn: callable. Takes no argument, reads the variables, and returns
            `(loss, aux)`.
        variables: list of `keras.Variable`. What to differentiate against.

    Returns:
        `(loss, aux, gradients)`, the gradients in the order of `variables`.
    """
    if not _scopes():
        raise RuntimeError(
            "ebgan_keras.backend.value_and_grad on JAX must run inside "
            "`ebgan_keras.backend.stateful_step` (the model's train_step opens "
            "it). Received: a call outside of it."
        )
    outer = _scopes()[-1]
    base = dict(outer.state_mapping)
    differentiated = {id(variable) for variable in variables}

    def stateless_loss(values):
        mapping = dict(base)
        for variable, value in zip(variables, values):
            mapping[id(variable)] = value
        scope = StatelessScope()
        scope.state_mapping = mapping
        with _scope(scope):
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


def input_value_and_grad(energy_fn: Callable, inputs) -> tuple:
    """Per-sample energies of `inputs` and the gradient of their sum.

    Args:
        energy_fn: callable. Maps a batch `(N, ...)` to energies `(N,)`.
        inputs: tensor `(N, ...)`. Latents (DDLS) or images (a gradient
            penalty).

    Returns:
        `(energy, gradient)`: `(N,)` and the shape of `inputs`. Inside a
        differentiated loss the gradient can be differentiated again.
    """

    def total(values):
        energy = energy_fn(values)
        return jax.numpy.sum(energy), energy

    (_, energy), gradient = jax.value_and_grad(total, has_aux=True)(inputs)
    return energy, gradient


def where_finite(finite, gradients: Sequence) -> list:
    """`gradients` where `finite` is true, else zeros: one `where` each (XLA
    fuses it into the update).

    Args:
        finite: scalar bool tensor.
        gradients: list of tensors.

    Returns:
        list of tensors, the order of `gradients`.
    """
    return [ops.where(finite, g, ops.zeros_like(g)) for g in gradients]


def apply_gradients(optimizer, gradients: Sequence, variables: Sequence) -> None:
    """`optimizer.apply(gradients, variables)`; the compiler fuses the update.

    Args:
        optimizer: `keras.optimizers.Optimizer`.
        gradients: list of tensors, in the order of `variables`.
        variables: list of `keras.Variable`.
    """
    optimizer.apply(gradients, variables)


def stateful_step(model, step_fn: Callable, *args, training: bool = True):
    """Runs `step_fn(data)` on the values in `state`; returns `(logs, state)`.

    Args:
        model: the `keras.Model` being trained.
        step_fn: callable. The backend-independent step; it reads and assigns
            variables as if they were stateful.
        *args: what the Keras JAX trainer passes to `train_step` /
            `test_step`: `(state, data)`, `state` the tuple `(trainable,
            non_trainable, optimizer, metrics)` of variable values (without
            `optimizer` for a test step).
        training: bool. A training step (else a test step). Defaults to
            `True`.

    Returns:
        `(logs, new_state)`.
    """
    state, data = args
    groups = _state_groups(model, training)
    mapping = []
    for variables, values in zip(groups, state):
        mapping.extend(zip(variables, values))
    with _scope(StatelessScope(state_mapping=mapping)) as scope:
        logs = step_fn(data)
    new_state = tuple(
        [scope.get_current_value(variable) for variable in variables]
        for variables in groups
    )
    return logs, new_state


def compile_function(model, fn: Callable, jit_compile: bool) -> Callable:
    """`jax.jit` of `fn(*args)`, reading `model`'s variables at each call.

    The variables' current values go in as arguments on every call (inside a
    `StatelessScope`), never closed over as constants, so weights changed
    after compilation are seen without a retrace.

    Args:
        model: the model whose variables `fn` reads.
        fn: callable. Written in `keras.ops`; takes and returns tensors.
        jit_compile: bool. Compile; `False` returns `fn` unchanged.

    Returns:
        A callable with the arguments of `fn`.
    """
    if not jit_compile:
        return fn
    variables = _unique_variables(model)

    def stateless_fn(values, *args):
        mapping = list(zip(variables, values, strict=True))
        with _scope(StatelessScope(state_mapping=mapping)):
            return fn(*args)

    jitted = jax.jit(stateless_fn)

    def run(*args):
        return jitted([variable.value for variable in variables], *args)

    return run


def skip_batches(model, train_function: Callable, count: int) -> Callable:
    """Wraps `train_function` so that its next `count` batches are drawn, unused.

    Args:
        model: the `keras.Model` being trained; its `train_function` is set
            back to `train_function` once the batches are skipped.
        train_function: the compiled `train_function(state, iterator)`.
        count: int. Batches to skip.

    Returns:
        The wrapping train function.
    """
    remaining = [count]

    def skipping(state, iterator):
        if remaining[0] <= 0:
            model.train_function = train_function
            return train_function(state, iterator)
        remaining[0] -= model.steps_per_execution
        for _ in range(model.steps_per_execution):
            next(iterator, None)
        return {}, state

    return skipping


# Data parallelism on JAX is `keras.distribution`, which shards one global
# step: the step sees the whole batch, so these are identities.
def num_replicas() -> int:
    """Replicas that run the step in sync: 1 (JAX shards one global step)."""
    return 1


def replica_id():
    """Index of the replica running the step: 0 (one global step)."""
    return 0


def cross_replica_mean(values: dict) -> dict:
    """Averages scalars over the replicas: the identity on JAX."""
    return values


def all_gather(tensor):
    """Concatenates a batch over the replicas: the identity on JAX."""
    return tensor


def _unique_variables(model) -> list:
    """Every variable of `model` and of its networks, once each."""
    seen = set()
    variables = []
    groups = [
        getattr(model, name).variables
        for name in ("generator", "discriminator")
        if hasattr(model, name)
    ]
    try:
        groups.append(model.variables)
    except (AttributeError, ValueError):
        pass
    for group in groups:
        for variable in group:
            if id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
    return variables


def gpu_available() -> bool:
    """Whether JAX's default backend is a GPU."""
    return jax.default_backend() == "gpu"


#: Training steps per compiled call used by the training driver (the whole
#: step is one `jax.jit` already; more per call gained nothing measurable).
STEPS_PER_EXECUTION = 1
#: Whether the samplers should not compile convolutional nets with XLA (JAX
#: has no other compiler; `FastConv2DTranspose` handles the slow case).
XLA_SLOW_CONVOLUTIONS = False
