"""The command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import ebgan_keras as ek


def run_cli(*args, cwd=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    command = [
        sys.executable,
        "-m",
        "ebgan_keras",
        "--backend",
        keras.backend.backend(),
    ]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    done = run_cli(
        "train", "ebgan_pt", "--data", "mnist_subset", "--epochs", "2",
        "--steps-per-epoch", "3", "--out", str(out), "--verbose", "0",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_train_writes_model_history_and_samples(run_dir):
    model = keras.saving.load_model(run_dir / "model.keras")
    assert isinstance(model, ek.EBGANPT)
    assert int(keras.ops.convert_to_numpy(model.g_optimizer.iterations)) == 6
    picture = np.asarray(Image.open(run_dir / "samples.png"))
    assert picture.shape == (8 * 28 * 2, 8 * 28 * 2) and picture.std() > 1.0
    assert (run_dir / "history.json").read_text().count("d_loss") == 1


def test_sample_from_saved_model(run_dir, tmp_path):
    out, npz = tmp_path / "grid.png", tmp_path / "samples.npz"
    done = run_cli(
        "sample", str(run_dir / "model.keras"), "--sampler", "truncation",
        "--num", "9", "--out", str(out), "--npz", str(npz),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    arrays = np.load(npz)
    assert arrays["images"].shape == (9, 28, 28, 1)
    assert arrays["latents"].shape == (9, 64)
    assert Image.open(out).size == (3 * 28 * 2, 3 * 28 * 2)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("train", "wgan", "--out", "x"), "invalid choice: 'wgan'"),
        (("train", "ebgan", "--out", "x", "--epochs", "0"), "positive integer"),
        (("sample", "missing.keras"), "Received: 'missing.keras'"),
    ],
)
def test_user_errors_exit_2_without_traceback(args, message, tmp_path):
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_grid_is_written_and_not_blank(tmp_path):
    images = np.linspace(-1, 1, 5 * 4 * 4 * 3, dtype="float32").reshape(5, 4, 4, 3)
    picture = ek.plot.grid(images, str(tmp_path / "g.png"), nrow=3, scale=1)
    assert picture.size == (12, 8)
    pixels = np.asarray(Image.open(tmp_path / "g.png"))
    assert pixels.shape == (8, 12, 3) and pixels.std() > 10


def test_grid_rejects_bad_images():
    with pytest.raises(ValueError, match=r"Received: images with shape \(4, 4\)"):
        ek.plot.grid(np.zeros((4, 4)))
