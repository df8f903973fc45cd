"""Runs that survive: kills (also during a save), full and read-only disks,
unwritable folders and second writers, through the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from test_cli import TINY_CONFIG
from test_cli import run_cli
from test_cli import train_args

from ebgan_keras import cli


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="one backend is enough for the kill -9 path of the run folder",
)
@pytest.mark.slow  # subprocesses killed and rerun: CI's slow step
def test_train_resumes_after_kill(tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    args = ["train", "ebgan_pt", "--data", "mnist_subset", "--out", str(out)]
    args += ["--steps-per-epoch", "20", "--verbose", "2"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "ebgan_keras", "--backend", "tensorflow", *args]
    process = subprocess.Popen(
        [*command, "--epochs", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.time() + 300
    for line in process.stdout:
        if line.startswith("Epoch 4/") or time.time() > deadline:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (out / "backup").is_dir()
    assert not (out / "model.keras").exists()
    done = subprocess.run(
        [*command, "--epochs", "4"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    epochs = [line for line in done.stdout.splitlines() if line.startswith("Epoch ")]
    # Epochs 1-3 finished before the kill and are not run again.
    assert epochs and epochs[0].startswith("Epoch 4/4"), epochs
    model = keras.saving.load_model(out / "model.keras")
    for optimizer in (model.d_optimizer, model.g_optimizer):
        assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 4 * 20


def test_unwritable_outputs_fail_at_once_in_one_line(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for argv in (
        ["train", "ebgan_pt", "--data", "mnist_subset", "--out", str(blocker / "r")],
        ["sample", "ebgan_pt_mnist", "--out", str(blocker / "s.png")],
        ["eval", "ebgan_pt_mnist", "--num", "20", "--json", str(blocker / "e.json")],
    ):
        assert cli.main(argv) == 2
        captured = capsys.readouterr()
        assert "Training" not in captured.out  # failed before data and model
        assert str(blocker) in captured.err and "cannot write" in captured.err
        assert len(captured.err.strip().splitlines()) == 1


def test_second_writer_exits_2_naming_the_folder_and_the_holder(tmp_path, capsys):
    from ebgan_keras import files

    out = tmp_path / "run"
    out.mkdir()
    argv = ["train", "ebgan_pt", "--data", "mnist_subset", "--out", str(out)]
    with files.RunFolderLock(out):
        assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert str(out) in error and f"in use by process {os.getpid()}" in error


def _cli_weights(path) -> list[np.ndarray]:
    model = keras.saving.load_model(path)
    variables = [*model.variables, *model.optimizer.variables]
    return [keras.ops.convert_to_numpy(v) for v in variables]


KILL_DURING_SAVE = """
import os, signal, sys
from ebgan_keras import files
fsync, saves = files._fsync_path, [0]
def kill_in_second_save(path, directory=False):
    if not directory and path.endswith(".weights.h5"):
        saves[0] += 1
        if saves[0] == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    return fsync(path, directory)
files._fsync_path = kill_in_second_save
from ebgan_keras.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="subprocess kills on one backend; in-process resume runs on all three",
)
@pytest.mark.slow
def test_kill_9_during_a_save_then_rerun_ends_as_an_uninterrupted_run(tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    runs = {}
    for name in ("straight", "killed"):
        out = tmp_path / name
        argv = [*train_args(out, config, epochs=3)]
        argv[argv.index("--steps-per-epoch") + 1] = "3"
        runs[name] = (out, argv)
    out, argv = runs["straight"]
    done = run_cli(*argv)
    assert done.returncode == 0, done.stderr[-2000:]
    out, argv = runs["killed"]
    killed = subprocess.run(
        [sys.executable, "-c", KILL_DURING_SAVE, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not (out / "model.keras").exists()
    done = run_cli(*argv)
    assert done.returncode == 0, done.stderr[-2000:]
    for a, b in zip(
        _cli_weights(runs["straight"][0] / "model.keras"),
        _cli_weights(out / "model.keras"),
    ):
        np.testing.assert_array_equal(a, b)


def _mount_tmpfs(path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
    )
    return done.returncode == 0


@pytest.fixture
def small_filesystem(tmp_path):
    """A real 48 KB file system (tmpfs), where this machine lets us mount one."""
    mount = tmp_path / "small"
    if not _mount_tmpfs(mount, "size=48k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="one backend for real mounts"
)
def test_full_disk_is_one_line_and_the_run_resumes_once_space_is_back(
    small_filesystem, tmp_path, capsys
):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG))
    out = small_filesystem / "run"
    argv = list(train_args(out, config, epochs=2))
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert "not enough free disk space" in error
    assert "Traceback" not in error and len(error.splitlines()) == 1
    subprocess.run(
        ["mount", "-o", "remount,size=8m", str(small_filesystem)], check=True
    )
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert keras.saving.load_model(out / "model.keras") is not None


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="one backend for real mounts"
)
def test_read_only_folders_are_one_line_errors(small_filesystem, capsys):
    subprocess.run(["mount", "-o", "remount,ro", str(small_filesystem)], check=True)
    target = small_filesystem / "x"
    for argv in (
        ["train", "ebgan_pt", "--data", "mnist_subset", "--out", str(target)],
        ["sample", "ebgan_pt_mnist", "--out", str(target) + ".png"],
        ["eval", "ebgan_pt_mnist", "--num", "20", "--json", str(target) + ".json"],
    ):
        assert cli.main(argv) == 2
        captured = capsys.readouterr()
        assert "Read-only file system" in captured.err, captured.err
        assert "Traceback" not in captured.err
        assert len(captured.err.splitlines()) == 1 and "Training" not in captured.out
