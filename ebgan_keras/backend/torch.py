"""PyTorch adapter: gradients from `torch.autograd.grad`.

`torch.autograd.grad` computes only the gradients asked for, so the
generator's step does not pay for the discriminator's weight gradients and
nothing accumulates in `.grad` between the two optimizers. Variables update
in place, so the training step runs as written.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence

import keras
import torch
from keras import ops


def value_and_grad(loss_fn: Callable, variables: Sequence) -> tuple:
    """Runs `loss_fn()` and differentiates its loss with respect to `variables`.

    Args:
        loss_fn: callable. Takes no argument, reads the variables, and returns
            `(loss, aux)`.
        variables: list of `keras.Variable`. What to differentiate against.

    Returns:
        `(loss, aux, gradients)`, the gradients in the order of `variables`;
        a variable that the loss does not depend on gets a zero gradient.
    """
    loss, aux = loss_fn()
    values = [variable.value for variable in variables]
    if loss.requires_grad:
        gradients = torch.autograd.grad(loss, values, allow_unused=True)
    else:  # the loss depends on none of the variables
        gradients = [None] * len(values)
    gradients = [
        torch.zeros_like(value) if gradient is None else gradient
        for value, gradient in zip(values, gradients)
    ]
    return loss.detach(), _detach(aux), gradients


def input_value_and_grad(energy_fn: Callable, inputs) -> tuple:
    """Per-sample energies of `inputs` and the gradient of their sum.

    Args:
        energy_fn: callable. Maps a batch `(N, ...)` to energies `(N,)`.
        inputs: tensor `(N, ...)`. Latents (DDLS) or images (a gradient
            penalty).

    Returns:
        `(energy, gradient)`: `(N,)` and the shape of `inputs`. Called with
        autograd on (inside a differentiated loss), the graph is kept
        (`create_graph=True`), so the gradient can be differentiated again;
        called under `torch.no_grad` (a sampler's chain), both come back
        detached.
    """
    differentiable = torch.is_grad_enabled()
    with torch.enable_grad():
        if differentiable and inputs.requires_grad:
            leaf = inputs
        else:
            leaf = inputs.detach().requires_grad_(True)
        energy = energy_fn(leaf)
        (gradient,) = torch.autograd.grad(
            energy.sum(), leaf, create_graph=differentiable
        )
    if differentiable:
        return energy, gradient
    return energy.detach(), gradient.detach()


def where_finite(finite, gradients: Sequence) -> list:
    """`gradients` if `finite` is true, else zeros like them.

    Eager PyTorch decides in Python: a finite step (nearly every one) costs
    no pass over the gradients, where `torch.where` would read and write
    each one. Under `torch.compile` the decision stays a tensor op.

    Args:
        finite: scalar bool tensor.
        gradients: list of tensors.

    Returns:
        list of tensors, the order of `gradients`.
    """
    if torch.compiler.is_compiling():
        return [torch.where(finite, g, torch.zeros_like(g)) for g in gradients]
    if bool(finite):
        return list(gradients)
    return [torch.zeros_like(g) for g in gradients]


def apply_gradients(optimizer, gradients: Sequence, variables: Sequence) -> None:
    """`optimizer.apply(gradients, variables)`, with a fused Adam update.

    Keras' PyTorch Adam runs ten `torch._foreach_*` passes over the weights
    and moments per step; for a plain built `keras.optimizers.Adam` (no
    AMSGrad, weight decay, clipping, EMA, gradient accumulation, loss scale
    or variable constraint) this computes the same update as Keras
    (`m <- b1 m + (1 - b1) g`, `v <- b2 v + (1 - b2) g^2`,
    `w <- w - alpha m / (sqrt(v) + eps)`, `alpha = lr sqrt(1 - b2^t) /
    (1 - b1^t)`) in seven passes, as `torch.optim.Adam` does (`lerp_`,
    `addcmul_`, `addcdiv_`), and advances `optimizer.iterations` as `apply`
    does. Any other optimizer goes through `optimizer.apply`.

    Args:
        optimizer: `keras.optimizers.Optimizer`.
        gradients: list of tensors, in the order of `variables`.
        variables: list of `keras.Variable`.
    """
    if not _fusable_adam(optimizer, variables):
        optimizer.apply(gradients, variables)
        return
    gradients = list(gradients)
    with torch.no_grad():
        values = [variable.value for variable in variables]
        indices = [optimizer._get_variable_index(variable) for variable in variables]
        momentums = [optimizer._momentums[i].value for i in indices]
        velocities = [optimizer._velocities[i].value for i in indices]
        dtype = values[0].dtype
        learning_rate = ops.cast(optimizer.learning_rate, dtype)
        step = ops.cast(optimizer.iterations + 1, dtype)
        beta_1_power = ops.power(ops.cast(optimizer.beta_1, dtype), step)
        beta_2_power = ops.power(ops.cast(optimizer.beta_2, dtype), step)
        alpha = learning_rate * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        torch._foreach_lerp_(momentums, gradients, 1 - optimizer.beta_1)
        torch._foreach_mul_(velocities, optimizer.beta_2)
        torch._foreach_addcmul_(
            velocities, gradients, gradients, value=1 - optimizer.beta_2
        )
        denominators = torch._foreach_sqrt(velocities)
        torch._foreach_add_(denominators, optimizer.epsilon)
        torch._foreach_addcdiv_(values, momentums, denominators, value=-alpha.item())
    optimizer.iterations.assign_add(1)


def _fusable_adam(optimizer, variables: Sequence) -> bool:
    """Whether `apply_gradients` may run its fused update for `optimizer`."""
    if torch.compiler.is_compiling():
        return False
    if not (isinstance(optimizer, keras.optimizers.Adam) and optimizer.built):
        return False
    if optimizer.amsgrad or optimizer.use_ema or optimizer.gradient_accumulation_steps:
        return False
    plain = (
        optimizer.clipnorm,
        optimizer.clipvalue,
        optimizer.global_clipnorm,
        optimizer.weight_decay,
        optimizer.loss_scale_factor,
    )
    if any(option is not None for option in plain):
        return False
    known = optimizer._trainable_variables_indices
    return all(
        variable.constraint is None
        and not getattr(variable, "overwrite_with_gradient", False)
        and optimizer._var_key(variable) in known
        for variable in variables
    )


def stateful_step(model, step_fn: Callable, *args, training: bool = True):
    """Runs `step_fn(data)`; PyTorch variables update in place.

    Args:
        model: the `keras.Model` being trained.
        step_fn: callable. The backend-independent step.
        *args: what the Keras PyTorch trainer passes to `train_step` /
            `test_step`: `(data,)`.
        training: bool. A training step (else a test step). Defaults to
            `True`.

    Returns:
        The logs of `step_fn`.
    """
    del model, training
    (data,) = args
    return step_fn(data)


def compile_function(model, fn: Callable, jit_compile: bool) -> Callable:
    """Wraps `fn(*args)` to run under `torch.no_grad`.

    Keras' PyTorch `fori_loop` is a Python loop, so `fn` runs eagerly
    whatever `jit_compile` says; `input_value_and_grad` switches autograd on
    for its inputs only.

    Args:
        model: the model whose variables `fn` reads (read live; unused).
        fn: callable. Written in `keras.ops`; takes and returns tensors.
        jit_compile: bool. Ignored on PyTorch.

    Returns:
        A callable with the arguments of `fn`.
    """
    del model, jit_compile

    def run(*args):
        with torch.no_grad():
            return fn(*args)

    return run


def skip_batches(model, train_function: Callable, count: int) -> Callable:
    """Wraps `train_function` so that its next `count` batches are drawn, unused.

    Args:
        model: the `keras.Model` being trained; its `train_function` is set
            back to `train_function` once the batches are skipped.
        train_function: the `train_function(data)` of the Keras PyTorch
            trainer, which is handed each batch.
        count: int. Batches to skip.

    Returns:
        The wrapping train function.
    """
    remaining = [count]

    def skipping(data):
        if remaining[0] <= 0:
            model.train_function = train_function
            return train_function(data)
        # The trainer hands over the batch itself: not training on it skips it.
        remaining[0] -= model.steps_per_execution
        return {}

    return skipping


# PyTorch has no Keras data-parallel engine: one replica.
def num_replicas() -> int:
    """Replicas that run the step in sync: 1 on PyTorch."""
    return 1


def replica_id():
    """Index of the replica running the step: 0 on PyTorch."""
    return 0


def cross_replica_mean(values: dict) -> dict:
    """Averages scalars over the replicas: the identity on PyTorch."""
    return values


def all_gather(tensor):
    """Concatenates a batch over the replicas: the identity on PyTorch."""
    return tensor


def _detach(structure):
    if isinstance(structure, dict):
        return {key: _detach(value) for key, value in structure.items()}
    if isinstance(structure, torch.Tensor):
        return structure.detach()
    return structure


def gpu_available() -> bool:
    """Whether PyTorch sees a CUDA (or ROCm) GPU."""
    return torch.cuda.is_available()


#: Training steps per compiled call used by the training driver (Keras's
#: torch trainer runs one step per call).
STEPS_PER_EXECUTION = 1
#: The samplers do not use XLA on PyTorch.
XLA_SLOW_CONVOLUTIONS = False
