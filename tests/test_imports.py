"""Start-up: what `import ebgan_keras` loads, in fresh processes.

`import ebgan_keras` imports the model classes (registered with Keras
serialization), `losses` and `networks`; `data`, `metrics`, `plot`,
`samplers`, `zoo`, `callbacks` and `visual_callbacks` load on first access.
Under JAX and PyTorch nothing imports TensorFlow until a `tf.data` pipeline is
built, and no matplotlib beyond what `import keras` itself imports (Keras
3.15 imports `matplotlib.pyplot` in `keras.src.visualization`). In the
`ebgan-keras` command line, `import ebgan_keras` imports no Keras at all.

Each check runs in a subprocess with the suite's backend (`KERAS_BACKEND`),
so the suite's three runs cover TensorFlow, JAX and PyTorch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import LATENT_DIM
from helpers import tiny_model

import ebgan_keras as ek

ROOT = Path(__file__).resolve().parents[1]
MARKER = "REPORT "

# Public names that must resolve on `ek` exactly as before the lazy loading.
EXPECTED_NAMES = (
    "BEGAN",
    "EBGAN",
    "EBGANPT",
    "GAN",
    "MAGAN",
    "EnergyGAN",
    "callbacks",
    "data",
    "losses",
    "metrics",
    "models",
    "networks",
    "plot",
    "samplers",
    "visual_callbacks",
    "zoo",
)

_PROBE = """
import json, sys

def top(names, package):
    return sorted(m for m in names if m == package or m.startswith(package + "."))

import keras
with_keras = set(sys.modules)
import ebgan_keras as ek
with_ek = set(sys.modules)
report = {
    "tensorflow_after_import": top(with_ek, "tensorflow"),
    "matplotlib_added_by_import": top(with_ek - with_keras, "matplotlib"),
    "dir": dir(ek),
    "all": list(ek.__all__),
}
resolved = {}
for expression in (
    "ek.EBGAN",
    "ek.data.load",
    "ek.zoo.load",
    "ek.samplers.get",
    "ek.callbacks.BackupAndRestore",
    "ek.plot.grid",
    "ek.metrics.fid",
    "ek.visual_callbacks.SampleGrid",
):
    try:
        resolved[expression] = eval(expression, {"ek": ek}).__name__
    except Exception as error:
        resolved[expression] = f"{type(error).__name__}: {error}"
try:
    from ebgan_keras import plot
    resolved["from ebgan_keras import plot"] = plot.__name__
except Exception as error:
    resolved["from ebgan_keras import plot"] = f"{type(error).__name__}: {error}"
report["resolved"] = resolved
report["tensorflow_after_access"] = top(set(sys.modules), "tensorflow")
print(MARKER + json.dumps(report))
"""


def run_python(code: str) -> dict:
    """Runs `code` in a fresh interpreter; returns the JSON after `MARKER`."""
    env = dict(
        os.environ,
        KERAS_BACKEND=keras.backend.backend(),
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    done = subprocess.run(
        [sys.executable, "-c", f"MARKER = {MARKER!r}\n{code}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    assert lines, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(lines[-1][len(MARKER) :])


@pytest.fixture(scope="module")
def probe() -> dict:
    return run_python(_PROBE)


@pytest.mark.skipif(
    keras.backend.backend() == "tensorflow",
    reason="the TensorFlow backend imports TensorFlow itself",
)
def test_import_loads_no_tensorflow_under_jax_and_torch(probe):
    assert probe["tensorflow_after_import"] == []
    # Reaching the lazy submodules does not import it either; only building
    # a tf.data pipeline (`ek.data.load(...)`) does.
    assert probe["tensorflow_after_access"] == []


def test_import_adds_no_matplotlib_beyond_keras(probe):
    assert probe["matplotlib_added_by_import"] == []


def test_lazy_names_resolve_as_before(probe):
    assert probe["resolved"] == {
        "ek.EBGAN": "EBGAN",
        "ek.data.load": "load",
        "ek.zoo.load": "load",
        "ek.samplers.get": "get",
        "ek.callbacks.BackupAndRestore": "BackupAndRestore",
        "ek.plot.grid": "grid",
        "ek.metrics.fid": "fid",
        "ek.visual_callbacks.SampleGrid": "SampleGrid",
        "from ebgan_keras import plot": "ebgan_keras.plot",
    }


def test_dir_and_all_list_every_public_name(probe):
    for name in EXPECTED_NAMES:
        assert name in probe["all"], name
        assert name in probe["dir"], name  # before any lazy name was reached
    assert "__version__" in probe["dir"]


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        ek.not_a_name  # noqa: B018
    assert not hasattr(ek, "EBGAN_typo")


def test_saved_model_loads_after_only_import_ebgan_keras(tmp_path):
    model = tiny_model(ek.EBGAN)
    path = tmp_path / "model.keras"
    model.save(path)
    latents = np.random.default_rng(0).normal(size=(3, LATENT_DIM))
    np.save(tmp_path / "latents.npy", latents.astype("float32"))
    code = f"""
import json
import keras
import numpy as np
import ebgan_keras
loaded = keras.saving.load_model({str(path)!r})
images = loaded.generate(np.load({str(tmp_path / "latents.npy")!r}))
np.save({str(tmp_path / "images.npy")!r}, keras.ops.convert_to_numpy(images))
print(MARKER + json.dumps({{"class": type(loaded).__name__}}))
"""
    report = run_python(code)
    assert report["class"] == "EBGAN"
    expected = keras.ops.convert_to_numpy(model.generate(latents.astype("float32")))
    np.testing.assert_allclose(np.load(tmp_path / "images.npy"), expected, atol=1e-6)


def test_command_line_import_loads_no_keras_until_a_name_is_used():
    code = """
import json, sys
sys.argv[0] = "/usr/local/bin/ebgan-keras"
import ebgan_keras as ek
report = {"lazy": ek._LAZY, "keras_after_import": "keras" in sys.modules}
report["EBGAN"] = ek.EBGAN.__name__
report["keras_after_access"] = "keras" in sys.modules
report["dir_has_EBGAN"] = "EBGAN" in dir(ek)
print(MARKER + json.dumps(report))
"""
    assert run_python(code) == {
        "lazy": True,
        "keras_after_import": False,
        "EBGAN": "EBGAN",
        "keras_after_access": True,
        "dir_has_EBGAN": True,
    }


@pytest.mark.parametrize(
    "argv, orig_argv, expected",
    [
        (["/venv/bin/ebgan-keras", "zoo", "list"], None, True),
        (["/venv/Scripts/ebgan-keras.exe", "--help"], None, True),
        # `python -m ebgan_keras` imports the package while argv[0] is "-m".
        (["-m", "--help"], ["python", "-m", "ebgan_keras", "--help"], True),
        (["-m"], ["python", "-X", "importtime", "-mebgan_keras.cli"], True),
        (["-m"], ["python", "-m", "some_tool"], False),
        (["-c"], ["python", "-c", "import ebgan_keras"], False),
        (["/venv/bin/pytest", "tests"], None, False),
        (["/home/me/train.py"], None, False),
        ([], None, False),
    ],
)
def test_command_line_detection(monkeypatch, argv, orig_argv, expected):
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys, "orig_argv", orig_argv or ["python", *argv])
    assert ek._started_by_command_line() is expected


def test_autotune_constant_matches_tensorflow():
    # `ebgan_keras.data._pipeline` spells `tf.data.AUTOTUNE` as -1 so that
    # importing it needs no TensorFlow.
    import tensorflow as tf

    from ebgan_keras.data import _pipeline

    assert _pipeline.AUTOTUNE == tf.data.AUTOTUNE


@pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="the benchmark script is checked once, from the JAX session",
)
def test_startup_benchmark_quick_run_writes_nothing(tmp_path):
    env = dict(
        os.environ,
        EK_BENCH_RESULTS_DIR=str(tmp_path / "results"),
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "startup_time.py"),
            "--quick",
            "--runs",
            "1",
            "--backends",
            "jax",
            "--no-save",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for command in ('import keras"', 'import ebgan_keras"', "--help", "zoo list"):
        assert command in done.stdout, done.stdout
    assert not (tmp_path / "results").exists()
