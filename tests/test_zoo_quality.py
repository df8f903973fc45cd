"""Zoo quality: baselines, re-evaluation, calibrated DDLS in recipes, pictures."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

import ebgan_keras as ek
from ebgan_keras import cli
from ebgan_keras import plot
from ebgan_keras import zoo
from ebgan_keras.zoo import card
from ebgan_keras.zoo import stages
from tests import helpers

#: The zoo's evaluation, pairing and card logic needs no particular backend
#: (the samplers and models it drives are tested on each in their own files):
#: by default on TensorFlow, elsewhere with --run-slow.
pytestmark = helpers.slow_off_tensorflow

#: A recipe's DDLS as the MNIST entries now have it: calibrated temperature,
#: step size and steps chosen on held-out images, shrunk.
CALIBRATED_DDLS = {
    "samplers": {"prior": {}, "ddls": {"temperature": "calibrated"}, "rejection": {}},
    "ddls_sweep": {
        "step_size": [0.01, 0.1],
        "num_steps": [1, 2],
        "temperature_scale": [0.5],
        "num_samples": 20,
        "seed": 1,
    },
}


@pytest.fixture(scope="module")
def tiny_trained(tmp_path_factory):
    """A tiny EBGAN-PT entry, trained 2 steps by the recipe code, prior only."""
    config = helpers.tiny_zoo_config("tiny")
    root = tmp_path_factory.mktemp("quality")
    (root / "config").mkdir()
    (root / "config" / "config.json").write_text(json.dumps(config))
    out = root / "tiny"
    zoo.build(str(root / "config"), out_dir=str(out), steps_per_epoch=2, verbose=0)
    return out


def test_baseline_discriminators_are_the_energy_models_trunks_with_a_logit():
    kwargs = {"image_size": 32, "channels": 1}
    pairs = [
        (
            ek.networks.gan_conv_discriminator(**kwargs, filters=(8, 16)),
            ek.networks.ebgan_conv_discriminator(**kwargs, filters=(8, 16)),
        ),
        (
            ek.networks.began_gan_discriminator(**kwargs, filters=4, hidden_dim=8),
            ek.networks.began_discriminator(**kwargs, filters=4, hidden_dim=8),
        ),
    ]
    for gan, energy in pairs:
        assert gan.output_shape == (None, 1)
        trunk = {
            w.path: tuple(w.shape)
            for w in energy.weights
            if w.path.split("/")[0].startswith(("down_", "encoder", "hidden"))
        }
        head = {w.path: tuple(w.shape) for w in gan.weights}
        assert trunk and all(head[path] == shape for path, shape in trunk.items())
        assert set(head) - set(trunk) == {"logit/kernel", "logit/bias"}


def test_every_energy_entry_is_paired_with_its_like_for_like_baseline():
    assert zoo.baseline_of("ebgan_mnist") == "gan_mnist"
    assert zoo.baseline_of("magan_mnist") == "gan_mnist"
    assert zoo.baseline_of("gan_mnist") is None
    assert zoo.baseline_of("ebgan_pt_fashion_mnist") == "gan_fashion_mnist"
    for name in ("ebgan_mnist", "ebgan_pt_fashion_mnist", "wgan_gp_mnist"):
        entry, other = (stages.read_config(n) for n in (name, zoo.baseline_of(name)))
        assert other["class"] == "GAN" and other["generator"] == entry["generator"]
        same = ("data", "image_size", "batch_size", "epochs", "steps_per_epoch")
        assert all(other["training"][k] == entry["training"][k] for k in same)
    # The same discriminator trunk, with a logit head in place of the decoder.
    mlp, gan_mlp = (stages.read_config(n) for n in ("ebgan_mnist", "gan_mnist"))
    assert (
        mlp["discriminator"]["kwargs"]["encoder_units"]
        == gan_mlp["discriminator"]["kwargs"]["hidden_units"]
    )
    conv, gan_conv = (
        stages.read_config(n) for n in ("ebgan_pt_fashion_mnist", "gan_fashion_mnist")
    )
    assert conv["discriminator"]["kwargs"] == gan_conv["discriminator"]["kwargs"]
    assert gan_conv["discriminator"]["builder"] == "gan_conv_discriminator"
    # BEGAN's nets: gan_began_mnist is BEGAN's encoder with a logit head and
    # the generator, prior, batch and steps of began_mnist; Fashion-MNIST's
    # BEGAN has no baseline in the zoo: no pairing is made up.
    assert zoo.baseline_of("began_mnist") == "gan_began_mnist"
    assert zoo.baseline_of("began_fashion_mnist") is None
    began, gan_began = (
        stages.read_config(n) for n in ("began_mnist", "gan_began_mnist")
    )
    assert began["discriminator"]["kwargs"] == gan_began["discriminator"]["kwargs"]
    assert gan_began["discriminator"]["builder"] == "began_gan_discriminator"
    assert gan_began["model"]["latent_distribution"] == "uniform"
    assert all(
        gan_began["training"][k] == began["training"][k]
        for k in ("data", "image_size", "batch_size", "epochs", "steps_per_epoch")
    )
    table = zoo.markdown_table()
    row = next(line for line in table.splitlines() if "[ebgan_mnist]" in line)
    assert "[gan_mnist](gan_mnist/README.md)" in row


def test_slerp_keeps_the_ends_and_the_norm_of_orthogonal_latents():
    start = np.array([[3.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    end = np.array([[0.0, 3.0, 0.0], [1.0, 1.0, 0.0]])  # second: the same point
    path = plot.slerp(start, end, 5)
    assert path.shape == (2, 5, 3) and path.dtype == np.float32
    np.testing.assert_allclose(path[:, 0], start, atol=1e-6)
    np.testing.assert_allclose(path[:, -1], end, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(path[0], axis=1), 3.0, rtol=1e-6)
    np.testing.assert_allclose(path[1], np.repeat(start[1:], 5, axis=0), atol=1e-6)
    with pytest.raises(ValueError, match="num_steps"):
        plot.slerp(start, end, 1)
    with pytest.raises(ValueError, match=r"shapes \(2, 3\) and \(1, 3\)"):
        plot.slerp(start, end[:1], 3)


def test_recipe_ddls_without_a_calibrated_temperature_runs_at_one(
    tiny_trained, monkeypatch
):
    from ebgan_keras.samplers import EnergyCalibration
    from ebgan_keras.samplers import ddls

    model = zoo.load(str(tiny_trained))
    real = np.zeros((4, 28, 28, 1), "float32")
    monkeypatch.setattr(ddls, "calibrate_model", lambda *a: EnergyCalibration(0.5, 0))
    sampler = stages.ddls_sampler(model, {"temperature": "calibrated"}, real, 0)
    assert sampler.temperature == 2.0 and sampler.calibration.slope == 0.5
    monkeypatch.setattr(ddls, "calibrate_model", lambda *a: EnergyCalibration(-1, 0))
    with pytest.warns(UserWarning, match="temperature 1.0: .*slope=-1"):
        sampler = stages.ddls_sampler(model, {"temperature": "calibrated"}, real, 0)
    assert sampler.temperature == 1.0 and sampler.calibration is None
    fixed = stages.ddls_sampler(model, {"temperature": 3.0, "seed": 5}, None, 0)
    assert fixed.temperature == 3.0 and fixed.seed == 0


def test_reevaluate_keeps_the_training_and_measures_calibrated_ddls(
    tiny_trained, tmp_path, capsys, monkeypatch
):
    from ebgan_keras.samplers import EnergyCalibration
    from ebgan_keras.samplers import ddls

    # Two training steps do not rank real images first: a fixed fit stands
    # in for a trained model's (the fit itself is tested in test_samplers).
    fits = []

    def calibrate_model(model, real_images, *args):
        fits.append(len(real_images))
        return EnergyCalibration(slope=0.5, intercept=0.0)

    monkeypatch.setattr(ddls, "calibrate_model", calibrate_model)
    source = tmp_path / "source"
    shutil.copytree(tiny_trained, source)
    config = json.loads((source / "config.json").read_text())
    config["evaluation"].update(CALIBRATED_DDLS)
    (source / "config.json").write_text(json.dumps(config))
    before = json.loads((source / "metadata.json").read_text())
    out = tmp_path / "out"
    metadata = zoo.reevaluate(
        str(source), out_dir=str(out), run_dir=str(tmp_path / "eval"), num_samples=20
    )
    assert metadata["training"] == before["training"]
    assert set(metadata["metrics"]) == {"prior", "ddls", "rejection"}
    for result in [*metadata["metrics"].values(), metadata["floor"]]:
        assert 0.0 <= result["precision"] <= 1.0 and 0.0 <= result["recall"] <= 1.0
    assert metadata["floor"]["split"] == "train"
    sweep = metadata["ddls_sweep"]
    keys = {"0.01/1/x0.5", "0.1/1/x0.5", "0.01/2/x0.5", "0.1/2/x0.5"}
    assert set(sweep["fid"]) == {"prior", *keys}
    assert sweep["reference"] == "held-out training images" and sweep["temperature"]
    ddls = metadata["metrics"]["ddls"]["sampler"]
    assert {ddls["step_size"], ddls["num_steps"]} <= {0.01, 0.1, 1, 2}
    assert ddls["step_size"] == sweep["best"]["step_size"]
    assert ddls["num_steps"] == sweep["best"]["num_steps"]
    # Same calibration as the sweep's: 1 / slope of the fit on training images
    # (mnist_subset's train split has 2000 images: NUM_CALIBRATION of them).
    assert ddls["temperature"] == sweep["temperature"] == 2.0
    # ... run at the chosen scale of it (the CLI below must pass it on too).
    assert ddls["temperature_scale"] == sweep["best"]["temperature_scale"] == 0.5
    assert fits and set(fits) == {stages.NUM_CALIBRATION}
    # Pictures: the interpolation grid (8 rows of 10) and DDLS's chains.
    with Image.open(out / "interpolation.png") as grid:
        assert grid.size == (10 * 28 * 2, 8 * 28 * 2)
    with Image.open(out / "ddls_chains.gif") as gif:
        assert gif.n_frames >= 2 and gif.size == (8 * 28 * 2, 2 * 28 * 2)
    assert {"interpolation.png", "ddls_chains.gif"} <= set(metadata["files"])
    text = (out / "README.md").read_text()
    assert "![DDLS chains](ddls_chains.gif)" in text and "*floor: 20 real" in text
    command = card.eval_command("tiny", "ddls", metadata["metrics"]["ddls"])
    assert command in text and "--calibration-split" not in command
    # The CLI form resumes from the same run folder: nothing is re-measured.
    argv = ["zoo", "build", str(source), "--evaluate-only", "--out", str(out)]
    argv += ["--run-dir", str(tmp_path / "eval"), "--num-samples", "20"]
    assert cli.main(argv) == 0
    assert f"-> {out} (prior: FID" in capsys.readouterr().out
    again = json.loads((out / "metadata.json").read_text())
    assert again["metrics"] == metadata["metrics"]
    # The re-evaluated folder is a valid entry, weights and golden unchanged.
    model = zoo.load(str(out))
    zoo.check_golden(model, out)
    # The CLI reproduces the card's DDLS row from the card: its calibration
    # (no refit), step size, steps and seed stream: the same FID.
    fits.clear()
    report = tmp_path / "ddls.json"
    argv = ["eval", str(out), "--sampler", "ddls", "--num", "20", "--json", str(report)]
    argv += ["--reference", "mnist_subset", "--metrics", "fid,kid,precision_recall"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "The card's energy calibration: slope 0.5, DDLS temperature 2 " in printed
    assert f"num_steps={ddls['num_steps']}" in printed and not fits
    measured = json.loads(report.read_text())
    assert measured["fid"]["values"]["fid"] == pytest.approx(
        metadata["metrics"]["ddls"]["fid"], rel=1e-4
    )


def test_ddls_sweep_chooses_the_temperature_scale_on_its_scores(tiny_trained):
    model = zoo.load(str(tiny_trained))
    # A stand-in score: FID = the mean pixel + 1, so the sweep's choice is
    # the setting whose samples are darkest; every key is scored once.
    scored = []

    class _Value:
        def __init__(self, value):
            self.value = value

    def score(images, count):
        assert len(images) == count == 12
        scored.append(float(np.mean(images)) + 1.0)
        return {"fid": _Value(scored[-1])}

    sweep = {"step_size": [0.05], "num_steps": [2], "temperature_scale": [1.0, 0.25]}
    sweep |= {"num_samples": 12, "seed": 4}
    result = stages.ddls_sweep(model, {"temperature": 2.0}, sweep, score, 50)
    assert set(result["fid"]) == {"prior", "0.05/2/x1", "0.05/2/x0.25"}
    assert len(scored) == 3
    best = min(("0.05/2/x1", "0.05/2/x0.25"), key=result["fid"].get)
    scale = float(best.split("/x")[1])
    expected = {"step_size": 0.05, "num_steps": 2, "temperature_scale": scale}
    assert result["best"] == expected
    # Without the axis, the keys and the choice are as before.
    del sweep["temperature_scale"]
    plain = stages.ddls_sweep(model, {"temperature": 2.0}, sweep, score, 50)
    assert set(plain["fid"]) == {"prior", "0.05/2"}
    assert plain["best"] == {"step_size": 0.05, "num_steps": 2}


def test_reevaluate_refuses_training_options_and_untrained_entries(capsys):
    argv = ["zoo", "build", "gan_mnist", "--evaluate-only", "--epochs", "2"]
    assert cli.main(argv) == 2
    assert "--epochs trains; --evaluate-only does not" in capsys.readouterr().err
    assert cli.main(["zoo", "list", "--evaluate-only"]) == 2
    assert "--evaluate-only is only for `zoo build`" in capsys.readouterr().err
    with pytest.raises(ValueError, match="needs a trained entry"):
        zoo.reevaluate("began_celeba", out_dir="/nonexistent/never")
    with pytest.raises(TypeError, match=r"does not train.*\['epochs'\]"):
        zoo.reevaluate("gan_mnist", epochs=1)


def test_evaluation_measures_again_what_changed_settings_made_stale(
    tiny_trained, tmp_path
):
    model = zoo.load(str(tiny_trained), compile=False)
    config = json.loads((tiny_trained / "config.json").read_text())
    evaluation = config["evaluation"]
    evaluation["samplers"] = {
        "prior": {},
        "truncation": {"threshold": 1.0},
        "ddls": {"num_steps": 1},
    }
    evaluation["ddls_sweep"] = {
        "step_size": [0.01],
        "num_steps": [1],
        "num_samples": 20,
        "seed": 1,
    }
    run = str(tmp_path)
    first = stages.evaluate(model, config, run, num_samples=20)
    assert first["ddls"]["sampler"]["step_size"] == 0.01
    # Rerun with the same settings: every result comes from eval.json.
    again = stages.evaluate(model, config, run, num_samples=20)
    for name in ("prior", "truncation", "ddls"):
        assert again[name]["seconds_per_1000"] == first[name]["seconds_per_1000"]
    # A new sweep and a new truncation: those (and DDLS) are measured again.
    evaluation["ddls_sweep"]["step_size"] = [0.1]
    evaluation["samplers"]["truncation"] = {"threshold": 0.5}
    changed = stages.evaluate(model, config, run, num_samples=20)
    assert changed["prior"]["seconds_per_1000"] == first["prior"]["seconds_per_1000"]
    assert set(changed["_ddls_sweep"]["fid"]) == {"prior", "0.1/1"}
    assert changed["ddls"]["sampler"]["step_size"] == 0.1
    assert changed["truncation"]["sampler"]["threshold"] == 0.5


def test_a_ddls_sweep_killed_half_way_resumes_where_it_stopped(
    tiny_trained, tmp_path, monkeypatch
):
    model = zoo.load(str(tiny_trained), compile=False)
    config = json.loads((tiny_trained / "config.json").read_text())
    evaluation = config["evaluation"]
    evaluation["samplers"] = {"prior": {}, "ddls": {"num_steps": 1}}
    evaluation["ddls_sweep"] = {
        "step_size": [0.01, 0.03, 0.1],
        "num_steps": [1],
        "num_samples": 20,
        "seed": 1,
    }
    for folder in ("whole", "killed"):
        (tmp_path / folder).mkdir()
    whole = stages.evaluate(model, config, str(tmp_path / "whole"), num_samples=20)

    class Killed(Exception):
        pass

    scored = []
    real_evaluate = ek.metrics.evaluate

    def evaluate(images, kill_at=None, **kwargs):
        scored.append(len(images))
        if len(scored) == kill_at:
            raise Killed
        return real_evaluate(images, **kwargs)

    # Scored in order: the floor, the sweep's prior, 0.01/1, then 0.03/1 is
    # killed.
    monkeypatch.setattr(
        ek.metrics, "evaluate", lambda *a, **k: evaluate(*a, kill_at=4, **k)
    )
    run = tmp_path / "killed"
    with pytest.raises(Killed):
        stages.evaluate(model, config, str(run), num_samples=20)
    kept = json.loads((run / "eval.json").read_text())
    assert set(kept["_ddls_sweep_partial"]["fid"]) == {"prior", "0.01/1"}
    assert "_ddls_sweep" not in kept
    # Rerun: only the two settings left, then the final prior and DDLS.
    scored.clear()
    monkeypatch.setattr(ek.metrics, "evaluate", evaluate)
    resumed = stages.evaluate(model, config, str(run), num_samples=20)
    assert len(scored) == 4
    assert resumed["_ddls_sweep"]["fid"] == pytest.approx(
        whole["_ddls_sweep"]["fid"], rel=1e-6
    )
    assert list(resumed["_ddls_sweep"]["fid"]) == list(whole["_ddls_sweep"]["fid"])
    assert resumed["_ddls_sweep"]["best"] == whole["_ddls_sweep"]["best"]
    assert "_ddls_sweep_partial" not in json.loads((run / "eval.json").read_text())
    # A sweep changed since is not resumed from another sweep's rows.
    evaluation["ddls_sweep"]["step_size"] = [0.01, 0.2]
    scored.clear()
    changed = stages.evaluate(model, config, str(run), num_samples=20)
    assert set(changed["_ddls_sweep"]["fid"]) == {"prior", "0.01/1", "0.2/1"}
    assert len(scored) == 4  # prior, 0.01/1, 0.2/1, then DDLS again


def test_card_only_rewrites_the_card_after_its_notes_and_nothing_else(
    tiny_trained, tmp_path, capsys
):
    entry = tmp_path / "tiny"
    shutil.copytree(tiny_trained, entry)
    before = json.loads((entry / "metadata.json").read_text())
    config = json.loads((entry / "config.json").read_text())
    config["notes"] = ["Loses to its baseline: see the zoo table."]
    (entry / "config.json").write_text(json.dumps(config))
    with pytest.raises(ek.zoo.IntegrityError):
        zoo.load(str(entry))  # an edited config breaks the recorded sha256
    argv = ["zoo", "build", str(entry), "--card-only", "--out", str(entry)]
    assert cli.main(argv) == 0
    assert "nothing measured again" in capsys.readouterr().out
    assert "Loses to its baseline" in (entry / "README.md").read_text()
    after = json.loads((entry / "metadata.json").read_text())
    for key in ("metrics", "training", "evaluation", "floor", "parameters"):
        assert after[key] == before[key]
    assert after["files"]["README.md"] != before["files"]["README.md"]
    zoo.load(str(entry))  # every sha256 holds again


@pytest.mark.parametrize("recorded", [True, False])
def test_card_only_refuses_a_recipe_changed_beyond_its_text(
    tiny_trained, tmp_path, capsys, recorded
):
    # With `recipe_sha256` (cards written from now on) and without it (older
    # cards: checked against what the metadata records).
    entry = tmp_path / "tiny"
    shutil.copytree(tiny_trained, entry)
    metadata = json.loads((entry / "metadata.json").read_text())
    if not recorded:
        del metadata["recipe_sha256"]
        (entry / "metadata.json").write_text(json.dumps(metadata))
    card_before = (entry / "README.md").read_text()
    config = json.loads((entry / "config.json").read_text())
    changes = [
        ("training", "batch_size", 7, "training.batch_size"),
        ("evaluation", "num_samples", 41, "evaluation.num_generated"),
    ]
    for section, key, value, named in changes:
        edited = json.loads(json.dumps(config))
        edited[section][key] = value
        (entry / "config.json").write_text(json.dumps(edited))
        argv = ["zoo", "build", str(entry), "--card-only", "--out", str(entry)]
        assert cli.main(argv) == 2
        error = capsys.readouterr().err
        assert "--evaluate-only" in error
        assert (named if not recorded else "the recipe") in error
        assert (entry / "README.md").read_text() == card_before
    # Networks are checked by the model they build, in both cases.
    edited = json.loads(json.dumps(config))
    edited["generator"]["kwargs"]["hidden_units"] = [16]
    (entry / "config.json").write_text(json.dumps(edited))
    with pytest.raises(ValueError, match="parameters changed"):
        zoo.rewrite_card(str(entry), out_dir=str(entry))
    assert cli.main(["zoo", "build", "x", "--card-only", "--run-dir", "r"]) == 2
    assert "--card-only takes only --out" in capsys.readouterr().err


def test_card_says_when_ddls_fell_back_to_temperature_one():
    # began_fashion_mnist's energy ranks its samples below real images (its
    # calibration slope is negative): no calibrated temperature exists.
    fell_back, calibrated = (
        "\n".join(
            card._quality_lines(
                json.loads((zoo.entry_dir(name) / "metadata.json").read_text())
            )
        )
        for name in ("began_fashion_mnist", "began_mnist")
    )
    assert "runs at the fallback T = 1" in fell_back
    assert "from the energy's calibration" not in fell_back
    assert "temperature 0.04596 from the energy's calibration" in calibrated
    assert "fallback" not in calibrated


def test_card_only_check_tells_a_calibrated_ddls_from_a_fixed_or_fallen_back_one():
    # A DDLS measured at a calibrated temperature records its calibration; a
    # fixed T, or the fallback T = 1, records none. Only the first matches a
    # recipe that asks for "calibrated".
    config = stages.read_config("gan_mnist")
    metadata = json.loads((zoo.entry_dir("gan_mnist") / "metadata.json").read_text())
    assert config["evaluation"]["samplers"]["ddls"]["temperature"] == "calibrated"
    assert stages._changes_since_measured(config, metadata) == []
    metadata["metrics"]["ddls"]["sampler"]["calibration"] = None
    assert stages._changes_since_measured(config, metadata) == [
        "evaluation.samplers.ddls.temperature"
    ]
