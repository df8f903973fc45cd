"""The command line: real runs in subprocesses, argument errors in process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
import warnings

import keras
import numpy as np
import pytest
from helpers import slow_off_tensorflow
from PIL import Image

import ebgan_keras as ek
from ebgan_keras import cli

# Small networks keep the subprocess runs fast; the recipe is otherwise used.
TINY_CONFIG = {
    "generator": {"hidden_units": [32]},
    "discriminator": {"encoder_units": [32, 16]},
}


def run_cli(*args, cwd=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "ebgan_keras", *args]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


def train_args(out, config, epochs):
    return (
        "train", "ebgan_pt", "--data", "mnist_subset", "--epochs", str(epochs),
        "--steps-per-epoch", "2", "--out", str(out), "--config", str(config),
        "--verbose", "0", "--backend", keras.backend.backend(),
    )  # fmt: skip


def iterations(model) -> int:
    return int(keras.ops.convert_to_numpy(model.g_optimizer.iterations))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    config = out.parent / "tiny.json"
    config.write_text(json.dumps(TINY_CONFIG))
    done = run_cli(*train_args(out, config, epochs=1))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Wrote model.keras" in done.stdout
    first = keras.saving.load_model(out / "model.keras")
    history = json.loads((out / "history.json").read_text())
    # Resume: the same command with more epochs continues at epoch 2.
    done = run_cli(*train_args(out, config, epochs=2))
    assert done.returncode == 0, done.stderr[-3000:]
    return {"out": out, "first": first, "first_history": history}


@slow_off_tensorflow
def test_train_writes_the_run_folder(run_dir):
    first = run_dir["first"]
    assert isinstance(first, ek.EBGANPT)
    assert iterations(first) == 2
    assert first.generator.get_layer("dense_0").units == 32
    assert len(run_dir["first_history"]["d_loss"]) == 1
    out = run_dir["out"]
    for name in ("samples.png", "samples/epoch_0001.png", "curves.png"):
        pixels = np.asarray(Image.open(out / name), dtype=np.float32)
        assert pixels.std() > 1.0, name
    assert Image.open(out / "samples.png").size == (8 * 28 * 2, 8 * 28 * 2)
    settings = json.loads((out / "run_config.json").read_text())
    assert settings["name"] == "ebgan_pt" and settings["class"] == "EBGANPT"
    assert settings["generator"]["kwargs"]["hidden_units"] == [32]
    assert settings["model"]["margin"] == 10.0


@slow_off_tensorflow
def test_rerun_resumes_from_the_last_epoch(run_dir):
    out = run_dir["out"]
    resumed = keras.saving.load_model(out / "model.keras")
    assert iterations(resumed) == 4  # 2 steps per epoch, 2 epochs in all
    history = json.loads((out / "history.json").read_text())
    assert len(history["d_loss"]) == 2
    assert history["d_loss"][0] == run_dir["first_history"]["d_loss"][0]
    assert (out / "samples" / "epoch_0002.png").is_file()


@slow_off_tensorflow
def test_sample_from_saved_file(run_dir, tmp_path):
    out, npz = tmp_path / "grids" / "grid.png", tmp_path / "samples.npz"
    done = run_cli(
        "sample", str(run_dir["out"] / "model.keras"), "--sampler", "truncation",
        "--num", "9", "--out", str(out), "--npz", str(npz), "--seed", "3",
        "--backend", keras.backend.backend(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    arrays = np.load(npz)
    assert arrays["images"].shape == (9, 28, 28, 1)
    assert arrays["latents"].shape == (9, 64)
    assert np.abs(arrays["images"]).max() <= 1.0
    assert Image.open(out).size == (3 * 28 * 2, 3 * 28 * 2)


@slow_off_tensorflow
def test_sample_none_is_seeded_in_process(run_dir, tmp_path, capsys):
    model_file = str(run_dir["out"] / "model.keras")
    paths = [tmp_path / "a.npz", tmp_path / "b.npz"]
    for path in paths:
        argv = ["sample", model_file, "--num", "4", "--npz", str(path)]
        argv += ["--out", str(tmp_path / "a.png")]
        assert cli.main(argv) == 0
    first, second = (np.load(p) for p in paths)
    np.testing.assert_allclose(first["images"], second["images"], atol=1e-6)
    assert "Wrote 4 samples (none sampler)" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:Only .* (samples|reference images)")
@slow_off_tensorflow
def test_eval_prints_values_with_protocol(run_dir, tmp_path, capsys):
    report = tmp_path / "eval.json"
    code = cli.main(
        [
            "eval", str(run_dir["out"] / "model.keras"), "--metrics", "fid,kid",
            "--num", "40", "--reference", "mnist_subset", "--num-reference", "60",
            "--json", str(report),
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "fid: fid=" in printed and "kid: kid=" in printed
    assert "mnist_classifier features, 40 generated vs 60 reference" in printed
    results = json.loads(report.read_text())
    assert results["fid"]["values"]["fid"] > 0
    assert results["kid"]["protocol"]["reference"] == "mnist_subset"


def test_user_error_in_subprocess_exits_2_without_traceback(tmp_path):
    done = run_cli("train", "wgan", "--data", "mnist", "--out", "x", cwd=tmp_path)
    assert done.returncode == 2
    assert "Unknown config" in done.stderr and "Received: 'wgan'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "ebgan", "--data", "mnist", "--out", "x", "--epochs", "0"],
         "positive integer, got '0'"),
        (["train", "ebgan", "--data", "mnist", "--out", "x", "--seed", "a"],
         "expected an integer, got 'a'"),
        (["train", "ebgan", "--out", "x"], "--data is required"),
        (["train", "ebgan", "--data", "mnist", "--out", "x", "--config", "no.json"],
         "--config: no such file"),
        (["sample", "missing.keras"],
         "no such model file or zoo entry folder. Received: 'missing.keras'"),
        (["eval", "missing.keras"], "no such model file"),
        (["eval", "m.keras", "--metrics", "fid,foo"], "comma-separated list"),
        (["sample", "m.keras", "--sampler", "magic"], "invalid choice: 'magic'"),
        (["eval", "m.keras", "--sampler", "gibbs"], "invalid choice: 'gibbs'"),
        (["sample", "m.keras", "--sampler", "ddls", "--ddls-temperature", "hot"],
         "expected 'calibrated' or a positive number, got 'hot'"),
        (["eval", "m.keras", "--sampler", "ddls", "--ddls-temperature", "0"],
         "expected 'calibrated' or a positive number, got '0'"),
        (["sample", "m.keras", "--ddls-temperature", "calibrated"],
         "--ddls-temperature is only for --sampler ddls. Received: --sampler none"),
        (["eval", "m.keras", "--sampler", "mh", "--ddls-temperature", "2"],
         "--ddls-temperature is only for --sampler ddls. Received: --sampler mh"),
        (["sample", "m.keras", "--sampler", "truncation", "--animate", "a.gif"],
         "--animate is only for --sampler ddls. Received: --sampler truncation"),
        (["sample", "m.keras", "--sampler", "ddls", "--animate", "a.png"],
         "--animate: expected a .gif file. Received: 'a.png'"),
        (["sample", "m.keras", "--sampler", "ddls", "--animate-every", "3"],
         "--animate-every needs --animate FILE.gif. Received: --animate-every 3"),
        (["sample", "m.keras", "--num-calibration", "0"], "positive integer, got '0'"),
        (["--backend", "numpy", "zoo", "list"], "invalid choice: 'numpy'"),
    ],
)  # fmt: skip
def test_user_errors_exit_2_with_a_clear_message(
    argv, message, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


#: The sampler settings of the fake entry's card (small, to be fast).
CARD = {
    "truncation": {"threshold": 0.5},
    "ddls": {"num_steps": 3, "temperature": 2.0, "step_size": 0.01},
    "rejection": {"burn_in": 200, "gamma_percentile": 50.0, "batch_size": 40},
    "metropolis_hastings": {"chain_length": 2},
}


def fake_zoo_module(saved_file):
    """A stand-in for `ebgan_keras.zoo` with one entry, `tiny`, a saved model."""
    module = types.ModuleType("ebgan_keras.zoo")
    calls = []
    module.build_calls = calls

    def check(name):
        if name != "tiny":
            raise ValueError(f"Unknown zoo entry. Expected one of ['tiny']. {name!r}")

    def load(name):
        check(name)
        model = keras.saving.load_model(saved_file)
        model.zoo_entry = name  # as `ek.zoo.load` marks its models
        return model

    def build(name, out_dir=None, run_dir=None, **overrides):
        check(name)
        calls.append({"out_dir": out_dir, "run_dir": run_dir, **overrides})
        return {
            "training": {"wall_time_s": 60.0, "steps": 2},
            "metrics": {"prior": {"fid": 12.5}},
        }

    def describe(name):
        check(name)
        return {
            "card": "# tiny\nA tiny EBGAN-PT for tests.",
            "path": "/zoo/tiny",
            "recipe": {"evaluation": {"reference": "mnist_subset", "samplers": CARD}},
            "metrics": {"ddls": {"sampler": {"step_size": 0.05, "seed": 9}}},
        }

    module.load, module.build, module.describe = load, build, describe
    module.list_entries = lambda: [
        {
            "name": "tiny",
            "class": "EBGANPT",
            "image_shape": [28, 28, 1],
            "weights": "shipped",
            "fid": {"sampler": "prior", "value": 12.5},
        }
    ]
    return module


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["zoo", "list"], "the model zoo is not available in this install"),
        (["zoo", "build", "tiny"], "zoo entry 'tiny' is not available in this"),
        (["sample", "ebgan_pt_mnist"], "zoo entry 'ebgan_pt_mnist' is not available"),
        (["eval", "ebgan_pt_mnist"], "zoo entry 'ebgan_pt_mnist' is not available"),
    ],
)
def test_without_the_zoo_module_zoo_names_are_a_clear_error(
    argv, message, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "ebgan_keras.zoo", None)  # import fails
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and "Pass a .keras file" in error


def test_zoo_commands_and_zoo_entries_delegate_to_the_zoo(
    run_dir, tmp_path, capsys, monkeypatch
):
    zoo = fake_zoo_module(run_dir["out"] / "model.keras")
    monkeypatch.setitem(sys.modules, "ebgan_keras.zoo", zoo)
    assert cli.main(["zoo", "list"]) == 0
    assert "tiny" in capsys.readouterr().out.splitlines()[1]
    assert cli.main(["zoo", "describe", "tiny"]) == 0
    assert "A tiny EBGAN-PT for tests." in capsys.readouterr().out
    argv = ["zoo", "build", "tiny", "--out", "o", "--epochs", "1", "--data", "d"]
    assert cli.main(argv) == 0
    assert "Built tiny in 1.0 min of training (2 steps) -> o (prior: FID 12.50)" in (
        capsys.readouterr().out
    )
    assert zoo.build_calls == [
        {"out_dir": "o", "run_dir": None, "epochs": 1, "data": "d"}
    ]
    # `sample` loads the entry's trained model through `zoo.load`.
    npz = tmp_path / "zoo.npz"
    argv = ["sample", "tiny", "--num", "4", "--out", str(tmp_path / "z.png")]
    assert cli.main([*argv, "--npz", str(npz)]) == 0
    expected = keras.saving.load_model(run_dir["out"] / "model.keras")
    latents = np.load(npz)["latents"]
    np.testing.assert_allclose(
        np.load(npz)["images"], expected.generate(latents), atol=1e-5
    )
    capsys.readouterr()
    for bad, message in (
        (["zoo", "describe", "huge"], "cannot describe zoo entry 'huge': Unknown"),
        (["zoo", "build"], "`zoo build` needs the NAME of an entry"),
        (["sample", "huge"], "cannot load zoo entry 'huge'"),
        (["zoo", "describe", "tiny", "--out", "x"], "--out is only for `zoo build`"),
    ):
        assert cli.main(bad) == 2
        assert message in capsys.readouterr().err


@slow_off_tensorflow
def test_bad_config_and_changed_settings_are_user_errors(run_dir, tmp_path, capsys):
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"epoch": 3}))
    out = str(tmp_path / "out")
    argv = ["train", "ebgan", "--data", "mnist_subset", "--out", out]
    assert cli.main([*argv, "--config", str(config)]) == 2
    assert "unknown keys ['epoch']" in capsys.readouterr().err
    config.write_text(json.dumps({"model": {"margin": -1.0}}))
    assert cli.main([*argv, "--config", str(config)]) == 2
    assert "cannot build ebgan" in capsys.readouterr().err
    # The run folder of an EBGAN-PT run refuses to resume as an EBGAN.
    other = ["train", "ebgan", "--data", "mnist_subset", "--epochs", "3"]
    assert cli.main([*other, "--out", str(run_dir["out"])]) == 2
    assert "class: 'EBGANPT' -> 'EBGAN'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command", [[], ["train"], ["sample"], ["eval"], ["export"], ["zoo"]]
)
def test_help_is_complete_with_an_example(command, capsys):
    assert cli.main([*command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "example" in text and "ebgan-keras" in text
    if command == ["train"]:
        options = "--data --epochs --out --batch-size --seed --config --backend"
        for option in (*options.split(), "--steps-per-epoch", "--image-size"):
            assert option in text


def test_recipes_follow_the_papers():
    from ebgan_keras.run.builder import build_model

    parser = cli.build_parser()
    began = cli.train.resolve_train_settings(
        parser.parse_args(["train", "began", "--data", "mnist", "--out", "r"])
    )
    assert began["training"]["image_size"] == 32
    assert began["generator"]["builder"] == "began_generator"
    magan = cli.train.resolve_train_settings(
        parser.parse_args(
            ["train", "magan", "--data", "mnist", "--out", "r", "--epochs", "2"]
        )
    )
    model = build_model(magan, (28, 28, 1))
    assert model.pretrain_epochs == 1  # one adversarial epoch left
    began["generator"]["kwargs"]["filters"] = 4
    began["discriminator"]["kwargs"]["filters"] = 4
    model = build_model(began, (8, 8, 1))
    assert isinstance(model, ek.BEGAN) and model.image_shape == (8, 8, 1)
    assert model.latent_distribution == "uniform"


def test_internal_errors_are_one_line_unless_verbose(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli.sample, "run", broken)
    assert cli.main(["sample", "ebgan_pt_mnist"]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "internal error: RuntimeError: a bug" in error
    assert "--verbose" in error
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["--verbose", "sample", "ebgan_pt_mnist"])


def test_train_takes_an_entrys_config_file_or_its_name():
    from pathlib import Path

    parser = cli.build_parser()
    path = str(Path(cli.__file__).parents[2] / "zoo" / "ebgan_pt_mnist" / "config.json")

    def resolve(*argv):
        return cli.train.resolve_train_settings(parser.parse_args(["train", *argv]))

    whole = resolve("--config", path, "--out", "r")
    assert whole["name"] == "ebgan_pt_mnist" and whole["class"] == "EBGANPT"
    assert whole["training"]["data"] == "mnist" and whole["training"]["epochs"] == 10
    named = resolve("ebgan_pt_mnist", "--epochs", "2", "--out", "r")
    assert named["training"]["epochs"] == 2
    assert named["generator"] == whole["generator"]
    with pytest.raises(cli.errors.UsageError, match="whole run config"):
        resolve("ebgan", "--config", path, "--out", "r")
    with pytest.raises(cli.errors.UsageError, match="needs CONFIG"):
        resolve("--data", "mnist", "--out", "r")


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the command is backend-independent; export itself is tested on all",
)
def test_export_writes_a_saved_model_and_refuses_bad_input(tmp_path, capsys):
    import tensorflow as tf

    generator = ek.networks.ebgan_mlp_generator(
        latent_dim=4, image_shape=(6, 6, 1), hidden_units=(8,)
    )
    discriminator = ek.networks.ebgan_mlp_discriminator(
        image_shape=(6, 6, 1), encoder_units=(8, 4)
    )
    ek.EBGANPT(generator, discriminator).save(tmp_path / "m.keras")
    model = str(tmp_path / "m.keras")
    out = tmp_path / "saved"
    args = ["export", model, str(out), "--sampler", "truncation"]
    assert cli.main([*args, "--threshold", "0.5"]) == 0
    assert "threshold=0.5" in capsys.readouterr().out
    served = tf.saved_model.load(str(out))
    drawn = served.sample(tf.constant(3), tf.constant(0, tf.int64))
    assert drawn["images"].shape == (3, 6, 6, 1)
    assert np.abs(drawn["latents"].numpy()).max() <= 0.5
    # Nothing already written is replaced; bad settings are one line, rc 2.
    assert cli.main(args) == 2
    assert "must not exist yet" in capsys.readouterr().err
    bad = [*args[:2], str(tmp_path / "b"), "--sampler", "truncation"]
    assert cli.main([*bad, "--threshold", "-1"]) == 2
    assert "`threshold` must be a finite number > 0" in capsys.readouterr().err
    assert cli.main([*bad[:3], "--sampler", "ddls", "--threshold", "1"]) == 2
    assert "--threshold is not a setting of the ddls sampler" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "b").exists()


@slow_off_tensorflow
def test_sample_and_eval_with_every_sampler_use_the_cards_settings(
    run_dir, tmp_path, capsys, monkeypatch
):
    zoo = fake_zoo_module(run_dir["out"] / "model.keras")
    monkeypatch.setitem(sys.modules, "ebgan_keras.zoo", zoo)
    expected = {
        "truncation": "Sampler truncation: threshold=0.5",
        # The card's recipe, with the step size its sweep chose.
        "ddls": "Sampler ddls: step_size=0.05, num_steps=3, temperature=2,",
        "rejection": "gamma_percentile=50,",
        "mh": "Sampler metropolis_hastings: chain_length=2",
    }
    for name, settings in expected.items():
        npz = tmp_path / f"{name}.npz"
        argv = ["sample", "tiny", "--sampler", name, "--num", "5", "--npz", str(npz)]
        argv += ["--out", str(tmp_path / "s.png"), "--num-calibration", "40"]
        assert cli.main(argv) == 0, capsys.readouterr().err
        printed = capsys.readouterr().out
        assert settings in printed and f"Wrote 5 samples ({name} sampler)" in printed
        # rejection and mh calibrate on the entry's reference, test split.
        calibrated = "Calibrated the energy on 40 mnist_subset/test images"
        assert (calibrated in printed) == (name in ("rejection", "mh"))
        assert np.load(npz)["latents"].shape == (5, 64)
    report = tmp_path / "eval.json"
    argv = ["eval", "tiny", "--sampler", "mh", "--num", "20", "--num-reference"]
    argv += ["40", "--num-calibration", "40", "--json", str(report)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few images for the features: biased
        assert cli.main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "sampler=metropolis_hastings" in printed
    assert "20 generated vs 40 reference (mnist_subset/test)" in printed
    details = json.loads(report.read_text())["fid"]["protocol"]["details"]
    assert details["sampler"] == "metropolis_hastings"
    assert details["sampler_config"]["chain_length"] == 2


@slow_off_tensorflow
def test_sample_ddls_calibrated_temperature_and_animation(
    run_dir, tmp_path, capsys, monkeypatch
):
    from ebgan_keras.samplers import EnergyCalibration
    from ebgan_keras.samplers import ddls

    fitted = []

    def calibrate_model(model, real_images, *args):
        fitted.append(real_images.shape)
        return EnergyCalibration(slope=0.25, intercept=0.0)

    monkeypatch.setattr(ddls, "calibrate_model", calibrate_model)
    model_file = str(run_dir["out"] / "model.keras")
    gif = tmp_path / "chains.gif"
    argv = ["sample", model_file, "--sampler", "ddls", "--num", "6"]
    argv += ["--out", str(tmp_path / "s.png"), "--reference", "mnist_subset"]
    argv += ["--num-calibration", "30", "--ddls-temperature", "calibrated"]
    assert cli.main([*argv, "--animate", str(gif), "--animate-every", "25"]) == 0
    printed = capsys.readouterr().out
    assert fitted == [(30, 28, 28, 1)]
    assert "slope 0.25, DDLS temperature 4" in printed
    assert "temperature=4," in printed and "5 frames, steps 0..100 every 25" in printed
    with Image.open(gif) as frames:
        # 6 chains in a 3 x 2 grid of 28x28 images, scaled 2x: steps 0, 25, ... 100.
        assert frames.n_frames == 5 and frames.size == (3 * 28 * 2, 2 * 28 * 2)
    # An energy that does not rank real images first gives no temperature.
    monkeypatch.setattr(
        ddls, "calibrate_model", lambda *args: EnergyCalibration(-0.5, 0.0)
    )
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert "--ddls-temperature calibrated: " in error and "slope=-0.5" in error
    assert error.count("\n") == 1
    # A fixed temperature, and a reference that does not exist.
    fixed = [*argv[:-2], "--ddls-temperature", "2.5"]
    assert cli.main(fixed) == 0
    assert "temperature=2.5," in capsys.readouterr().out
    assert cli.main([*argv, "--reference", "nope"]) == 2
    assert "--reference 'nope'" in capsys.readouterr().err


def test_the_cli_package_has_short_functions_and_modules():
    """One module per command: no module over 500 lines, no function over 80
    (counted as `end_lineno - lineno + 1` of every `def`, docstring included)."""
    import ast
    from pathlib import Path

    folder = Path(cli.__file__).parent
    long = []
    for path in sorted(folder.glob("*.py")):
        text = path.read_text()
        assert text.count("\n") <= 500, path.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 80:
                    long.append(f"{path.name}:{node.name} {length}")
    assert not long, long
    for command in ("train", "sample", "evaluate", "export", "sweep", "zoo"):
        module = getattr(cli, command)
        assert callable(module.add_parser) and callable(module.run), command


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("num_steps", 1e9, "`num_steps` must be an int >= 1 and <= 10000"),
        ("step_size", float("nan"), "`step_size` must be a finite number > 0"),
        ("temperature_scale", -0.5, "`temperature_scale` must be a finite number > 0"),
    ],
)
def test_a_cards_sampler_settings_are_checked_like_the_flags(
    key, value, match, tmp_path, capsys
):
    """A card's metadata.json sets the sampler of sample, eval and export: a
    value the flags would refuse is one line and exit code 2 for each."""
    import shutil
    from pathlib import Path

    source = Path(cli.__file__).parents[2] / "zoo" / "ebgan_pt_mnist"
    entry = tmp_path / "ebgan_pt_mnist"
    shutil.copytree(source, entry)
    metadata = json.loads((entry / "metadata.json").read_text())
    metadata["metrics"]["ddls"]["sampler"][key] = value
    (entry / "metadata.json").write_text(json.dumps(metadata))
    png = str(tmp_path / "s.png")
    commands = [
        ["sample", str(entry), "--sampler", "ddls", "--num", "2", "--out", png],
        ["eval", str(entry), "--sampler", "ddls", "--num", "2"]
        + ["--reference", "mnist_subset"],
        ["export", str(entry), str(tmp_path / "saved"), "--sampler", "ddls"],
    ]
    for argv in commands:
        assert cli.main(argv) == 2, argv
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and match in error, error
        assert "metadata.json" in error
    assert not (tmp_path / "saved").exists() and not os.path.exists(png)


def _user_mistakes(tmp_path):
    """`(argv, expected in the error)` of ordinary mistakes that once gave
    "internal error ... please report it" (rc 1), a run, or a wrong message."""
    import shutil
    from pathlib import Path

    png = str(tmp_path / "s.png")
    train = ["train", "ebgan_pt", "--data", "mnist_subset", "--epochs", "1"]
    train += ["--out", str(tmp_path / "run")]
    entry = tmp_path / "entry"
    shutil.copytree(Path(cli.__file__).parents[2] / "zoo" / "ebgan_pt_mnist", entry)
    metadata = json.loads((entry / "metadata.json").read_text())
    metadata["files"] = list(metadata["files"])
    (entry / "metadata.json").write_text(json.dumps(metadata))
    (tmp_path / "a_file").write_text("x")
    folder = str(tmp_path / "entry")
    return [
        (["sample", "ebgan_pt_mnist", "--seed", "-1", "--out", png], "--seed"),
        (["sample", "ebgan_pt_mnist", "--seed", "4294967296", "--out", png], "--seed"),
        ([*train, "--seed", "-1"], "argument --seed: expected an integer from 0"),
        ([*train, "--batch-size", "1"], "EBGANPT needs batches of at least 2"),
        (["sample", folder, "--out", png], "metadata.json or config.json is malformed"),
        ([*train, "--config", folder], "--config must be a JSON file, not a folder"),
        ([*train, "--config", "/dev/null"], "must be a regular JSON file"),
        (
            ["export", "ebgan_pt_mnist", str(tmp_path / "a_file" / "x")],
            "cannot write to",
        ),
    ]


def test_ordinary_mistakes_are_one_line_and_exit_code_2(tmp_path, capsys):
    for argv, expected in _user_mistakes(tmp_path):
        assert cli.main(argv) == 2, argv
        error = capsys.readouterr().err
        last = error.strip().splitlines()[-1]
        assert expected in last and "internal error" not in error, (argv, error)
        if ": error: argument " not in last:  # argparse prints its usage first
            assert error.count("\n") == 1, error
    assert not os.path.exists(tmp_path / "run") and not (tmp_path / "s.png").exists()
