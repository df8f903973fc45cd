"""The backend seam: one adapter per backend, the same API in each, no private Keras."""

from __future__ import annotations

import importlib
import inspect
import pathlib

import keras
import numpy as np
import pytest
from helpers import run_in_step
from keras import ops

import ebgan_keras
from ebgan_keras import backend

ADAPTERS = ("jax", "tensorflow", "torch")
PACKAGE = pathlib.Path(ebgan_keras.__file__).parent


def _public_functions(module) -> dict:
    return {
        name: inspect.signature(value)
        for name, value in vars(module).items()
        if inspect.isfunction(value)
        and not name.startswith("_")
        and value.__module__ == module.__name__
    }


def test_every_adapter_defines_the_same_functions_and_signatures():
    # All three libraries are installed: each adapter module imports.
    apis = {
        name: _public_functions(importlib.import_module(f"ebgan_keras.backend.{name}"))
        for name in ADAPTERS
    }
    reference = apis["tensorflow"]
    constants = {name for name in backend.__all__ if name.isupper()}
    assert constants == {"STEPS_PER_EXECUTION", "XLA_SLOW_CONVOLUTIONS"}
    assert set(reference) == set(backend.__all__) - constants
    for name, api in apis.items():
        assert set(api) == set(reference), name
        for function, signature in api.items():
            assert signature == reference[function], f"{name}.{function}"
        module = importlib.import_module(f"ebgan_keras.backend.{name}")
        assert isinstance(module.STEPS_PER_EXECUTION, int), name
        assert module.STEPS_PER_EXECUTION >= 1, name
        assert isinstance(module.XLA_SLOW_CONVOLUTIONS, bool), name


def test_the_package_exports_the_active_adapter():
    adapter = importlib.import_module(f"ebgan_keras.backend.{keras.backend.backend()}")
    for name in backend.__all__:
        assert getattr(backend, name) is getattr(adapter, name), name


def test_no_private_keras_import_outside_the_seam():
    # `backend/keras_internals.py` holds the private Keras the library uses.
    seam = PACKAGE / "backend" / "keras_internals.py"
    assert "keras.src" in seam.read_text()
    for path in PACKAGE.rglob("*.py"):
        if path != seam:
            assert "keras.src" not in path.read_text(), path


@pytest.mark.parametrize(
    "part", ["models", "samplers", "callbacks.py", "utils.py", "losses.py"]
)
def test_no_backend_branch_in_the_core_outside_the_seam(part):
    paths = [PACKAGE / part] if part.endswith(".py") else (PACKAGE / part).rglob("*.py")
    for path in paths:
        assert "backend.backend()" not in path.read_text(), path


def _linear_critic():
    inputs = keras.Input((3,))
    critic = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    critic.layers[-1].kernel.assign(np.array([[0.6], [-1.2], [2.0]], "float32"))
    return critic


def test_gradient_of_a_gradient_linear_critic():
    """A linear critic `w.x + b` has input-gradient norm `|w|` everywhere."""
    critic = _linear_critic()
    kernel, bias = critic.trainable_variables
    points = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")

    def step(x):
        def penalty_fn():
            _, gradient = backend.input_value_and_grad(
                lambda v: ops.reshape(critic(v), (-1,)), x
            )
            norm = ops.sqrt(ops.sum(ops.square(gradient), axis=1))
            return ops.mean(ops.square(norm - 1.0)), {"norm": norm}

        penalty, aux, gradients = backend.value_and_grad(penalty_fn, [kernel, bias])
        return {"penalty": penalty, "norm": aux["norm"], "gradients": gradients}

    logs = run_in_step(critic, step, ops.convert_to_tensor(points))
    w = np.array([0.6, -1.2, 2.0])
    length = np.linalg.norm(w)
    np.testing.assert_allclose(ops.convert_to_numpy(logs["norm"]), length, rtol=1e-5)
    np.testing.assert_allclose(
        float(ops.convert_to_numpy(logs["penalty"])), (length - 1.0) ** 2, rtol=1e-5
    )
    kernel_gradient, bias_gradient = (
        ops.convert_to_numpy(g) for g in logs["gradients"]
    )
    # d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|; the bias does not move the norm.
    np.testing.assert_allclose(
        kernel_gradient[:, 0], 2.0 * (length - 1.0) * w / length, rtol=1e-5
    )
    np.testing.assert_allclose(bias_gradient, 0.0, atol=1e-7)


def test_input_value_and_grad_of_a_quadratic():
    def energy_fn(v):
        return 0.5 * ops.sum(ops.square(v), axis=1)

    points = np.arange(6, dtype="float32").reshape(2, 3)
    energy, gradient = backend.input_value_and_grad(
        energy_fn, ops.convert_to_tensor(points)
    )
    np.testing.assert_allclose(ops.convert_to_numpy(energy), [2.5, 25.0])
    np.testing.assert_allclose(ops.convert_to_numpy(gradient), points)


def test_value_and_grad_outside_a_step_is_refused_on_jax():
    if keras.backend.backend() != "jax":
        pytest.skip("TensorFlow and PyTorch variables are live outside a step")
    critic = _linear_critic()
    with pytest.raises(RuntimeError, match="stateful_step"):
        backend.value_and_grad(lambda: (ops.sum(critic.weights[0]), {}), [])


def _adam_and_variables(**options):
    rng = np.random.default_rng(0)
    variables = [
        keras.Variable(rng.normal(size=shape).astype("float32"))
        for shape in ((5, 3), (3,))
    ]
    optimizer = keras.optimizers.Adam(0.01, beta_1=0.5, **options)
    optimizer.build(variables)
    return optimizer, variables


@pytest.mark.parametrize("options", [{}, {"amsgrad": True}, {"clipnorm": 0.1}])
def test_apply_gradients_is_the_optimizers_own_update(options):
    # On PyTorch a plain Adam takes the fused update, the others optimizer.apply:
    # both must move weights and moments as Keras' Adam does, step after step.
    fused, fused_variables = _adam_and_variables(**options)
    keras_adam, keras_variables = _adam_and_variables(**options)
    rng = np.random.default_rng(1)
    for _ in range(4):
        gradients = [
            ops.convert_to_tensor(rng.normal(size=v.shape).astype("float32"))
            for v in fused_variables
        ]
        backend.apply_gradients(fused, gradients, fused_variables)
        keras_adam.apply(gradients, keras_variables)
    assert int(fused.iterations) == int(keras_adam.iterations) == 4
    for ours, theirs in zip(
        fused_variables + fused.variables, keras_variables + keras_adam.variables
    ):
        np.testing.assert_allclose(
            ops.convert_to_numpy(ours),
            ops.convert_to_numpy(theirs),
            rtol=1e-5,
            atol=1e-7,
        )


@pytest.mark.parametrize("finite", [True, False])
def test_where_finite_keeps_or_zeros_every_gradient(finite):
    gradients = [ops.ones((2, 3)), ops.full((4,), 2.0)]
    kept = backend.where_finite(ops.convert_to_tensor(finite), gradients)
    for gradient, result in zip(gradients, kept):
        expected = ops.convert_to_numpy(gradient) * float(finite)
        np.testing.assert_array_equal(ops.convert_to_numpy(result), expected)
