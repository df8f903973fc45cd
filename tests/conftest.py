"""Shared test settings: the suite runs once per Keras backend (KERAS_BACKEND)."""

from __future__ import annotations

import os

# Before JAX is imported (by Keras): JAX's default partitionable Threefry
# compiles each weight initializer's shape for seconds on a CPU (measured on
# this 2-core machine: tests/test_networks.py on JAX took 246 s with it, 78 s
# without). The suite tests behaviour, not JAX's default random streams; set
# JAX_THREEFRY_PARTITIONABLE=true to run it with them. Subprocesses inherit it.
os.environ.setdefault("JAX_THREEFRY_PARTITIONABLE", "false")

import importlib.util  # noqa: E402

#: Whether TensorFlow is installed. Without it (CI's second venv, `pip install
#: -e ".[jax,torch]"`) only the tests marked `notf` run, and the package
#: picks JAX (else PyTorch) when KERAS_BACKEND is unset.
HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None
if not HAS_TENSORFLOW:
    import ebgan_keras  # noqa: E402, F401 - sets a default KERAS_BACKEND

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow", action="store_true", default=False, help="run slow tests"
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: longer tests, run with --run-slow")
    config.addinivalue_line(
        "markers", "network: downloads from the package registries (pip, apt)"
    )
    config.addinivalue_line(
        "markers", "notf: runs without TensorFlow too (CI's second venv)"
    )


def pytest_collection_modifyitems(config, items):
    if not HAS_TENSORFLOW:
        skip_tf = pytest.mark.skip(reason="needs TensorFlow (not marked notf)")
        for item in items:
            if "notf" not in item.keywords:
                item.add_marker(skip_tf)
    if config.getoption("--run-slow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.backend.backend()}"


@pytest.fixture(autouse=True)
def _clear_session():
    keras.utils.clear_session()
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture
def backend() -> str:
    return keras.backend.backend()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
