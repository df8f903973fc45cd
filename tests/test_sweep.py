"""Sweeps (`ek.sweep`, `ebgan-keras sweep`) and the config fields they vary.

The grid checks, the optimizer and dropout settings and the missing-Ray
error run in the default run. The tests that start Ray and train trials are
slow (CI's slow step) and run on one backend (JAX): a trial is a normal run
of the training driver, whose backends the other test files cover.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest

import ebgan_keras as ek
from ebgan_keras import cli
from ebgan_keras.run import builder
from ebgan_keras.run import sweeps
from ebgan_keras.run.config import ConfigError
from ebgan_keras.run.config import load_config

REPO = Path(__file__).resolve().parents[1]

#: Tiny trials: 16-wide nets, 8 steps of batch 16 on the shipped subset.
TINY = {
    "training": {
        "data": "mnist_subset",
        "epochs": 1,
        "steps_per_epoch": 8,
        "batch_size": 16,
    },
    "generator": {"kwargs": {"hidden_units": [16]}},
    "discriminator": {"kwargs": {"encoder_units": [16, 8]}},
}
TINY_GRID = {"training.learning_rate": [1e-3, 1e-4], "model.margin": [2.0, 5.0]}
TINY_EVAL = {"num_samples": 100, "reference": "mnist_subset"}

ray_backend_only = pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="Ray trials are runs of the one driver; tested once, on JAX",
)


# ----------------------------------------------------------------------
# Config fields: training.optimizer, dropout
# ----------------------------------------------------------------------
def test_training_optimizer_picks_each_networks_optimizer():
    config = load_config("ebgan")
    config["training"]["optimizer"] = {"discriminator": "sgd", "generator": "adam"}
    config["training"]["learning_rate"] = 0.01
    config["generator"]["kwargs"]["hidden_units"] = [8]
    config["discriminator"]["kwargs"]["encoder_units"] = [8, 4]
    model = builder.build_model(config, (8, 8, 1))
    default_g = model.default_optimizers()[1]
    builder.compile_model(model, config)
    assert isinstance(model.d_optimizer, keras.optimizers.SGD)
    assert float(model.d_optimizer.momentum) == 0.0
    assert isinstance(model.g_optimizer, keras.optimizers.Adam)
    # "adam" keeps the model's own Adam settings.
    assert model.g_optimizer.beta_1 == default_g.beta_1
    for optimizer in (model.d_optimizer, model.g_optimizer):
        rate = keras.ops.convert_to_numpy(optimizer.learning_rate)
        assert rate == pytest.approx(0.01)


@pytest.mark.parametrize(
    "value", ["rmsprop", {"discriminator": "sgd"}, {"discriminator": 1, "generator": 2}]
)
def test_bad_training_optimizer_is_refused_by_name(value):
    config = load_config("ebgan")
    config["training"]["optimizer"] = value
    with pytest.raises(ConfigError, match="training.optimizer"):
        ek.run.config.validate(config)


def test_mlp_discriminators_take_a_dropout_rate():
    d = ek.networks.ebgan_mlp_discriminator((8, 8, 1), (8, 4), dropout=0.5)
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in d.layers) == 2
    g = ek.networks.gan_mlp_discriminator((8, 8, 1), (8,), dropout=0.25)
    assert [layer.rate for layer in g.layers if "dropout" in layer.name] == [0.25]
    with pytest.raises(ValueError, match="dropout"):
        ek.networks.gan_mlp_discriminator((8, 8, 1), (8,), dropout=1.5)


# ----------------------------------------------------------------------
# Grids
# ----------------------------------------------------------------------
def test_expand_gives_every_point_and_seeded_subsets():
    grid = {"b": [1, 2, 3], "a": ["x", "y"]}
    points = sweeps.expand(grid)
    assert len(points) == 6 == sweeps.grid_size(grid)
    assert points[0] == {"a": "x", "b": 1} and points[1] == {"a": "x", "b": 2}
    assert len({json.dumps(p, sort_keys=True) for p in points}) == 6
    subset = sweeps.expand(grid, num_samples=4, seed=3)
    assert subset == sweeps.expand(grid, num_samples=4, seed=3)
    assert len(subset) == 4 and all(p in points for p in subset)
    assert any(sweeps.expand(grid, 4, seed=s) != subset for s in range(4, 10))
    # A grid too large to list is sampled without listing it.
    huge = {f"k{i}": list(range(10)) for i in range(12)}
    assert len(sweeps.expand(huge, num_samples=3, seed=0)) == 3
    for bad in (0, 7, 2.5):
        with pytest.raises(sweeps.SweepError, match="num_samples"):
            sweeps.expand(grid, num_samples=bad)


def test_plan_seeds_each_trial_and_checks_its_config():
    trials = sweeps.plan("ebgan_pt", TINY_GRID, overrides=TINY, seed=0)
    assert len(trials) == 4
    assert [t["config"]["training"]["seed"] for t in trials] == [0, 1, 2, 3]
    first = trials[0]
    assert (
        first["config"]["training"]["learning_rate"]
        == first["overrides"]["training.learning_rate"]
    )
    assert first["config"]["model"]["margin"] == first["overrides"]["model.margin"]
    assert first["config"]["model"]["pt_weight"] == 0.1  # the base's


@pytest.mark.parametrize(
    "grid, key",
    [
        ({"training.learnin_rate": [0.1]}, "training.learnin_rate"),
        ({"model.margn": [1.0]}, "model.margn"),
        ({"generator.kwargs.hidden_unit": [[8]]}, "generator.kwargs.hidden_unit"),
        ({"optimiser": ["adam"]}, "optimiser"),
        ({"model.margin": ["ten"]}, "model.margin"),
        ({"training.learning_rate": [1e-3, -1.0]}, "training.learning_rate"),
        ({"training.optimizer": ["adam", "adagrad"]}, "training.optimizer"),
        ({"generator.kwargs.hidden_units": [8]}, "generator.kwargs.hidden_units"),
        ({"discriminator.kwargs.dropout": [0.5, True]}, "discriminator.kwargs.dropout"),
        ({"model.margin": []}, "model.margin"),
    ],
)
def test_bad_grid_is_refused_before_any_trial_naming_the_key(tmp_path, grid, key):
    out = tmp_path / "sweep"
    with pytest.raises(sweeps.SweepError, match=key.replace(".", r"\.")):
        ek.sweep("ebgan_pt", str(out), grid=grid, overrides=TINY)
    assert not out.exists()  # nothing started, nothing written


def test_a_class_change_must_bring_its_own_arguments(tmp_path):
    with pytest.raises(sweeps.SweepError, match="model.margin"):
        sweeps.plan("ebgan", trials=[{"class": "GAN"}])
    with pytest.raises(sweeps.SweepError, match="discriminator.kwargs.encoder_units"):
        sweeps.plan(
            "ebgan",
            trials=[
                {
                    "class": "GAN",
                    "model": {},
                    "discriminator.builder": "gan_mlp_discriminator",
                }
            ],
        )


def test_missing_ray_gives_the_install_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails
    with pytest.raises(sweeps.SweepError, match=r"ebgan-keras\[sweep\]"):
        ek.sweep("ebgan_pt", str(tmp_path / "s"), grid=TINY_GRID, overrides=TINY)
    grid_file = tmp_path / "grid.json"
    grid_file.write_text(
        json.dumps({"base": "ebgan_pt", "overrides": TINY, "grid": TINY_GRID})
    )
    code = cli.main(["sweep", str(grid_file), "--out", str(tmp_path / "c")])
    assert code == 2
    err = capsys.readouterr().err
    assert (
        "ebgan-keras sweep: error:" in err and 'pip install "ebgan-keras[sweep]"' in err
    )


def test_grid_file_with_unknown_key_is_refused(tmp_path, capsys):
    grid_file = tmp_path / "grid.json"
    grid_file.write_text(json.dumps({"base": "ebgan", "grids": {}}))
    assert cli.main(["sweep", str(grid_file), "--out", str(tmp_path / "o")]) == 2
    assert "unknown key `grids`" in capsys.readouterr().err


def test_shipped_example_grid_plans():
    spec = sweeps.read_grid_file(REPO / "benchmarks" / "grids" / "ebgan_lr_margin.json")
    trials = sweeps.plan(spec["base"], spec["grid"], overrides=spec["overrides"])
    assert len(trials) == 4


# ----------------------------------------------------------------------
# Ray: a sweep, killed and resumed
# ----------------------------------------------------------------------
SWEEP_SCRIPT = """
import sys, json
import ebgan_keras as ek
ek.sweep("ebgan_pt", sys.argv[1], grid=json.loads(sys.argv[2]),
         overrides=json.loads(sys.argv[3]), evaluation=json.loads(sys.argv[4]),
         num_cpus=2, verbose=0)
"""


def _run_sweep(out: Path, wait_for_rows: int | None = None) -> subprocess.Popen:
    args = [str(out), json.dumps(TINY_GRID), json.dumps(TINY), json.dumps(TINY_EVAL)]
    process = subprocess.Popen(
        [sys.executable, "-c", SWEEP_SCRIPT, *args],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if wait_for_rows is None:
        _, err = process.communicate(timeout=900)
        assert process.returncode == 0, err[-3000:]
        return process
    deadline = time.time() + 600
    while time.time() < deadline:
        rows = list(out.glob("trials/*/row.json"))
        if len(rows) >= wait_for_rows or process.poll() is not None:
            break
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return process


def _rows(out: Path) -> dict:
    return {
        row["index"]: row
        for row in map(json.loads, (out / "results.jsonl").read_text().splitlines())
    }


@pytest.mark.slow
@ray_backend_only
def test_sweep_runs_every_trial_and_resumes_after_a_kill(tmp_path):
    whole = tmp_path / "whole"
    _run_sweep(whole)
    rows = _rows(whole)
    assert sorted(rows) == [0, 1, 2, 3]
    for index, row in rows.items():
        assert row["steps"] == 8 and row["error"] is None and not row["diverged"]
        assert row["seed"] == index
        assert row["fid"] > 0 and 1.0 <= row["is"] <= 10.0
        assert (whole / "trials" / f"{index:04d}" / "model.keras").is_file()
    overrides = {json.dumps(row["overrides"], sort_keys=True) for row in rows.values()}
    assert len(overrides) == 4

    # The same sweep, killed once a trial has finished, then rerun.
    killed = tmp_path / "killed"
    _run_sweep(killed, wait_for_rows=1)
    finished = {
        path.parent.name: path.stat().st_mtime_ns
        for path in killed.glob("trials/*/row.json")
    }
    assert 1 <= len(finished) < 4, "the kill came too late to test a resume"
    _run_sweep(killed)
    resumed = _rows(killed)
    assert sorted(resumed) == [0, 1, 2, 3]
    for name, mtime in finished.items():
        # Finished before the kill: not trained or scored again.
        assert (killed / "trials" / name / "row.json").stat().st_mtime_ns == mtime
        info = json.loads((killed / "trials" / name / "train_info.json").read_text())
        assert info["segments"] == 1
    # Same seeds, same scores: the killed-and-resumed sweep equals the whole.
    for index in rows:
        for key in ("fid", "is", "seed", "steps"):
            assert resumed[index][key] == pytest.approx(rows[index][key], rel=1e-5)

    # A rerun of a finished sweep trains nothing.
    _run_sweep(killed)
    for name, mtime in finished.items():
        assert (killed / "trials" / name / "row.json").stat().st_mtime_ns == mtime


@pytest.mark.slow
@ray_backend_only
def test_sweep_refuses_a_folder_of_another_sweep(tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    planned = sweeps.plan("ebgan_pt", TINY_GRID, overrides=TINY)
    (out / sweeps.SWEEP_FILE).write_text(
        json.dumps({"trials": planned[:2], "evaluation": None})
    )
    with pytest.raises(sweeps.SweepError, match="another sweep"):
        ek.sweep("ebgan_pt", str(out), grid=TINY_GRID, overrides=TINY)
