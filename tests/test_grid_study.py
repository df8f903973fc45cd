"""The EBGAN paper's grid study (`benchmarks/ebgan_grid_study.py`, issue 38).

The grids' counts and the networks each setting builds, the stratified plan,
the report (table, verdict, figures) from rows of known scores and the probe's
convergence rule run by default; the whole driver, tiny, on Ray is slow (CI's
slow step) and runs on JAX.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from ebgan_keras.run import builder
from ebgan_keras.run import sweeps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

import ebgan_grid_study as study  # noqa: E402

ARCHITECTURE = {
    "nLayerG": [2, 3, 4, 5],
    "nLayerD": [2, 3, 4, 5],
    "sizeG": [400, 800, 1600, 3200],
    "sizeD": [128, 256, 512, 1024],
    "dropoutD": [True, False],
}


def test_paper_grids_are_table_1_and_figure_9():
    ebgan = study.read_grid(study.EBGAN_GRID)
    gan = study.read_grid(study.GAN_GRID)
    margin = study.read_grid(study.MARGIN_GRID)
    assert ebgan["axes"] == {
        **ARCHITECTURE,
        "optimD": ["adam"],
        "optimG": ["adam"],
        "lr": [0.001],
    }
    assert gan["axes"] == {
        **ARCHITECTURE,
        "optimD": ["adam", "sgd"],
        "optimG": ["adam", "sgd"],
        "lr": [0.01, 0.001, 0.0001],
    }
    assert margin["axes"] == {"margin": [1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 16.0, 32.0]}
    assert margin["setting"] == {
        "nLayerG": 5,
        "nLayerD": 2,
        "sizeG": 1600,
        "sizeD": 1024,
        "dropoutD": False,
        "optimD": "adam",
        "optimG": "adam",
        "lr": 0.001,
    }
    for grid, count in ((ebgan, 512), (gan, 6144), (margin, 8)):
        assert len(study.grid_settings(grid)) == count == grid["experiments"]
        assert grid["fixed"]["margin"] == 10.0 and grid["fixed"]["pt_weight"] == 0.1
    assert len(study.optimizer_rows(gan)) == 12
    # The recollection file is gone.
    assert not (REPO / "benchmarks" / "grids" / "ebgan_mnist_paper.json").exists()


def _expected_layers(setting: dict, model: str) -> tuple[list, list]:
    g = [setting["sizeG"]] * (setting["nLayerG"] - 1) + [784]
    d = [setting["sizeD"]] * (setting["nLayerD"] - 1)
    return g, d + [1 if model == "GAN" else 784]


def test_every_setting_configures_its_networks():
    fixed = study.read_grid(study.EBGAN_GRID)["fixed"]
    for path, models in (
        (study.EBGAN_GRID, ("EBGAN", "EBGANPT")),
        (study.GAN_GRID, ("GAN",)),
        (study.MARGIN_GRID, ("EBGAN",)),
    ):
        for setting in study.grid_settings(study.read_grid(path)):
            row = (setting["optimD"], setting["optimG"], setting["lr"])
            for model in models:
                trial = study.trial_overrides(
                    model, setting, fixed, 7, row, setting.get("margin")
                )
                g_kwargs = trial["generator"]["kwargs"]
                d_kwargs = trial["discriminator"]["kwargs"]
                trunk = d_kwargs.get("hidden_units", d_kwargs.get("encoder_units"))
                g, d = _expected_layers(setting, model)
                # Hidden layers only: the output layers are the builders'.
                assert g_kwargs["hidden_units"] == g[:-1]
                assert trunk == d[:-1]
                assert d_kwargs["dropout"] == (0.5 if setting["dropoutD"] else 0.0)
                assert trial["training.optimizer"] == {
                    "discriminator": row[0],
                    "generator": row[1],
                }
                assert trial["training.learning_rate"] == row[2]
                if model != "GAN":
                    assert trial["model"]["margin"] == setting.get("margin", 10.0)
                assert ("pt_weight" in trial["model"]) == (model == "EBGANPT")


@pytest.mark.parametrize(
    "setting",
    [
        {"nLayerG": 2, "nLayerD": 2, "sizeG": 400, "sizeD": 128, "dropoutD": True},
        {"nLayerG": 5, "nLayerD": 5, "sizeG": 3200, "sizeD": 1024, "dropoutD": False},
        {"nLayerG": 3, "nLayerD": 4, "sizeG": 800, "sizeD": 512, "dropoutD": True},
    ],
)
def test_settings_build_networks_of_their_depths_and_widths(setting):
    fixed = study.read_grid(study.EBGAN_GRID)["fixed"]
    trials = [study.trial_overrides(m, setting, fixed, 0) for m in study.MODELS]
    planned = sweeps.plan("ebgan", trials=trials)
    for model, trial in zip(study.MODELS, planned):
        config = trial["config"]
        g, d = _expected_layers(setting, model)
        generator = builder.build_network(config["generator"], "generator", (28, 28, 1))
        discriminator = builder.build_network(
            config["discriminator"], "discriminator", (28, 28, 1)
        )
        assert study.dense_layers(generator) == g  # nLayerG layers
        assert study.dense_layers(discriminator) == d  # nLayerD, decoder one layer
        dropouts = [
            layer
            for layer in discriminator.layers
            if isinstance(layer, keras.layers.Dropout)
        ]
        assert len(dropouts) == (setting["nLayerD"] - 1 if setting["dropoutD"] else 0)
        # The cost model's weights: every dense layer's kernel and a bias per
        # unit (the generator's batch-normed layers have none: added back).
        dense = sum(
            layer.count_params()
            for net in (generator, discriminator)
            for layer in net.layers
            if isinstance(layer, keras.layers.Dense)
        )
        missing_bias = (setting["nLayerG"] - 1) * setting["sizeG"]
        assert study.parameter_count(setting, model) == dense + missing_bias


def test_plan_is_stratified_and_has_the_issues_counts():
    plan = study.plan_study()
    meta = plan["meta"]
    parts = [m["part"] for m in meta]
    assert parts.count("main") == 48 * 3
    assert parts.count("gan_rows") == 16 * 11
    assert parts.count("margin") == 8 * 3
    assert len(plan["trials"]) == len(meta) == 344
    architectures = plan["architectures"]
    assert len({json.dumps(a, sort_keys=True) for a in architectures}) == 48
    strata = [study.stratum(a) for a in architectures]
    assert strata.count(3) == strata.count(4) == strata.count(5) == 16
    # The <= 3 panel: 16 architectures; <= 4: 32.
    assert sum(max(a["nLayerG"], a["nLayerD"]) <= 3 for a in architectures) == 16
    # The GAN's rows run on the first 16, spread over the strata.
    rows = [m for m in meta if m["part"] == "gan_rows"]
    assert {m["architecture"] for m in rows} == set(range(16))
    assert sorted({study.stratum(architectures[n]) for n in range(16)}) == [3, 4, 5]
    assert all(tuple(m["row"]) != study.PAPER_ROW for m in rows)
    # Weighted back to the grid: each model's main trials weigh 512 in all.
    for model in study.MODELS:
        weight = sum(
            m["weight"] for m in meta if m["part"] == "main" and m["model"] == model
        )
        assert weight == pytest.approx(512)
    # One seed per architecture, shared by its models and optimizer rows.
    for number in range(16):
        seeds = {
            m["seed"]
            for m in meta
            if m["architecture"] == number and m["part"] != "margin"
        }
        assert len(seeds) == 1
    # Seeded: the same draw twice, another with another seed.
    assert study.plan_study()["architectures"] == architectures
    assert study.plan_study(seed=1)["architectures"] != architectures
    # Every trial's config passes the sweep's checks.
    sweeps.plan("ebgan", trials=plan["trials"][::7])


def _rows_with_scores(plan: dict, score) -> list[dict]:
    rows = []
    for index, meta in enumerate(plan["meta"]):
        value = score(meta)
        rows.append(
            {
                "index": index,
                "is": value,
                "ebgan_is": value + 1.0,
                "fid": 100.0 - value,
                "diverged": False,
                "error": None,
                "wall_time_s": 2.0,
            }
        )
    return rows


def test_report_counts_learned_trials_wins_and_states_the_verdict(tmp_path):
    plan = study.plan_study(6, 2, 1)

    def ebgan_better(meta):
        # EBGANs learn everywhere, the GAN only on the shallow ones (a tie there).
        if meta["model"] == "GAN":
            return 8.0 if meta["stratum"] == 3 else 1.5
        return 8.0

    trials = study.join_rows(_rows_with_scores(plan, ebgan_better), plan["meta"])
    table = study.summarize(trials)
    # Weighted to the grid: the shallow stratum is 128 of 512 architectures.
    assert table["GAN"]["learned_all"] == pytest.approx(128 / 512)
    assert table["GAN"]["learned_le3"] == 1.0
    assert table["GAN"]["learned_le4"] == pytest.approx(128 / 288)
    assert table["EBGAN"]["learned_all"] == 1.0
    assert table["EBGAN"]["beats_gan_is"] == 4 and table["EBGAN"]["paired"] == 6
    assert table["EBGAN"]["loses_to_gan_is"] == 0
    assert table["EBGAN"]["best_is"] == 8.0 and table["EBGAN"]["best_fid"] == 92.0
    # 4 wins, 0 losses: sign test p = 1/16, not below 0.05.
    assert table["EBGAN"]["sign_test_p"] == pytest.approx(1 / 16)
    assert table["verdict"]["supported"] is False
    assert set(table["margin"]) == {"1", "2", "4", "6", "8", "12", "16", "32"}
    assert len(table["gan_all_rows"]["by_row"]) == 12

    plan = study.plan_study(12, 2, 1)
    trials = study.join_rows(_rows_with_scores(plan, ebgan_better), plan["meta"])
    table = study.summarize(trials)
    assert table["EBGANPT"]["beats_gan_is"] == 8
    assert table["verdict"]["supported"] is True  # p = 1/256
    text = study.markdown(table, _protocol(len(trials)))
    assert "is supported by these numbers" in text
    assert "| EBGANPT | 12 | 100% |" in text
    # A failed trial counts as the worst score, never as learned.
    trials[1] = {**trials[1], "error": "MemoryError: ...", "is": None}
    assert study.summarize(trials)["EBGAN"]["learned_le3"] < 1.0
    for plot in (study.plot_figure2, study.plot_figure3, study.plot_figure9):
        path = tmp_path / f"{plot.__name__}.png"
        plot(trials, path)
        assert path.stat().st_size > 10_000


def _protocol(finished: int) -> dict:
    return {
        "architectures": 12,
        "seed": 0,
        "epochs": 10,
        "steps_per_epoch": None,
        "batch_size": 64,
        "data": "mnist",
        "eval_samples": 5000,
        "trials_finished": finished,
        "trials_planned": finished,
        "width_divisor": 1,
    }


def test_probe_plateau_rule_and_weighted_median():
    assert study.plateau_epoch([1.0, 3.0, 6.0, 7.9, 8.0, 8.1], 0.25) == 4
    assert study.plateau_epoch([1.0, 1.0, 1.0], 0.25) == 1
    assert study.plateau_epoch([8.0, 1.0], 0.25) == 2
    assert study.weighted_median([1.0, 2.0, 3.0], [1.0, 1.0, 1.0]) == 2.0
    assert study.weighted_median([1.0, 2.0, 3.0], [5.0, 1.0, 1.0]) == 1.0
    assert study.weighted_median([], []) is None


ray_backend_only = pytest.mark.skipif(
    keras.backend.backend() != "jax",
    reason="Ray trials are runs of the one driver; tested once, on JAX",
)


@pytest.mark.slow
@ray_backend_only
def test_driver_runs_end_to_end_tiny(tmp_path):
    results = tmp_path / "results"
    env = {**os.environ, "EK_BENCH_RESULTS_DIR": str(results)}
    tiny = [
        "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "16",
        "--data", "mnist_subset", "--eval-samples", "100", "--width-divisor", "50",
    ]  # fmt: skip
    script = str(REPO / "benchmarks" / "ebgan_grid_study.py")

    def run(*args):
        return subprocess.run(
            [sys.executable, script, *tiny, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=3000,
        )

    out = str(tmp_path / "study")
    size = [
        "--architectures",
        "3",
        "--gan-row-architectures",
        "1",
        "--margin-seeds",
        "1",
    ]
    completed = run(*size, "--out", out, "--reuse-workers", "--num-cpus", "2")
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = study.read_jsonl(results / "ebgan_grid_study.jsonl")
    assert len(rows) == 3 * 3 + 11 + 8
    assert all(r["error"] is None and r["steps"] == 2 for r in rows)
    assert all(r["ebgan_is"] is not None and r["is"] >= 1.0 for r in rows)
    summary = json.loads((results / "ebgan_grid_study.json").read_text())
    assert summary["table"]["EBGAN"]["paired"] == 3
    for figure in ("fig2", "fig3", "fig9"):
        assert (results / f"ebgan_grid_study_{figure}.png").stat().st_size > 10_000
    # The report alone, from the folder, and a rerun that trains nothing.
    (results / "ebgan_grid_study.md").unlink()
    completed = run(*size, "--out", out, "--report-only")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "trials finished" in (results / "ebgan_grid_study.md").read_text()
    # The probe: one small setting, two epochs, scored after each.
    probe = run(
        "--probe", "--probe-settings", "0", "--probe-models", "EBGAN",
        "--probe-epochs", "2", "--out", str(tmp_path / "probe"),
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-3000:]
    saved = json.loads((results / "ebgan_grid_probe.json").read_text())
    curve = saved["summary"]["probes"]["0_EBGAN"]
    assert curve["epochs"] == 2 and len(curve["ebgan_is"]) == 2
    assert curve["epoch_seconds"] > 0


def test_probe_summary_fits_the_cost_model_and_suggests_epochs():
    plan = study.plan_study(3, 1, 1)
    small, large = study.PROBE_SETTINGS[0], study.PROBE_SETTINGS[2]
    rows = []
    for probe_id, setting, curve in (
        ("0_EBGAN", small, [2.0, 6.0, 8.0, 8.1, 8.0]),
        ("2_GAN", large, [1.0, 1.0, 1.0, 1.0, 1.0]),
    ):
        parameters = study.parameter_count(setting, probe_id[2:])
        for epoch, score in enumerate(curve, start=1):
            rows.append(
                {
                    "probe": probe_id,
                    "model": probe_id[2:],
                    "setting": setting,
                    "parameters": parameters,
                    "epoch": epoch,
                    "steps": 100,
                    # The first epoch compiles: slower, and left out.
                    "step_seconds": (3.0 if epoch == 1 else 1.0)
                    * (0.01 + 1e-8 * parameters),
                    "epoch_seconds": 1.0,
                    "eval_seconds": 2.0,
                    "is": score,
                    "ebgan_is": score,
                    "fid": 10.0,
                }
            )
    summary = study.probe_summary(rows, 0.25, plan, 10, 937)
    assert summary["probes"]["0_EBGAN"]["plateau_epoch"] == 3
    assert summary["probes"]["2_GAN"]["learned"] is False
    # Only the probe that learned argues the epoch count.
    assert summary["suggested_epochs"] == 3
    model = summary["cost_model"]
    assert model["intercept"] == pytest.approx(0.01) and model[
        "slope"
    ] == pytest.approx(1e-8)
    expected = sum(
        (0.01 + 1e-8 * study.parameter_count(m["setting"], m["model"])) * 937 * 10
        for m in plan["meta"]
    )
    assert summary["estimate"]["cpu_hours_training"] == pytest.approx(
        expected / 3600, abs=0.06
    )
