"""Per-backend pieces of the latent samplers: gradients and compilation.

The DDLS chain is written once in `keras.ops` (`ebgan_keras.samplers.ddls`).
`keras.ops` has no gradient op, so two small things differ per backend and
live here, picked once at import:

- `energy_and_grad(energy_fn, w)`: the per-chain energy `U(w)` and its
  gradient with respect to the latents (`jax.value_and_grad`,
  `tf.GradientTape`, `torch.autograd.grad`).
- `compile_chain(model, chain_fn, jit_compile)`: `jax.jit` with the model's
  variables passed in as state (never closed over as stale constants),
  `tf.function(jit_compile=True)` (which reads variables live), and on PyTorch
  an eager loop under `torch.no_grad` (the gradient adapter switches grad on
  for the latents only).

The chain's noise is not drawn here: it is drawn with numpy outside the loop
and passed in, because XLA and plain TensorFlow (and each backend) have their
own random bit generators, so in-graph noise would make the compiled and the
eager chain disagree (measured: TensorFlow's stateless normal differs under
XLA even with the algorithm pinned).
"""

from __future__ import annotations

from collections.abc import Callable

import keras

_BACKEND = keras.backend.backend()


def _unique_variables(model) -> list:
    """Every variable the latent energy may read, once each."""
    seen = set()
    variables = []
    groups = [model.generator.variables, model.discriminator.variables]
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


if _BACKEND == "jax":
    import jax
    from keras import StatelessScope

    def energy_and_grad(energy_fn: Callable, w):
        """Returns `(U(w), dU/dw)`; `energy_fn` maps `(N, d)` to `(N,)`."""

        def total(latents):
            energy = energy_fn(latents)
            return jax.numpy.sum(energy), energy

        (_, energy), gradient = jax.value_and_grad(total, has_aux=True)(w)
        return energy, gradient

    def compile_chain(model, chain_fn: Callable, jit_compile: bool) -> Callable:
        """Compiles `chain_fn(*args)` for `model`; returns a callable."""
        if not jit_compile:
            return chain_fn
        variables = _unique_variables(model)

        def stateless_chain(values, *args):
            with StatelessScope(
                state_mapping=list(zip(variables, values, strict=True))
            ):
                return chain_fn(*args)

        jitted = jax.jit(stateless_chain)

        def run(*args):
            # The current values go in as arguments on every call, so weights
            # changed after compilation are seen (no retrace needed).
            return jitted([variable.value for variable in variables], *args)

        return run

elif _BACKEND == "tensorflow":
    import tensorflow as tf

    def energy_and_grad(energy_fn: Callable, w):
        """Returns `(U(w), dU/dw)`; `energy_fn` maps `(N, d)` to `(N,)`."""
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(w)
            energy = energy_fn(w)
        return energy, tape.gradient(energy, w)

    def compile_chain(model, chain_fn: Callable, jit_compile: bool) -> Callable:
        """Compiles `chain_fn(*args)` for `model`; returns a callable."""
        del model  # tf.function reads the model's variables live.
        if not jit_compile:
            return chain_fn
        return tf.function(chain_fn, jit_compile=True, reduce_retracing=True)

elif _BACKEND == "torch":
    import torch

    def energy_and_grad(energy_fn: Callable, w):
        """Returns `(U(w), dU/dw)`; `energy_fn` maps `(N, d)` to `(N,)`."""
        with torch.enable_grad():
            latents = w.detach().requires_grad_(True)
            energy = energy_fn(latents)
            (gradient,) = torch.autograd.grad(energy.sum(), latents)
        return energy.detach(), gradient.detach()

    def compile_chain(model, chain_fn: Callable, jit_compile: bool) -> Callable:
        """Wraps `chain_fn(*args)` to run under `torch.no_grad`.

        Keras' PyTorch `fori_loop` is a Python loop, so the chain runs eagerly
        whatever `jit_compile` says; only the latents get gradients.
        """
        del model, jit_compile

        def run(*args):
            with torch.no_grad():
                return chain_fn(*args)

        return run

else:  # pragma: no cover - the library refuses other backends at import.
    raise ImportError(
        "ebgan_keras.samplers supports the Keras backends 'tensorflow', 'jax' "
        f"and 'torch'. Received: KERAS_BACKEND={_BACKEND!r}"
    )

__all__ = ["compile_chain", "energy_and_grad"]
