"""Tests of the benchmark scripts: tiny `--quick` runs write rows and RESULTS.md.

The scripts run as subprocesses on the current Keras backend only, with tiny
networks, and write into a temporary results folder (`EK_BENCH_RESULTS_DIR`),
never into `benchmarks/results`. No timing is asserted: only that the rows
exist with the expected fields and consistent values.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import _common  # noqa: E402
import _report  # noqa: E402
import sampler_throughput  # noqa: E402
import train_throughput  # noqa: E402

TINY_MLP = {
    "generator": {"kwargs": {"hidden_units": [32]}},
    "discriminator": {"kwargs": {"encoder_units": [32, 16]}},
    "training": {"batch_size": 8},
}
TINY_CRITIC = {
    "generator": {"kwargs": {"hidden_units": [32]}},
    "discriminator": {"kwargs": {"hidden_units": [32, 16]}},
    "training": {"batch_size": 8},
}

# The scripts are plain Python around `fit`; checking their output once, in
# the TensorFlow session of the suite, keeps the three-backend run short.
pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="benchmark scripts are checked once, from the TF session",
)


def _run(
    script: str, args: list[str], results_dir: Path
) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        EK_BENCH_RESULTS_DIR=str(results_dir),
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_forward_flops_counts_dense_and_conv_layers():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs)  # -> 4x4x4
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(5)(x)
    model = keras.Model(inputs, outputs)
    expected = 2 * (4 * 4 * 3 * 3 * 3 * 4) + 2 * (64 * 5)
    assert train_throughput.forward_flops(model) == expected


def test_step_flops_of_config_a_matches_hand_count():
    model = train_throughput.seeded_model(train_throughput.CONFIGS["A"])
    f_g = 2 * (64 * 1024 + 1024 * 1024 + 1024 * 784)
    f_d = 2 * (784 * 1024 + 1024 * 512 + 512 * 784)
    assert train_throughput.step_flops(model, 64) == 64 * (4 * f_g + 9 * f_d)


def test_step_flops_of_config_e_counts_critic_steps_and_double_backward():
    model = train_throughput.seeded_model(train_throughput.CONFIGS["E"])
    f_g = 2 * (64 * 1024 + 1024 * 1024 + 1024 * 784)
    f_d = 2 * (784 * 1024 + 1024 * 512 + 512 * 1)
    # 5 x (G fwd + 2 D fwd + their bwd + penalty fwd, input grad, double bwd)
    # + the generator step.
    expected = 64 * (5 * (f_g + 6 * f_d + 4 * f_d) + 3 * f_g + 3 * f_d)
    assert train_throughput.step_flops(model, 64) == expected
    assert expected == 64 * (8 * f_g + 53 * f_d)
    assert expected == pytest.approx(10.97e9, rel=1e-3)


def test_reference_spec_reads_the_plain_loops_sizes_from_the_config():
    configs = train_throughput.CONFIGS
    assert _common.reference_spec(configs["C"]) == {
        "kind": "conv",
        "batch_size": 64,
        "image_shape": [32, 32, 1],
        "margin": 10.0,
        "pt_weight": 0.1,
        "latent_dim": 64,
        "generator_filters": 32,
        "discriminator_filters": [32, 64, 128],
    }
    tiny = _common.reference_spec(_common.with_overrides(configs["A"], TINY_MLP))
    assert tiny["hidden_units"] == [32] and tiny["encoder_units"] == [32, 16]
    assert tiny["batch_size"] == 8 and tiny["latent_dim"] == 64
    with pytest.raises(ValueError, match="plain loops implement EBGANPT"):
        _common.reference_spec(configs["D"])
    unread = {"generator": {"kwargs": {"batch_norm": False}}}
    with pytest.raises(ValueError, match="batch_norm"):
        _common.reference_spec(_common.with_overrides(configs["A"], unread))


def test_reference_spec_reads_wgan_gp_and_refuses_what_the_loops_ignore():
    configs = train_throughput.CONFIGS
    assert _common.reference_spec(configs["E"]) == {
        "kind": "mlp_critic",
        "batch_size": 64,
        "image_shape": [28, 28, 1],
        "gradient_penalty_weight": 10.0,
        "critic_steps": 5,
        "latent_dim": 64,
        "hidden_units": [1024, 1024],
        "critic_units": [1024, 512],
    }
    # A model kwarg the plain loops do not implement.
    unread = {"model": {"latent_distribution": "uniform"}}
    with pytest.raises(ValueError, match="model kwargs critic_steps, gradient_pen"):
        _common.reference_spec(_common.with_overrides(configs["E"], unread))
    # EBGAN-PT's kwargs on WGANGP, and a critic kwarg the loops ignore.
    for unread in (
        {"model": {"margin": 10.0}},
        {"discriminator": {"kwargs": {"name": "critic"}}},
    ):
        with pytest.raises(ValueError, match="plain loops read exactly"):
            _common.reference_spec(_common.with_overrides(configs["E"], unread))
    with pytest.raises(ValueError, match="int model kwarg `critic_steps`"):
        _common.reference_spec(
            _common.with_overrides(configs["E"], {"model": {"critic_steps": 2.5}})
        )
    # WGANGP on the autoencoder discriminator, and EBGANPT on the critic.
    autoencoder = {"discriminator": configs["A"]["discriminator"]}
    with pytest.raises(ValueError, match="WGANGP on ebgan_mlp_generator"):
        _common.reference_spec(_common.with_overrides(configs["E"], autoencoder))
    with pytest.raises(ValueError, match="class='EBGANPT' on .*gan_mlp_disc"):
        _common.reference_spec({**configs["E"], "class": "EBGANPT"})


def test_peak_is_the_best_probe_and_names_its_machine(monkeypatch):
    monkeypatch.setenv("OPENBLAS_L2_SIZE", "1048576")
    peak = _common.peak(**_common.QUICK_PEAK)
    rates = {k: v for k, v in peak["probes"].items() if isinstance(v, float)}
    assert set(rates) == {"numpy_matmul_1024", "xla_matmul_1024", "xla_fma"}
    assert peak["gflops"] == max(rates.values()) == rates[peak["best_probe"]]
    # The kernel pins are unset for the numpy probe only, and reported.
    assert peak["unset_for_numpy"] == {"OPENBLAS_L2_SIZE": "1048576"}
    assert os.environ["OPENBLAS_L2_SIZE"] == "1048576"
    assert peak["blas"]["library"] and peak["cpu_model"]
    theory = peak["theoretical"]
    assert theory["cores"] == os.cpu_count()
    assert theory["flops_per_cycle_per_core"] in (16, 32, 64)
    summary = _common.peak_summary(peak)
    assert "theoretical peak" in summary and peak["best_probe"] in summary


def test_a_rate_above_the_peak_is_flagged_not_printed_as_mfu():
    info = {"gflops": 100.0, "best_probe": "xla_fma", "theoretical": {"gflops": 90}}
    assert _common.mfu_fields(40.0, info)["mfu"] == 0.4
    flagged = _common.mfu_fields(105.0, info)
    assert flagged["mfu"] is None and "measurement error" in flagged["mfu_error"]
    row = {"implementation": "ek.EBGANPT", **flagged}
    assert _report._mfu(row) == "n/a: above the peak (measurement error)"
    assert _common.theoretical_peak(["avx512f"], 2, 3.5)["gflops"] == 448.0
    assert _common.theoretical_peak(["avx"], 2, None)["gflops"] is None


def test_report_renders_other_scripts_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(_report, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(_report, "REPORT", tmp_path / "RESULTS.md")
    (tmp_path / "results").mkdir()
    row = {"benchmark": "data_throughput", "numpy_images_per_s": 287109, "cpu_count": 2}
    (tmp_path / "results" / "data_throughput.json").write_text(json.dumps([row]))
    text = _report.write_report().read_text()
    assert "## data_throughput" in text
    assert "287,109" in text or "287109" in text


@pytest.mark.slow  # a minute or more of subprocesses: CI's slow step runs it
@pytest.mark.parametrize(
    "config, overrides, references",
    [
        ("A", TINY_MLP, ["torch"]),
        # WGAN-GP against both plain loops; one torch thread, since on this
        # shared CPU two OpenMP threads made the tiny torch loop 100x slower.
        ("E", TINY_CRITIC, ["torch", "jax"]),
    ],
)
def test_train_throughput_quick_writes_rows_and_report(
    tmp_path, config, overrides, references
):
    backend = keras.backend.backend()
    results = tmp_path / "results"
    _run(
        "train_throughput.py",
        [
            "--quick",
            "--configs",
            config,
            "--backends",
            backend,
            "--references",
            ",".join(references),
            "--repeats",
            "1",
            "--overrides",
            json.dumps(overrides),
            "--torch-threads",
            "1" if config == "E" else "0",
        ],
        results,
    )
    rows = json.loads((results / "train_throughput.json").read_text())
    implementation = "ek." + train_throughput.CONFIGS[config]["class"]
    ours = [r for r in rows if r["implementation"] == implementation]
    plain = [r for r in rows if r["implementation"] == "plain PyTorch loop"]
    plain_jax = [r for r in rows if r["implementation"] == "plain JAX jit loop"]
    assert ours and len(plain) == 1 and len(plain_jax) == ("jax" in references)
    assert {r["backend"] for r in ours} == {backend}
    flops = train_throughput.step_flops(
        train_throughput.seeded_model(
            _common.with_overrides(train_throughput.CONFIGS[config], overrides)
        ),
        8,
    )
    for row in rows:
        for field in ("machine", "cpu_model", "cpu_flags", "date", "load_average"):
            assert field in row
        assert row["config"] == config and row["batch_size"] == 8
        assert row["flops_per_step"] == flops
        stats = row["steps_per_s"]
        assert 0 < stats["min"] <= stats["median"] <= stats["max"]
        # Rounded to 0.1 as stored: on a loaded machine the plain loop may
        # make only a few images/s, where a relative tolerance fails.
        assert row["images_per_s"] == round(stats["median"] * 8, 1)
        assert row["ratio_to_plain_torch"] == pytest.approx(
            stats["median"] / plain[0]["steps_per_s"]["median"], rel=1e-2
        )
        assert 0 < row["mfu"] and row["peak_gflops"] > 0
        if plain_jax:
            assert row["ratio_to_plain_jax"] == pytest.approx(
                stats["median"] / plain_jax[0]["steps_per_s"]["median"], rel=1e-2
            )
    assert plain[0]["ratio_to_plain_torch"] == 1.0
    report = (tmp_path / "RESULTS.md").read_text()
    assert f"### Config {config}" in report and "plain PyTorch loop" in report


@pytest.mark.slow
def test_scaling_quick_writes_rows_plot_and_report(tmp_path):
    backend = keras.backend.backend()
    results = tmp_path / "results"
    _run(
        "scaling.py",
        [
            "--quick",
            "--backend",
            backend,
            "--batch-sizes",
            "8,16",
            "--image-sizes",
            "",
            "--repeats",
            "1",
        ],
        results,
    )
    rows = json.loads((results / "scaling.json").read_text())
    assert sorted(r["batch_size"] for r in rows) == [8, 16]
    assert all(r["sweep"] == "batch_size" and r["images_per_s"] > 0 for r in rows)
    assert (results / "scaling.png").stat().st_size > 1000
    assert "## Scaling" in (tmp_path / "RESULTS.md").read_text()


def test_ddls_step_flops_of_config_a_networks_matches_hand_count():
    model = sampler_throughput.build_model(seed=0)
    f_g = 2 * (64 * 1024 + 1024 * 1024 + 1024 * 784)
    f_d = 2 * (784 * 1024 + 1024 * 512 + 512 * 784)
    flops = sampler_throughput.ddls_step_flops(model, 256)
    assert flops == 2 * 256 * (f_g + f_d)
    assert flops == pytest.approx(3.7e9, rel=0.02)  # the figure


@pytest.mark.slow
def test_sampler_throughput_quick_writes_rows_and_report(tmp_path):
    backend = keras.backend.backend()
    results = tmp_path / "results"
    args = ["--quick", "--backends", backend, "--batch-size", "8", "--num-steps", "3"]
    _run(
        "sampler_throughput.py", [*args, "--repeats", "1", "--accepted", "20"], results
    )
    rows = json.loads((results / "sampler_throughput.json").read_text())
    ddls = {r["implementation"]: r for r in rows if r["benchmark"] == "ddls"}
    assert set(ddls) == {
        "ek.samplers.DDLS",
        "plain JAX jit loop",
        "plain PyTorch autograd loop",
    }
    plain_torch = ddls["plain PyTorch autograd loop"]["steps_per_second"]
    for row in ddls.values():
        assert row["batch_size"] == 8 and row["num_steps"] == 3
        assert row["flops_per_step"] == sampler_throughput.ddls_step_flops(
            sampler_throughput.build_model(seed=0), 8
        )
        assert row["mfu"] == pytest.approx(
            row["achieved_gflops"] / row["peak_gflops"], rel=1e-2
        )
        assert row["ratio_to_plain_torch"] == pytest.approx(
            row["steps_per_second"] / plain_torch, rel=1e-2
        )
        assert "load_average" in row and "cpu_flags" in row
    calibrated = {
        r["implementation"]: r for r in rows if r["benchmark"] == "calibrated"
    }
    assert set(calibrated) == {
        "ek.samplers.RejectionSampler",
        "ek.samplers.MetropolisHastings",
    }
    for row in calibrated.values():
        assert row["keras_backend"] == backend and row["accepted_samples"] == 20
        assert row["seconds_per_1000_accepted"] > 0
        assert 0 < row["acceptance_rate"] <= 1
    report = (tmp_path / "RESULTS.md").read_text()
    assert "## Sampler throughput" in report and "s / 1000 accepted" in report


def test_representation_quick_writes_rows_and_table(tmp_path):
    """Pixels on 300 train images: the 1-NN and probe of the real script."""
    env = dict(os.environ, EK_BENCH_RESULTS_DIR=str(tmp_path / "results"))
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "representation.py"),
            "--only",
            "pixels",
            "--num-train",
            "300",
            "--probe-iterations",
            "50",
            "--run-root",
            str(tmp_path / "run"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / "results" / "representation.json").read_text())
    assert [row["representation"] for row in rows] == ["pixels"]
    assert 0.7 < rows[0]["nn_accuracy"] <= 1.0 and rows[0]["num_train"] == 300
    assert 0.7 < rows[0]["nn_accuracy_euclidean"] <= 1.0
    table = (tmp_path / "results" / "representation.md").read_text()
    assert "| pixels | 784 |" in table and "| 1-NN (Euclidean) |" in table
