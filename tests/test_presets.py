"""Presets in the KerasHub manner: `from_preset`, `presets`, `save_to_preset`."""

from __future__ import annotations

import http.server
import json
import re
import shutil
import threading

import keras
import numpy as np
import pytest

import ebgan_keras as ek
from ebgan_keras import files
from ebgan_keras import zoo
from ebgan_keras.run import builder
from ebgan_keras.run.config import ConfigError
from ebgan_keras.run.config import validate
from ebgan_keras.utils import prior_latents
from ebgan_keras.zoo import presets
from ebgan_keras.zoo import stages
from tests import helpers

#: One shipped entry of every model class that has one.
ENTRY_OF_CLASS = {
    ek.EBGANPT: "ebgan_pt_mnist",
    ek.BiGAN: "bigan_mnist",
    ek.EBGAN: "ebgan_mnist",
    ek.BEGAN: "began_mnist",
    ek.MAGAN: "magan_mnist",
    ek.GAN: "gan_mnist",
    ek.WGANGP: "wgan_gp_mnist",
    ek.LossSensitiveGAN: "loss_sensitive_gan_mnist",
}
#: Loaded on every backend; the others on TensorFlow (elsewhere --run-slow):
#: `from_preset` is one inherited method, these two cover two and three networks.
EVERY_BACKEND = (ek.EBGANPT, ek.BiGAN)
#: `pytest.param` takes no empty mark.
SLOW_OFF_TENSORFLOW = (
    () if keras.backend.backend() == "tensorflow" else pytest.mark.slow
)


def _tiny_bigan_config(name: str) -> dict:
    config = stages.read_config("bigan_mnist")
    config["name"] = name
    config["generator"]["kwargs"]["hidden_units"] = [16]
    config["discriminator"]["kwargs"].update(
        image_units=[16], latent_units=[8], joint_units=[16]
    )
    config["encoder"]["kwargs"]["hidden_units"] = [16]
    return config


def _outputs(model) -> tuple[np.ndarray, np.ndarray]:
    latents = prior_latents(model.latent_distribution, 6, model.latent_dim, 7)
    images = model.generate(latents)
    return images, model.energy(images)


def _assert_same_outputs(model, expected) -> None:
    images, energies = _outputs(model)
    np.testing.assert_allclose(images, expected[0], atol=1e-6)
    np.testing.assert_allclose(energies, expected[1], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A freshly built tiny EBGANPT saved with `save_to_preset`, its outputs."""
    config = validate(helpers.tiny_zoo_config("tiny_preset"))
    model = builder.build_model(config)
    folder = tmp_path_factory.mktemp("presets") / "tiny_preset"
    model.save_to_preset(folder)
    return folder, _outputs(model)


@pytest.fixture
def saved_copy(saved, tmp_path):
    folder = tmp_path / "tiny_preset"
    shutil.copytree(saved[0], folder)
    return folder


# ----------------------------------------------------------------------
# Shipped presets by name
# ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "cls",
    [
        pytest.param(
            cls,
            id=cls.__name__,
            marks=() if cls in EVERY_BACKEND else SLOW_OFF_TENSORFLOW,
        )
        for cls in ENTRY_OF_CLASS
    ],
)
def test_from_preset_by_name_gives_the_entry_golden_outputs(cls):
    name = ENTRY_OF_CLASS[cls]
    model = cls.from_preset(name)
    assert type(model) is cls and model.zoo_entry == name
    assert model.optimizer is not None  # compiled, ready to fine-tune
    errors = zoo.check_golden(model, name)
    assert errors["image_error"] <= 1e-3 and errors["energy_rtol"] <= 1e-3
    assert model.run_config["class"] == cls.__name__


def test_a_preset_of_another_class_is_refused_by_name():
    with pytest.raises(ValueError) as error:
        ek.EBGANPT.from_preset("began_mnist")
    message = str(error.value)
    assert "'began_mnist' is of class BEGAN, not EBGANPT" in message
    assert "ek.BEGAN.from_preset('began_mnist')" in message
    assert "ebgan_pt_mnist" in message  # EBGANPT's own presets are listed
    # A parent class's preset is another class's too.
    with pytest.raises(ValueError, match="is of class LossSensitiveGAN, not GLSGAN"):
        ek.GLSGAN.from_preset("loss_sensitive_gan_mnist")
    with pytest.raises(ValueError, match="Did you mean 'ebgan_pt_mnist'"):
        ek.EBGANPT.from_preset("ebgan_pt_mnst")


def test_a_subclass_preset_loads_through_its_parent_class():
    # KerasHub's rule: `Backbone.from_preset` loads any backbone's preset.
    model = ek.EBGAN.from_preset("magan_mnist", load_weights=False)
    assert type(model) is ek.MAGAN
    assert type(ek.BaseGAN.from_preset("gan_mnist", load_weights=False)) is ek.GAN


def test_presets_lists_exactly_the_entries_of_the_class():
    assert set(ek.EBGANPT.presets) == {
        "ebgan_pt_mnist",
        "ebgan_pt_fashion_mnist",
        "ebgan_pt_celeba",
    }
    assert set(ek.GAN.presets) == {"gan_mnist", "gan_fashion_mnist", "gan_began_mnist"}
    assert set(ek.BiGAN.presets) == {"bigan_mnist", "bigbigan_mnist"}
    assert set(ek.BEGAN.presets) == {
        "began_mnist",
        "began_fashion_mnist",
        "began_celeba",
    }
    assert ek.GLSGAN.presets == {}
    # Subclasses' presets are their parents' (EBGANPT and MAGAN are EBGANs).
    assert set(ek.EBGAN.presets) == {"ebgan_mnist", "magan_mnist"} | set(
        ek.EBGANPT.presets
    )
    listed = {entry["name"] for entry in zoo.list_entries()}
    assert set(ek.BaseGAN.presets) == listed
    row = ek.EBGANPT.presets["ebgan_pt_mnist"]
    assert row["class"] == "EBGANPT" and row["weights"] == "shipped"
    assert ek.EBGANPT.presets["ebgan_pt_celeba"]["weights"] == "absent"


def test_a_declared_preset_builds_without_weights_and_says_how_to_get_them():
    model = ek.EBGANPT.from_preset("ebgan_pt_celeba", load_weights=False)
    assert model.image_shape == (64, 64, 3)
    with pytest.raises(zoo.WeightsUnavailableError, match="has no weights"):
        ek.EBGANPT.from_preset("ebgan_pt_celeba")


# ----------------------------------------------------------------------
# save_to_preset, then load by folder
# ----------------------------------------------------------------------
def test_save_to_preset_writes_a_zoo_entry_with_registered_name(saved):
    folder, _ = saved
    config = json.loads((folder / "config.json").read_text())
    assert config["registered_name"] == "ebgan_keras>EBGANPT"
    assert config["class"] == "EBGANPT" and config["name"] == "tiny_preset"
    assert keras.saving.get_registered_object(config["registered_name"]) is ek.EBGANPT
    metadata = json.loads((folder / "metadata.json").read_text())
    assert set(metadata["files"]) == {
        "config.json",
        "generator.weights.h5",
        "discriminator.weights.h5",
        "golden.npz",
        "README.md",
    }
    for name, digest in metadata["files"].items():
        assert files.file_sha256(folder / name) == digest, name
    assert metadata["saved"]["backend"] == keras.backend.backend()
    assert metadata["parameters"]["generator"] > 0
    assert zoo.describe(folder)["class"] == "EBGANPT"


def test_saved_preset_round_trips_through_from_preset_and_zoo_load(saved):
    folder, expected = saved
    for model in (ek.EBGANPT.from_preset(folder), zoo.load(folder)):
        assert type(model) is ek.EBGANPT and model.zoo_entry == str(folder)
        _assert_same_outputs(model, expected)
        zoo.check_golden(model, folder)
    # A loaded preset saves again, to the same outputs.
    again = folder.parent / "again"
    ek.BaseGAN.from_preset(str(folder)).save_to_preset(again)
    _assert_same_outputs(ek.EBGANPT.from_preset(again), expected)


def test_bigan_preset_round_trips_its_three_networks(tmp_path):
    model = builder.build_model(validate(_tiny_bigan_config("tiny_bigan")))
    expected = _outputs(model)
    latents = model.encode(expected[0])
    model.save_to_preset(tmp_path / "tiny_bigan")
    files = json.loads((tmp_path / "tiny_bigan" / "metadata.json").read_text())["files"]
    assert "encoder.weights.h5" in files
    loaded = ek.BiGAN.from_preset(tmp_path / "tiny_bigan")
    _assert_same_outputs(loaded, expected)
    np.testing.assert_allclose(loaded.encode(expected[0]), latents, atol=1e-6)


@pytest.mark.parametrize(
    "name", ["generator.weights.h5", "discriminator.weights.h5", "config.json"]
)
def test_a_tampered_file_of_a_saved_preset_is_refused(saved_copy, name):
    path = saved_copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    for load in (ek.EBGANPT.from_preset, zoo.load):
        with pytest.raises(zoo.IntegrityError, match=f"{name} does not match"):
            load(saved_copy)


def test_a_saved_preset_of_another_class_is_refused(saved):
    with pytest.raises(ValueError, match="is of class EBGANPT, not BEGAN"):
        ek.BEGAN.from_preset(saved[0])


def test_load_weights_false_gives_a_fresh_model_of_the_same_config(saved):
    folder, expected = saved
    model = ek.EBGANPT.from_preset(folder, load_weights=False)
    trained = ek.EBGANPT.from_preset(folder)
    assert model.run_config == trained.run_config
    assert [w.shape for w in model.weights] == [w.shape for w in trained.weights]
    images, _ = _outputs(model)
    assert images.shape == expected[0].shape
    assert np.max(np.abs(images - expected[0])) > 1e-2  # not the saved weights
    assert model.optimizer is not None


def test_kwargs_override_the_preset_settings_and_keep_the_weights(saved, tmp_path):
    folder, expected = saved
    model = ek.EBGANPT.from_preset(folder, pt_weight=0.5, seed=3)
    assert model.pt_weight == 0.5 and model.seed == 3
    _assert_same_outputs(model, expected)
    assert model.run_config["model"]["pt_weight"] == 0.5
    assert model.run_config["training"]["seed"] == 3
    model.save_to_preset(tmp_path / "changed")
    assert ek.EBGANPT.from_preset(tmp_path / "changed").pt_weight == 0.5
    fresh = ek.EBGANPT.from_preset(folder, load_weights=False, pt_weight=0.25)
    assert fresh.pt_weight == 0.25
    with pytest.raises(
        ConfigError,
        match=re.escape("Unrecognized keyword arguments passed to EBGANPT: {'nope'"),
    ):
        ek.EBGANPT.from_preset(folder, nope=1)


def test_save_to_preset_needs_a_run_config_and_spares_the_shipped_zoo(tmp_path):
    with pytest.raises(ValueError, match="this EBGANPT has none"):
        helpers.tiny_model().save_to_preset(tmp_path / "hand_built")
    shipped = zoo.entry_dir("ebgan_pt_mnist")
    before = {p.name: p.read_bytes() for p in shipped.iterdir() if p.is_file()}
    model = ek.EBGANPT.from_preset("ebgan_pt_mnist", load_weights=False)
    with pytest.raises(ValueError, match="must not be a folder of the shipped zoo"):
        model.save_to_preset(shipped)
    assert {p.name: p.read_bytes() for p in shipped.iterdir() if p.is_file()} == before


def test_registered_name_must_name_the_class():
    config = helpers.tiny_zoo_config("x")
    assert "registered_name" not in validate(config)  # older entries lack it
    config["registered_name"] = "ebgan_keras>BEGAN"
    with pytest.raises(ConfigError, match="'ebgan_keras>EBGANPT'"):
        validate(config)


# ----------------------------------------------------------------------
# From a URL
# ----------------------------------------------------------------------
@pytest.fixture
def server(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving `tmp_path / "www"`; its requests."""
    root = tmp_path / "www"
    root.mkdir()
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    try:
        yield root, f"http://127.0.0.1:{httpd.server_port}", requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_preset_from_a_url_is_checked_and_cached(saved, server):
    folder, expected = saved
    root, base, requests = server
    shutil.copytree(folder, root / "presets" / "tiny_preset")
    digest = presets.preset_sha256(folder)
    url = f"{base}/presets/tiny_preset#sha256={digest}"
    model = ek.EBGANPT.from_preset(url)
    _assert_same_outputs(model, expected)
    listed = json.loads((folder / "metadata.json").read_text())["files"]
    assert sorted(requests) == sorted(
        f"/presets/tiny_preset/{name}" for name in [*listed, "metadata.json"]
    )
    cached = presets._cache_root() / digest[:16] / "tiny_preset"
    assert model.zoo_entry == str(cached)
    zoo.check_golden(model, cached)
    requests.clear()
    _assert_same_outputs(ek.EBGANPT.from_preset(url), expected)
    assert requests == []  # every file from the cache, checked again
    with pytest.raises(ValueError, match="is of class EBGANPT, not GAN"):
        ek.GAN.from_preset(url)


def test_a_url_preset_needs_the_right_sha256(saved, server):
    folder, _ = saved
    root, base, requests = server
    shutil.copytree(folder, root / "tiny_preset")
    with pytest.raises(ValueError, match="must end with '#sha256='"):
        ek.EBGANPT.from_preset(f"{base}/tiny_preset")
    with pytest.raises(ValueError, match="must start with https or http"):
        ek.EBGANPT.from_preset(f"ftp://127.0.0.1/tiny_preset#sha256={'0' * 64}")
    wrong = "0" * 64
    with pytest.raises(zoo.IntegrityError, match="metadata.json does not match"):
        ek.EBGANPT.from_preset(f"{base}/tiny_preset#sha256={wrong}")
    assert not (
        presets._cache_root() / wrong[:16] / "tiny_preset" / "metadata.json"
    ).exists()
    with pytest.raises(OSError, match="cannot download metadata.json"):
        ek.EBGANPT.from_preset(f"{base}/missing#sha256={wrong}")
    # A weights file changed on the server is refused against metadata.json.
    weights = root / "tiny_preset" / "generator.weights.h5"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    url = f"{base}/tiny_preset#sha256={presets.preset_sha256(folder)}"
    with pytest.raises(zoo.IntegrityError, match="generator.weights.h5 does not match"):
        ek.EBGANPT.from_preset(url)
    # Its architecture alone needs only config.json.
    assert ek.EBGANPT.from_preset(url, load_weights=False).image_shape == (28, 28, 1)
