"""The model zoo: shipped entries, golden outputs, integrity, recipes."""

from __future__ import annotations

import json
import os
import re
import shutil
import time

import keras
import numpy as np
import pytest

import ebgan_keras as ek
from ebgan_keras import cli
from ebgan_keras import files
from ebgan_keras import zoo
from ebgan_keras.zoo import card
from ebgan_keras.zoo import stages as recipe
from tests import helpers

TRAINED = (
    "began_fashion_mnist",
    "began_mnist",
    "bigan_mnist",
    "bigbigan_mnist",
    "ebgan_mnist",
    "ebgan_pt_fashion_mnist",
    "ebgan_pt_mnist",
    "gan_began_mnist",
    "gan_fashion_mnist",
    "gan_mnist",
    "loss_sensitive_gan_mnist",
    "magan_mnist",
    "wgan_gp_mnist",
)
DECLARED = ("began_celeba", "ebgan_pt_celeba")
#: Every recipe runs shrunk on the backend that built its entry; this one on
#: every backend (by default on TensorFlow only).
RECIPES_ON_EVERY_BACKEND = ("ebgan_pt_mnist",)
SLOW = pytest.mark.slow
#: Tests of the zoo's own logic (integrity checks, run folders) that need no
#: particular backend: by default on TensorFlow, elsewhere with --run-slow.
OFF_TENSORFLOW_SLOW = helpers.slow_off_tensorflow
#: The same for one parameter (`pytest.param` takes no empty mark).
SLOW_OFF_TENSORFLOW_PARAM = () if keras.backend.backend() == "tensorflow" else SLOW
#: Samplers shrunk with the recipe (the code paths stay the same).
SHRUNK_SAMPLERS = {
    "ddls": {"num_steps": 2},
    "rejection": {"burn_in": 100},
    "metropolis_hastings": {"chain_length": 2},
    "ddls_sweep": {"step_size": [0.01, 0.1], "num_steps": [2], "num_samples": 30},
}


def tiny_config() -> dict:
    return helpers.tiny_zoo_config("tiny_ebgan_pt")


@pytest.fixture(scope="module")
def tiny_entry(tmp_path_factory):
    """A tiny entry built by the real recipe code (2 steps, 40 samples).

    Built from an empty working folder without `run_dir`: a build writes only
    under its `out_dir` (checked by `test_build_writes_only_under_its_out_folder`).
    """
    root = tmp_path_factory.mktemp("zoo")
    config_dir = root / "config"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps(tiny_config()))
    out = root / "tiny_ebgan_pt"
    cwd = root / "cwd"
    cwd.mkdir()
    previous = os.getcwd()
    os.chdir(cwd)
    try:
        zoo.build(str(config_dir), out_dir=str(out), verbose=0, steps_per_epoch=2)
    finally:
        os.chdir(previous)
    return out


@pytest.fixture
def entry_copy(tiny_entry, tmp_path):
    path = tmp_path / "tiny_ebgan_pt"
    shutil.copytree(tiny_entry, path)
    return path


def test_list_entries_names_classes_and_weights():
    entries = {entry["name"]: entry for entry in zoo.list_entries()}
    assert set(TRAINED) | set(DECLARED) <= set(entries)
    for name in TRAINED:
        assert entries[name]["weights"] == "shipped", name
        assert entries[name]["fid"]["value"] > 0
    for name in DECLARED:
        assert entries[name]["weights"] == "absent" and entries[name]["fid"] is None
    assert entries["gan_mnist"]["class"] == "GAN"
    assert entries["began_fashion_mnist"]["image_shape"] == [32, 32, 1]


@pytest.mark.parametrize("name", TRAINED)
def test_describe_is_a_full_model_card(name):
    card = zoo.describe(name)
    for key in ("class", "paper", "dataset", "licence", "image_shape", "latent_dim"):
        assert card[key], key
    assert card["parameters"]["generator"] > 0 and card["parameters"]["discriminator"]
    assert set(card["files"]) >= {
        "config.json",
        "generator.weights.h5",
        "discriminator.weights.h5",
        "golden.npz",
        "README.md",
        "samples.png",
    }
    training = card["training"]
    assert training["steps"] > 0 and training["wall_time_s"] > 0
    assert training["backend"] in ("tensorflow", "jax", "torch")
    assert card["recipe_command"] == f"ebgan-keras zoo build {name}"
    assert "prior" in card["metrics"]
    for result in card["metrics"].values():
        protocol = result["protocol"]
        assert protocol["num_generated"] == 10000 and protocol["reference_split"]
        assert result["fid"] > 0 and np.isfinite(result["kid"])
    assert "![samples](samples.png)" in card["card"]
    assert card["recipe"]["name"] == name


@pytest.mark.parametrize("name", TRAINED)
def test_shipped_entry_loads_and_reproduces_its_golden_outputs(name):
    model = zoo.load(name)
    assert isinstance(model, ek.BaseGAN) and model.zoo_entry == name
    assert model.optimizer is not None  # compiled, ready to fine-tune
    errors = zoo.check_golden(model, name)
    assert errors["image_error"] <= 1e-3 and errors["energy_rtol"] <= 1e-3


@OFF_TENSORFLOW_SLOW
def test_golden_check_fails_on_other_weights(tiny_entry):
    model = zoo.load(tiny_entry)
    model.generator.weights[0].assign(model.generator.weights[0] * 0.5)
    with pytest.raises(zoo.IntegrityError, match="golden outputs"):
        zoo.check_golden(model, tiny_entry)


def test_unknown_name_lists_close_matches_and_all_names():
    with pytest.raises(ValueError) as info:
        zoo.load("ebgan_pt_mnst")
    message = str(info.value)
    assert "Did you mean 'ebgan_pt_mnist'" in message
    assert "began_celeba" in message and message.endswith("name='ebgan_pt_mnst'")


@pytest.mark.parametrize("name", DECLARED)
def test_declared_entry_fails_fast_and_says_what_to_do(name):
    start = time.perf_counter()
    with pytest.raises(zoo.WeightsUnavailableError) as info:
        zoo.load(name)
    assert time.perf_counter() - start < 1.0
    message = str(info.value)
    assert f"Zoo entry {name!r} exists" in message
    assert "GPU" in message and f"zoo build {name}" in message and "sha256=" in message
    # The recipe and the card are there, and the architecture builds.
    assert zoo.describe(name)["recipe"]["training"]["data"] == "celeb_a"
    assert zoo.create_model(name).image_shape == (64, 64, 3)


@OFF_TENSORFLOW_SLOW
def test_tiny_entry_from_the_recipe_loads_from_a_folder(tiny_entry):
    model = zoo.load(str(tiny_entry))
    zoo.check_golden(model, tiny_entry)
    metadata = json.loads((tiny_entry / "metadata.json").read_text())
    assert metadata["training"]["steps"] == 2
    assert metadata["metrics"]["prior"]["num_samples"] == 40
    for name, digest in metadata["files"].items():
        assert files.file_sha256(tiny_entry / name) == digest


@OFF_TENSORFLOW_SLOW
@pytest.mark.parametrize("part", ["generator", "discriminator"])
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_tampered_or_truncated_weights_are_refused(entry_copy, part, damage):
    path = entry_copy / f"{part}.weights.h5"
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    with pytest.raises(zoo.IntegrityError, match=f"{part}.weights.h5 does not match"):
        zoo.load(str(entry_copy))


@OFF_TENSORFLOW_SLOW
def test_missing_file_is_named(entry_copy):
    (entry_copy / "discriminator.weights.h5").unlink()
    with pytest.raises(FileNotFoundError, match="discriminator.weights.h5 is missing"):
        zoo.load(str(entry_copy))


@OFF_TENSORFLOW_SLOW
def test_every_listed_file_missing_in_turn_refuses_the_load(entry_copy):
    listed = json.loads((entry_copy / "metadata.json").read_text())["files"]
    assert {"golden.npz", "README.md", "samples.png"} <= set(listed)
    for name in listed:
        path = entry_copy / name
        content = path.read_bytes()
        path.unlink()
        with pytest.raises(FileNotFoundError, match=re.escape(name)):
            zoo.load(str(entry_copy))
        path.write_bytes(content)
    zoo.load(str(entry_copy))  # whole again


@OFF_TENSORFLOW_SLOW
def test_edited_model_card_is_refused(entry_copy):
    card = entry_copy / "README.md"
    card.write_text(card.read_text() + "\nFID 0.1 on every data set.\n")
    with pytest.raises(zoo.IntegrityError, match="README.md does not match"):
        zoo.load(str(entry_copy))


@OFF_TENSORFLOW_SLOW
def test_zoo_list_names_a_broken_entry_and_lists_the_others(
    tmp_path, monkeypatch, capsys
):
    root = tmp_path / "zoo"
    for name in ("ebgan_mnist", "gan_mnist"):
        (root / name).mkdir(parents=True)
        for file in ("config.json", "metadata.json"):
            shutil.copy(zoo.entry_dir(name) / file, root / name / file)
    (root / "ebgan_mnist" / "metadata.json").write_text('{"format_version": 1,')
    monkeypatch.setattr(zoo.entries, "_shipped_root", lambda: root)
    listed = {entry["name"]: entry for entry in zoo.list_entries()}
    assert listed["ebgan_mnist"]["weights"] == "broken"
    assert "metadata.json" in listed["ebgan_mnist"]["error"]
    assert listed["gan_mnist"]["weights"] == "shipped"
    assert cli.main(["zoo", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("ebgan_mnist") and "BROKEN" in line for line in lines)
    assert any(line.startswith("gan_mnist") and "FID" in line for line in lines)


@OFF_TENSORFLOW_SLOW
def test_tampered_config_is_refused(entry_copy):
    path = entry_copy / "config.json"
    config = json.loads(path.read_text())
    config["model"]["margin"] = 1.0
    path.write_text(json.dumps(config))
    with pytest.raises(zoo.IntegrityError, match="config.json does not match"):
        zoo.load(str(entry_copy))


def _edit_metadata(folder, **changes):
    path = folder / "metadata.json"
    metadata = json.loads(path.read_text())
    metadata.update(changes)
    path.write_text(json.dumps(metadata))


@OFF_TENSORFLOW_SLOW
def test_metadata_of_a_newer_format_is_refused(entry_copy):
    _edit_metadata(entry_copy, format_version=zoo.entries.FORMAT_VERSION + 1)
    with pytest.raises(zoo.EntryFormatError, match="upgrade ebgan-keras"):
        zoo.load(str(entry_copy))


@OFF_TENSORFLOW_SLOW
def test_entry_built_for_another_image_shape_is_refused(entry_copy):
    _edit_metadata(entry_copy, image_shape=[32, 32, 1])
    with pytest.raises(zoo.EntryFormatError, match="built for \\(32, 32, 1\\)"):
        zoo.load(str(entry_copy))


@OFF_TENSORFLOW_SLOW
def test_weights_of_another_architecture_are_a_clear_error(entry_copy, tmp_path):
    other = ek.networks.ebgan_mlp_generator(latent_dim=64, hidden_units=[16])
    path = tmp_path / "other.weights.h5"
    other.save_weights(path)
    with pytest.raises(zoo.EntryFormatError, match="cannot load generator weights"):
        zoo.load(
            str(entry_copy),
            weights={
                "generator": path,
                "discriminator": entry_copy / "discriminator.weights.h5",
            },
        )


@OFF_TENSORFLOW_SLOW
def test_absent_weights_then_weights_from_urls_with_sha256(entry_copy, tmp_path):
    source = tmp_path / "published"
    source.mkdir()
    for part in ("generator", "discriminator"):
        shutil.move(entry_copy / f"{part}.weights.h5", source / f"{part}.weights.h5")
    _edit_metadata(entry_copy, weights={"status": "absent", "reason": "too large"})
    with pytest.raises(zoo.WeightsUnavailableError, match="too large"):
        zoo.load(str(entry_copy))
    urls = {part: (source / f"{part}.weights.h5").as_uri() for part in zoo_parts()}
    hashes = {part: files.file_sha256(source / f"{part}.weights.h5") for part in urls}
    with pytest.raises(ValueError, match="needs its sha256"):
        zoo.load(str(entry_copy), weights=urls, cache_dir=tmp_path / "cache")
    model = zoo.load(
        str(entry_copy), weights=urls, sha256=hashes, cache_dir=tmp_path / "cache"
    )
    zoo.check_golden(model, entry_copy)
    cached = tmp_path / "cache" / entry_copy.name / "generator.weights.h5"
    assert files.file_sha256(cached) == hashes["generator"]


def zoo_parts():
    return ("generator", "discriminator")


@OFF_TENSORFLOW_SLOW
def test_failed_download_never_overwrites_the_cache(entry_copy, tmp_path):
    cache = tmp_path / "cache"
    good = entry_copy / "generator.weights.h5"
    cached = cache / entry_copy.name / "generator.weights.h5"
    cached.parent.mkdir(parents=True)
    shutil.copy(good, cached)
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(good.read_bytes()[:1000])
    _edit_metadata(
        entry_copy,
        weights={
            "status": "url",
            # A newer file is published (other sha256), but the download is bad.
            "generator": {"url": bad.as_uri(), "sha256": "0" * 64},
            "discriminator": {
                "url": (entry_copy / "discriminator.weights.h5").as_uri(),
                "sha256": files.file_sha256(entry_copy / "discriminator.weights.h5"),
            },
        },
    )
    with pytest.raises(zoo.IntegrityError, match="generator.weights.h5 does not match"):
        zoo.load(str(entry_copy), cache_dir=cache)
    assert cached.read_bytes() == good.read_bytes()
    assert sorted(p.name for p in cached.parent.iterdir()) == ["generator.weights.h5"]


@pytest.mark.parametrize(
    "name",
    [
        # One recipe by default; the others (a minute each) in CI's slow step.
        pytest.param(
            name,
            marks=(
                SLOW_OFF_TENSORFLOW_PARAM if name in RECIPES_ON_EVERY_BACKEND else SLOW
            ),
        )
        for name in TRAINED
    ],
)
def test_each_recipe_runs_end_to_end_shrunk(name, tmp_path):
    built_on = zoo.describe(name)["training"]["backend"]
    if keras.backend.backend() != built_on and name not in RECIPES_ON_EVERY_BACKEND:
        pytest.skip(f"runs on the backend that built the entry ({built_on})")
    metadata = zoo.build(
        name,
        out_dir=str(tmp_path / "entry"),
        run_dir=str(tmp_path / "run"),
        epochs=1,
        steps_per_epoch=2,
        data="mnist_subset",
        num_samples=30,
        reference="mnist_subset",
        num_reference=60,
        sampler_settings=SHRUNK_SAMPLERS,
        verbose=0,
    )
    assert metadata["training"]["steps"] == 2
    sweep = recipe.read_config(name)["evaluation"]["ddls_sweep"]
    if sweep:
        # The shrunk sweep keeps the recipe's temperature scales.
        scales = sweep.get("temperature_scale", [1.0])
        tags = [f"/x{s:g}" for s in scales] if scales != [1.0] else [""]
        keys = {f"{step}/2{tag}" for step in ("0.01", "0.1") for tag in tags}
        assert metadata["ddls_sweep"]["fid"].keys() == {"prior", *keys}
    assert set(metadata["metrics"]) == set(
        recipe.read_config(name)["evaluation"]["samplers"]
    )
    model = zoo.load(str(tmp_path / "entry"))
    zoo.check_golden(model, tmp_path / "entry")
    assert (tmp_path / "entry" / "README.md").read_text().startswith(f"# {name}")


@OFF_TENSORFLOW_SLOW
def test_build_writes_only_under_its_out_folder(tiny_entry):
    assert os.listdir(tiny_entry.parent / "cwd") == []
    assert sorted(os.listdir(tiny_entry / "run")) == [
        ".lock",
        "convergence.json",
        "eval.json",
        "history.json",
        "model.keras",
        "run_config.json",
        "train_info.json",
    ]


@OFF_TENSORFLOW_SLOW
def test_recipe_resumes_from_its_run_folder(tmp_path):
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    config = tiny_config()
    config["training"]["epochs"] = 2
    (config_dir / "config.json").write_text(json.dumps(config))
    run = tmp_path / "run"
    recipe.train(config, str(run), epochs=1, steps_per_epoch=2, verbose=0)
    info = json.loads((run / "train_info.json").read_text())
    assert info["steps_done"] == 2 and info["segments"] == 1
    # A second call with more epochs continues from the backup, not from zero.
    recipe.train(config, str(run), epochs=2, steps_per_epoch=2, verbose=0)
    info = json.loads((run / "train_info.json").read_text())
    assert info["steps_done"] == 4 and info["segments"] == 2
    history = json.loads((run / "history.json").read_text())
    assert len(history["d_loss"]) == 2


def test_cli_zoo_list_describe_and_sample(tmp_path, capsys):
    assert cli.main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "ebgan_pt_mnist" in out and "absent" in out and "FID" in out
    assert cli.main(["zoo", "describe", "began_celeba"]) == 0
    assert "No weights are shipped" in capsys.readouterr().out
    png = tmp_path / "s.png"
    assert cli.main(["sample", "ebgan_pt_mnist", "--num", "4", "--out", str(png)]) == 0
    assert png.stat().st_size > 0
    assert cli.main(["sample", "began_celeba", "--out", str(png)]) == 2
    assert "has no weights" in capsys.readouterr().err
    assert cli.main(["zoo", "describe", "nope"]) == 2
    assert "Unknown zoo entry" in capsys.readouterr().err
    assert cli.main(["zoo", "list", "--epochs", "2"]) == 2
    assert "--epochs is only for `zoo build`" in capsys.readouterr().err


def test_zoo_readme_table_is_up_to_date():
    readme = zoo.entries._shipped_root() / "README.md"
    assert zoo.markdown_table() in readme.read_text()


def test_card_calls_fid_changes_within_one_percent_noise():
    def result(fid):
        return {"fid": fid, "kid": 0.1, "seconds_per_1000": 1.0, "sampler": {}}

    prior = result(100.0) | {"protocol": {"num_generated": 10}}
    metadata = {
        "name": "an_entry",
        "image_shape": [28, 28, 1],
        "metrics": {
            "prior": prior,
            "ddls": result(90.0),  # -10%: helps
            "rejection": result(99.5),  # -0.5%: noise
            "metropolis_hastings": result(100.9),  # +0.9%: noise
            "truncation": result(102.0),  # +2%: hurts
        },
    }
    verdict = card._quality_lines(metadata)[-1]
    assert verdict == (
        "Improve FID over plain sampling by more than 1% here: ddls; make it "
        "worse: truncation; within 1% (no measurable change): rejection, "
        "metropolis_hastings."
    )


def test_best_sampler_is_named_only_beyond_the_noise_band():
    def metrics(**fids):
        return {name: {"fid": fid} for name, fid in fids.items()}

    best = zoo.entries.best_sampler
    assert zoo.entries.FID_NOISE == card.FID_NOISE == 0.01
    # -0.5% and -0.9%: noise, plain sampling is the best.
    assert best(metrics(prior=100.0, rejection=99.5, ddls=99.1)) == "prior"
    # -1.5% and -10%: both beat the noise; the lower FID wins.
    assert best(metrics(prior=100.0, rejection=98.5, ddls=90.0)) == "ddls"
    assert best(metrics(prior=100.0, truncation=102.0)) == "prior"
    assert best(metrics(ddls=9.0, rejection=8.0)) == "rejection"  # no prior
    assert best({}) is None
    # The shipped began_mnist: rejection 101.38 against plain 102.13 (-0.7%).
    listed = {entry["name"]: entry for entry in zoo.list_entries()}
    shipped = zoo.describe("began_mnist")["metrics"]
    prior = shipped["prior"]["fid"]
    assert 0 < prior - shipped["rejection"]["fid"] < 0.01 * prior
    assert listed["began_mnist"]["fid"] == {"sampler": "prior", "value": prior}
    # ebgan_mnist re-evaluated: DDLS at a held-out temperature scale (7.14)
    # beats rejection (11.31).
    assert listed["ebgan_mnist"]["fid"]["sampler"] == "ddls"
    row = next(
        line for line in zoo.markdown_table().splitlines() if "[began_mnist]" in line
    )
    assert f"| {prior:.2f} (none better than prior) |" in row
    assert cli.zoo._entry_line(listed["began_mnist"]).endswith(
        f"FID {prior:.2f} (prior: none better)"
    )


def test_shrinking_overrides_leave_a_recipe_without_a_ddls_sweep_without_one():
    # CI caught this: bigan_mnist's recipe has "ddls_sweep": null.
    evaluation = {
        "samplers": {"prior": {}, "ddls": {"num_steps": 10}},
        "ddls_sweep": None,
    }
    overrides = {"ddls": {"num_steps": 2}, "ddls_sweep": {"num_samples": 30}}
    shrunk = recipe._with_overrides(evaluation, overrides)
    assert shrunk["ddls_sweep"] is None
    assert shrunk["samplers"]["ddls"] == {"num_steps": 2}
    evaluation["ddls_sweep"] = {"step_size": [0.1], "num_samples": 1000}
    shrunk = recipe._with_overrides(evaluation, overrides)
    assert shrunk["ddls_sweep"] == {"step_size": [0.1], "num_samples": 30}
    assert evaluation["ddls_sweep"]["num_samples"] == 1000  # not mutated
