"""PyTorch adapter: gradients from `torch.autograd.grad`.

`torch.autograd.grad` computes only the gradients asked for, so the
generator's step does not pay for the discriminator's weight gradients and
nothing accumulates in `.grad` between the two optimizers.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence

import torch


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


def _detach(structure):
    if isinstance(structure, dict):
        return {key: _detach(value) for key, value in structure.items()}
    if isinstance(structure, torch.Tensor):
        return structure.detach()
    return structure


def stateful_step(model, step_fn: Callable, data, training: bool = True):
    """Runs a stateful training step; PyTorch variables update in place."""
    del model, training
    return step_fn(data)
