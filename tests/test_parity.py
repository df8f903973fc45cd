"""Parity across backends: same weights, data and latents give the same step.

No other library in this field checks this: one training step of each model
on TensorFlow, JAX and PyTorch must give the same losses and the same updated
weights (and BEGAN's `k`) within float tolerance, and weights saved on one
backend must generate the same images on the other two. The three backends
run in subprocesses; the test runs once, in the TensorFlow session of the
suite (set EBGAN_PARITY=1 to run it under any backend).
"""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

HERE = os.path.dirname(__file__)
BACKENDS = ("tensorflow", "jax", "torch")
NAMES = (
    "ebgan_pt_mlp",
    "ebgan_pt_conv",
    "began",
    "magan",
    "wgan_gp",
    "loss_sensitive_gan",
    "bigan",
    "bigbigan",
)

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow" and not os.environ.get("EBGAN_PARITY"),
    reason="runs all three backends in subprocesses, once, from the TF session",
)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")

    def start(backend: str) -> subprocess.Popen:
        args = [sys.executable, os.path.join(HERE, "parity_step.py")]
        args.append(str(root / backend))
        if backend != "tensorflow":
            args.append(str(root / "tensorflow"))
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        return subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def finish(process: subprocess.Popen) -> None:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]

    # TensorFlow first (the others load its weights), then JAX and PyTorch
    # side by side.
    finish(start("tensorflow"))
    for process in [start(backend) for backend in BACKENDS[1:]]:
        finish(process)
    return {
        backend: {name: dict(np.load(root / backend / f"{name}.npz")) for name in NAMES}
        for backend in BACKENDS
    }


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("backend", ("jax", "torch"))
def test_one_step_matches_tensorflow(results, name, backend):
    reference, other = results["tensorflow"][name], results[backend][name]
    assert set(reference) - {"loaded_images"} == set(other) - {"loaded_images"}
    logs = [key for key in reference if key.startswith("log_")]
    assert {"log_d_loss", "log_g_loss"} <= set(logs)
    for key in logs:
        np.testing.assert_allclose(other[key], reference[key], rtol=2e-4, err_msg=key)
    variables = [key for key in reference if key.startswith("var_")]
    assert len(variables) > 4
    for key in variables:
        np.testing.assert_allclose(
            other[key], reference[key], rtol=2e-4, atol=2e-5, err_msg=key
        )
    np.testing.assert_allclose(other["images"], reference["images"], atol=5e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("backend", ("jax", "torch"))
def test_weights_saved_on_tensorflow_load_elsewhere(results, name, backend):
    np.testing.assert_allclose(
        results[backend][name]["loaded_images"],
        results["tensorflow"][name]["images"],
        atol=5e-5,
    )
