"""No silent wrong result, no user data overwritten, no internal error for a
user's mistake (issue 33): foreign run folders, stale leftovers, strict JSON,
bounded memory, full disks during a write."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from test_training import file_handling
from test_training import tiny_config

import ebgan_keras as ek
from ebgan_keras import cli
from ebgan_keras import files
from ebgan_keras.run import sweeps
from ebgan_keras.run import training

REPO = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict:
    """Every file under `folder` with its bytes' sha256 and its mtime."""
    return {
        str(path.relative_to(folder)): (files.file_sha256(path), path.stat().st_mtime)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# ----------------------------------------------------------------------
# Item 2: a folder that is not a run folder of ours is refused
# ----------------------------------------------------------------------
@file_handling
def test_train_refuses_a_foreign_folder_naming_it_and_writes_nothing(tmp_path, capsys):
    entry = tmp_path / "my_entry"
    shutil.copytree(REPO / "zoo" / "ebgan_pt_mnist", entry)
    before = snapshot(entry)
    argv = ["train", "ebgan_pt", "--data", "mnist_subset", "--epochs", "1"]
    argv += ["--steps-per-epoch", "2", "--out", str(entry), "--verbose", "0"]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert str(entry) in error and "not a run folder" in error
    assert len(error.splitlines()) == 1
    assert snapshot(entry) == before  # not one byte written, no .lock either
    # The library refuses it too.
    with pytest.raises(files.RunFolderError, match="not a run folder"):
        training.train(tiny_config(epochs=1), str(entry), verbose=0)
    assert snapshot(entry) == before


@file_handling
def test_empty_missing_and_real_run_folders_still_train(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    training.train(tiny_config(epochs=1), str(empty), verbose=0)
    missing = tmp_path / "a" / "b"
    training.train(tiny_config(epochs=1), str(missing), verbose=0)
    # A real run folder resumes (with files of the user's beside ours).
    (missing / "notes.txt").write_text("mine")
    model = training.train(tiny_config(epochs=2), str(missing), verbose=0)
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 6
    assert (missing / "notes.txt").read_text() == "mine"


@file_handling
def test_a_refused_run_leaves_no_lock_only_folder(tmp_path):
    bad = ek.run.config.merge(tiny_config(epochs=1), {"training": {"data": "nope"}})
    new = tmp_path / "new"
    with pytest.raises(training.DataError):
        training.train(bad, str(new), verbose=0)
    assert not new.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(training.DataError):
        training.train(bad, str(empty), verbose=0)
    assert os.listdir(empty) == []


# ----------------------------------------------------------------------
# Item 8: stale backup, nothing trained, NaN settings, strict JSON, empty fit
# ----------------------------------------------------------------------
@file_handling
def test_a_stale_backup_of_a_finished_run_is_removed(tmp_path):
    run = tmp_path / "run"
    training.train(tiny_config(epochs=1), str(run), verbose=0)
    # What a kill in the deletion window of the backup left behind.
    (run / "backup").mkdir()
    (run / "backup" / "training_metadata.json").write_text('{"epoch": 0}')
    training.train(tiny_config(epochs=1), str(run), verbose=0)
    assert not (run / "backup").exists()
    # The deletion itself is one rename: no part is ever left under the name.
    (run / "backup").mkdir()
    (run / "backup" / "x").write_text("x")
    files.remove_folder(run / "backup")
    assert not (run / "backup").exists()
    assert not [name for name in os.listdir(run) if "partial" in name]


@file_handling
def test_a_rerun_with_fewer_epochs_says_that_nothing_was_trained(tmp_path):
    run = tmp_path / "run"
    training.train(tiny_config(epochs=2), str(run), verbose=0)
    before = files.file_sha256(run / "model.keras")
    lines = []
    training.train(tiny_config(epochs=1), str(run), verbose=0, announce=lines.append)
    assert len(lines) == 1 and lines[0].startswith("Nothing was trained")
    assert "2 epoch(s)" in lines[0] and "asks for 1" in lines[0]
    assert files.file_sha256(run / "model.keras") == before


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_settings_are_refused_by_the_sweep_pre_check(tmp_path, value):
    tiny = {"training": {"epochs": 1, "steps_per_epoch": 2, "data": "mnist_subset"}}
    out = tmp_path / "sweep"
    with pytest.raises(sweeps.SweepError, match=r"model\.margin"):
        ek.sweep("ebgan_pt", str(out), grid={"model.margin": [value]}, overrides=tiny)
    assert not out.exists()
    with pytest.raises(ek.run.config.ConfigError, match=r"training\.learning_rate"):
        ek.run.config.validate(
            ek.run.config.merge(tiny_config(), {"training": {"learning_rate": value}})
        )


def test_results_jsonl_is_strict_json(tmp_path):
    out = tmp_path / "sweep"
    row = {"index": 0, "fid": math.nan, "final_logs": {"d_loss": math.inf}}
    os.makedirs(out)
    files.write_json(out / sweeps.SWEEP_FILE, {"trials": [{"index": 0}]})
    os.makedirs(sweeps.trial_dir(str(out), 0))
    files.write_json(os.path.join(sweeps.trial_dir(str(out), 0), sweeps.ROW_FILE), row)
    sweeps.collect(str(out))

    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    text = (out / sweeps.RESULTS_FILE).read_text()
    rows = [json.loads(line, parse_constant=refuse) for line in text.splitlines()]
    assert rows == [{"index": 0, "fid": None, "final_logs": {"d_loss": None}}]


def test_fit_on_an_empty_array_names_x():
    model = ek.EBGANPT(
        generator=ek.networks.ebgan_mlp_generator(latent_dim=4, hidden_units=(8,)),
        discriminator=ek.networks.ebgan_mlp_discriminator(encoder_units=(8, 4)),
        seed=0,
    )
    model.compile()
    with pytest.raises(ValueError, match=r"`x` holds no images.*\(0, 28, 28, 1\)"):
        model.fit(np.zeros((0, 28, 28, 1), "float32"), epochs=1, verbose=0)


# ----------------------------------------------------------------------
# Item 4: the disk fills between the free-space check and the write
# ----------------------------------------------------------------------
NO_SPACE_CHECK = """
import sys
from ebgan_keras import files
files.check_free_space = lambda path, needed: None  # full after the check
from ebgan_keras.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow  # two training subprocesses
def test_a_disk_that_fills_during_the_checkpoint_write_is_one_line_and_rc_2(
    tmp_path,
):
    from test_cli import TINY_CONFIG
    from test_cli import train_args
    from test_run_safety import _mount_tmpfs

    mount = tmp_path / "small"
    # Room for one checkpoint (863 kB) and the logs, not for a second one
    # written beside it: the second epoch's save fills the disk.
    if not _mount_tmpfs(mount, "size=1400k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        config = tmp_path / "tiny.json"
        config.write_text(json.dumps(TINY_CONFIG))
        out = mount / "run"
        argv = train_args(out, config, epochs=2)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        command = [sys.executable, "-c", NO_SPACE_CHECK, *argv]
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=600
        )
        ours = [line for line in done.stderr.splitlines() if "ebgan-keras" in line]
        assert done.returncode == 2, done.stderr[-3000:]
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        assert len(ours) == 1 and "No space left on device" in ours[0], ours
        checkpoint = out / "backup" / training.CHECKPOINT_FILE
        import h5py

        with h5py.File(checkpoint, "r") as handle:  # the first epoch's, whole
            assert len(handle.keys()) > 0
        assert not [name for name in os.listdir(out / "backup") if "partial" in name]
        subprocess.run(["mount", "-o", "remount,size=8m", str(mount)], check=True)
        done = subprocess.run(
            [sys.executable, "-m", "ebgan_keras", *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_in_memory_weights_and_models_load_as_keras_writes_them(tmp_path):
    model = ek.EBGANPT(
        generator=ek.networks.ebgan_mlp_generator(latent_dim=4, hidden_units=(8,)),
        discriminator=ek.networks.ebgan_mlp_discriminator(encoder_units=(8, 4)),
        seed=0,
    )
    model.compile()
    model.fit(np.zeros((8, 28, 28, 1), "float32"), batch_size=4, epochs=1, verbose=0)
    files.save_weights(model, tmp_path / "a.weights.h5")
    files.save_model(model, tmp_path / "a.keras")
    twin = ek.EBGANPT(
        generator=ek.networks.ebgan_mlp_generator(latent_dim=4, hidden_units=(8,)),
        discriminator=ek.networks.ebgan_mlp_discriminator(encoder_units=(8, 4)),
        seed=1,
    )
    twin.compile()
    twin.fit(np.zeros((8, 28, 28, 1), "float32"), batch_size=4, epochs=1, verbose=0)
    twin.load_weights(tmp_path / "a.weights.h5")
    loaded = keras.saving.load_model(tmp_path / "a.keras")
    for other in (twin, loaded):
        for a, b in zip(
            [*model.variables, *model.optimizer.variables],
            [*other.variables, *other.optimizer.variables],
        ):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
            )


# ----------------------------------------------------------------------
# Item 3: memory flat in the number of samples, or refused up front
# ----------------------------------------------------------------------
def tiny_model(seed: int = 0):
    model = ek.EBGANPT(
        generator=ek.networks.ebgan_mlp_generator(latent_dim=4, hidden_units=(8,)),
        discriminator=ek.networks.ebgan_mlp_discriminator(encoder_units=(8, 4)),
        seed=seed,
    )
    model.compile()
    return model


def feature_extractor(dim: int = 64):
    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Dense(dim, kernel_initializer="ones")(
        keras.layers.Flatten()(inputs)
    )
    net = keras.Model(inputs, outputs)
    return ek.metrics.FeatureExtractor(net, name="tiny", cache_id=None)


def test_running_statistics_equal_the_statistics_of_all_features():
    rng = np.random.default_rng(0)
    features = rng.normal(3.0, 2.0, size=(1001, 16))
    running = ek.metrics.statistics.RunningStatistics()
    for batch in np.array_split(features, [1, 300, 301, 700]):
        running.update(batch)
    mu, sigma = running.statistics()
    expected_mu, expected_sigma = ek.metrics.feature_statistics(features)
    np.testing.assert_allclose(mu, expected_mu, rtol=1e-12)
    np.testing.assert_allclose(sigma, expected_sigma, rtol=1e-10, atol=1e-12)


def peak_bytes(function) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_fid_of_a_model_streams_memory_flat_in_num_samples():
    model = tiny_model()
    extractor = feature_extractor()
    reference = np.random.default_rng(1).uniform(-1, 1, (200, 28, 28, 1))
    chunk = 500 * 28 * 28 * 4  # 500 images per chunk

    def fid(num):
        return lambda: ek.metrics.fid(
            model,
            reference=reference.astype("float32"),
            features=extractor,
            num_samples=num,
            chunk_bytes=chunk,
            cache=False,
        )

    fid(1000)()  # compiled once, outside the measurement
    small, large = peak_bytes(fid(2000)), peak_bytes(fid(20000))
    # Holding 20000 images (63 MB) and their features (10 MB) would show.
    assert large < small + 8e6, (small, large)
    # One chunk: exactly the images of `generate(num, seed=seed)`.
    images = model.generate(400, seed=0)
    direct = ek.metrics.fid(
        images, reference=reference.astype("float32"), features=extractor, cache=False
    )
    streamed = ek.metrics.fid(
        model,
        reference=reference.astype("float32"),
        features=extractor,
        num_samples=400,
        seed=0,
        cache=False,
    )
    assert float(direct) == float(streamed)


def test_metrics_that_need_all_features_are_refused_naming_the_memory(monkeypatch):
    from ebgan_keras import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 2_000_000)
    model = tiny_model()
    reference = np.random.default_rng(1).uniform(-1, 1, (50, 28, 28, 1))
    kwargs = dict(
        reference=reference.astype("float32"),
        features=feature_extractor(),
        num_samples=5000,
        cache=False,
    )
    with pytest.raises(memory.MemoryBudgetError, match=r"kid.*MB in memory.*free"):
        ek.metrics.evaluate(model, metrics=("fid", "kid"), **kwargs)
    assert math.isfinite(float(ek.metrics.fid(model, **kwargs)))  # streams


def test_ddls_refuses_noise_that_cannot_fit_before_drawing_it():
    from ebgan_keras import memory

    sampler = ek.samplers.DDLS(num_steps=10**9, step_size=0.01, seed=0)
    expected = r"num_steps=1000000000.*GB in memory.*free"
    with pytest.raises(memory.MemoryBudgetError, match=expected):
        sampler.sample(tiny_model(), 8)


def test_sample_in_chunks_is_one_call_up_to_a_chunk_and_seeded_beyond():
    model = tiny_model()
    whole = ek.samplers.Prior(seed=3).sample(model, 30)[0]
    chunks = list(ek.samplers.sample_in_chunks(ek.samplers.Prior(seed=3), model, 30))
    assert len(chunks) == 1
    np.testing.assert_array_equal(chunks[0][0], whole)
    small = 10 * 28 * 28 * 4
    split = [
        [images for images, _ in ek.samplers.sample_in_chunks(
            ek.samplers.Prior(seed=3), model, 25, chunk_bytes=small
        )]
        for _ in range(2)
    ]  # fmt: skip
    assert [len(images) for images in split[0]] == [10, 10, 5]
    for a, b in zip(*split):
        np.testing.assert_array_equal(a, b)


@file_handling
def test_cli_sample_and_eval_refuse_or_stream_with_little_free_memory(
    monkeypatch, tmp_path, capsys
):
    from ebgan_keras import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 40_000_000)
    out = tmp_path / "grid.png"
    assert cli.main(["sample", "ebgan_pt_mnist", "--num", "10000", "--out", str(out)])
    error = capsys.readouterr().err
    assert "--num 10000" in error and "free" in error and len(error.splitlines()) == 1
    assert not out.exists()
    monkeypatch.setattr(memory, "available_bytes", lambda: 200_000)
    argv = ["eval", "ebgan_pt_mnist", "--num", "3000", "--reference", "mnist_subset"]
    assert cli.main([*argv, "--metrics", "fid,kid"]) == 2
    error = capsys.readouterr().err
    assert "in memory" in error and len(error.splitlines()) == 1
    assert cli.main([*argv, "--metrics", "fid"]) == 0, capsys.readouterr().err


# ----------------------------------------------------------------------
# Every documented error path of the README: exit code 2, one line
# ----------------------------------------------------------------------
def _one_line_error(argv, capsys, expected: str) -> None:
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code == 2, (argv, code, captured.err)
    lines = captured.err.splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith(f"ebgan-keras {argv[0]}: error: "), lines[0]
    assert expected in lines[0], lines[0]


@file_handling
def test_readme_training_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    from test_cli import TINY_CONFIG
    from test_cli import train_args

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG))
    base = list(train_args(tmp_path / "run", config, epochs=1))
    out = base.index("--out") + 1

    def with_(**options):
        argv = list(base)
        for name, value in options.items():
            flag = "--" + name.replace("_", "-")
            if flag in argv:
                argv[argv.index(flag) + 1] = str(value)
            else:
                argv += [flag, str(value)]
        return argv

    # An unwritable folder, checked before any data is loaded.
    _one_line_error(with_(out="/proc/ebgan_run"), capsys, "/proc/ebgan_run")
    # Missing data.
    _one_line_error(with_(data="no_such_data_set"), capsys, "no_such_data_set")
    # Bad settings: an unknown key of the config file.
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"generator": {"hidden_unitz": [8]}}))
    _one_line_error(with_(config=bad), capsys, "hidden_unitz")
    # A second writer: the folder and the holder named.
    busy = tmp_path / "busy"
    busy.mkdir()
    with files.RunFolderLock(busy):
        _one_line_error(with_(out=busy), capsys, "in use by process")
    # A multi-worker run without its cluster description.
    monkeypatch.delenv("TF_CONFIG", raising=False)
    _one_line_error(with_(distribute="multi-worker"), capsys, "TF_CONFIG")
    # A finished run, then a rerun with other settings.
    assert cli.main(base) == 0, capsys.readouterr().err
    capsys.readouterr()
    _one_line_error(with_(seed=5), capsys, "other settings")
    # A full disk before a checkpoint: the last good one stays.
    real_usage = shutil.disk_usage
    monkeypatch.setattr(
        shutil, "disk_usage", lambda path: real_usage(path)._replace(free=1000)
    )
    full = with_(out=tmp_path / "full")
    _one_line_error(full, capsys, "not enough free disk space")
    monkeypatch.setattr(shutil, "disk_usage", real_usage)
    assert base[out] == str(tmp_path / "run")


def test_readme_sweep_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"base": "ebgan_pt", "grid": {"model.margn": [1.0]}}))
    out = tmp_path / "sweep"
    _one_line_error(["sweep", str(grid), "--out", str(out)], capsys, "model.margn")
    grid.write_text(json.dumps({"base": "ebgan_pt", "grid": {"model.margin": [1.0]}}))
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails
    _one_line_error(["sweep", str(grid), "--out", str(out)], capsys, "pip install")


@file_handling
def test_readme_zoo_errors_are_one_line_and_exit_2(tmp_path, capsys):
    out = str(tmp_path / "x.png")
    # A declared entry without weights fails fast and says what to do.
    _one_line_error(["sample", "ebgan_pt_celeba", "--out", out], capsys, "celeba")
    # An unknown name lists the close matches.
    _one_line_error(["sample", "ebgan_pt_mnst", "--out", out], capsys, "ebgan_pt_mnist")
    _one_line_error(["zoo", "describe", "ebgan_pt_mnst"], capsys, "ebgan_pt_mnist")
    assert not os.path.exists(out)
