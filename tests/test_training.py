"""The one config schema, the builder and the training driver (run folders)."""

from __future__ import annotations

import errno
import glob
import json
import os
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

import ebgan_keras as ek
from ebgan_keras import files
from ebgan_keras.run import builder
from ebgan_keras.run import config as schema
from ebgan_keras.run import training

REPO = Path(__file__).resolve().parents[1]
#: File handling of the driver (locks, settings, torn or full disks) does not
#: depend on the backend: checked on one, to keep the suite's time down. The
#: resume tests run on all three.
file_handling = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="backend-independent file handling, checked on TensorFlow",
)


def tiny_config(**training_overrides) -> dict:
    """The built-in EBGAN-PT config with tiny networks on the shipped digits."""
    overrides = {
        "generator": {"kwargs": {"hidden_units": [32]}},
        "discriminator": {"kwargs": {"encoder_units": [32, 16]}},
        "training": {
            "data": "mnist_subset",
            "epochs": 3,
            "steps_per_epoch": 3,
            "batch_size": 16,
            **training_overrides,
        },
    }
    return schema.validate(schema.merge(schema.load_config("ebgan_pt"), overrides))


def state(model) -> list[np.ndarray]:
    """Every weight, optimizer slot and seed state of a model, as numpy."""
    variables = [*model.variables, *model.optimizer.variables]
    values = [keras.ops.convert_to_numpy(v) for v in variables]
    return [*values, keras.ops.convert_to_numpy(model.seed_generator.state)]


def assert_same_state(a, b) -> None:
    left, right = state(a), state(b)
    assert len(left) == len(right)
    for x, y in zip(left, right):
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    return training.train(tiny_config(), str(run), verbose=0)


# ----------------------------------------------------------------------
# Config schema and builder
# ----------------------------------------------------------------------
def test_every_shipped_and_builtin_config_follows_the_schema():
    paths = glob.glob(str(REPO / "zoo" / "*" / "config.json"))
    paths += glob.glob(str(REPO / "ebgan_keras" / "configs" / "*.json"))
    assert len(paths) >= 13
    for path in paths:
        config = schema.validate(json.loads(Path(path).read_text()), path)
        assert config["format_version"] == schema.FORMAT_VERSION
        assert config["class"] in builder.model_classes()
    assert schema.builtin_names() == [
        "began",
        "bigan",
        "bigbigan",
        "ebgan",
        "ebgan_pt",
        "gan",
        "gls_gan",
        "loss_sensitive_gan",
        "magan",
        "wgan_gp",
    ]


@pytest.mark.parametrize("name", ["wgan_gp", "loss_sensitive_gan", "gls_gan"])
def test_builtin_critic_configs_build_their_models(name):
    config = schema.load_config(name)
    config["generator"]["kwargs"]["hidden_units"] = [8]
    config["discriminator"]["kwargs"]["hidden_units"] = [8]
    model = builder.build_model(config, (8, 8, 1))
    assert type(model).__name__ == config["class"]
    assert isinstance(model, ek.CriticGAN)
    assert model.critic_steps == (5 if name == "wgan_gp" else 1)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            {"training": {"batch_size": "64"}},
            "`training.batch_size` must be a positive",
        ),
        ({"training": {"epochs": 0}}, "Received: training.epochs=0 (int)"),
        ({"training": {"epoch": 3}}, "unknown key `training.epoch`"),
        ({"image_shape": [28, 28]}, "`image_shape` must be null or [height"),
        ({"generator": {"builder": 3}}, "`generator` must be an object"),
        ({"format_version": 2}, "`format_version` must be the int 1"),
        ({"training": {"learning_rate": -1}}, "Received: training.learning_rate=-1"),
    ],
)
def test_config_errors_name_the_key_the_type_and_the_value(edit, message):
    config = schema.merge(schema.load_config("ebgan"), edit)
    with pytest.raises(schema.ConfigError) as error:
        schema.validate(config, "my.json")
    assert message in str(error.value) and str(error.value).startswith("my.json: ")


def test_load_config_takes_builtin_names_and_files_the_zoo_its_entries(tmp_path):
    from ebgan_keras import zoo

    assert schema.load_config("began")["class"] == "BEGAN"
    # Zoo entry names are the zoo's to resolve (the schema imports no zoo).
    assert zoo.find_config("ebgan_pt_mnist")["name"] == "ebgan_pt_mnist"
    assert zoo.find_config("began") == schema.load_config("began")
    with pytest.raises(schema.ConfigError, match="ek.zoo.find_config"):
        schema.load_config("ebgan_pt_mnist")
    path = REPO / "zoo" / "gan_mnist" / "config.json"
    assert schema.load_config(str(path))["class"] == "GAN"
    assert zoo.find_config(str(path))["class"] == "GAN"
    with pytest.raises(schema.ConfigError, match="Received: 'wgan'"):
        schema.load_config("wgan")
    with pytest.raises(schema.ConfigError, match="a zoo entry .* Received: 'wgan'"):
        zoo.find_config("wgan")
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(schema.ConfigError, match="must hold a JSON object"):
        schema.load_config(str(tmp_path / "bad.json"))


def test_builder_fills_the_image_shape_and_names_unknown_classes():
    config = schema.load_config("began")
    config["generator"]["kwargs"]["filters"] = 4
    config["discriminator"]["kwargs"]["filters"] = 4
    model = builder.build_model(config, (8, 8, 3))
    assert isinstance(model, ek.BEGAN) and model.image_shape == (8, 8, 3)
    config["class"] = "WGAN"
    with pytest.raises(schema.ConfigError, match="Received: class='WGAN'") as error:
        builder.build_model(config, (8, 8, 3))
    assert "EBGANPT" in str(error.value) and "GAN" in str(error.value)
    config = schema.load_config("ebgan")
    config["generator"]["builder"] = "unet"
    with pytest.raises(schema.ConfigError, match="ek.networks"):
        builder.build_model(config, (28, 28, 1))


@keras.saving.register_keras_serializable(package="ebgan_keras")
class SquaredHingeEBGAN(ek.EBGAN):
    """A model defined in one file (here: this test), with only its loss hooks."""

    def discriminator_loss(self, real, latents, training=True):
        fake = keras.ops.stop_gradient(self.generator(latents, training=training))
        energy_real, _ = self.compute_energy(real, training=training)
        energy_fake, _ = self.compute_energy(fake, training=training)
        hinge = keras.ops.relu(self.margin - energy_fake)
        loss = keras.ops.mean(energy_real) + keras.ops.mean(hinge**2)
        aux = {
            "energy_real": keras.ops.mean(energy_real),
            "energy_fake": keras.ops.mean(energy_fake),
        }
        return loss, aux


def test_a_new_model_file_trains_through_the_driver_with_only_a_config(tmp_path):
    config = schema.merge(tiny_config(epochs=1), {"class": "SquaredHingeEBGAN"})
    config["model"].pop("pt_weight")
    model = training.train(schema.validate(config), str(tmp_path / "run"), verbose=0)
    assert type(model) is SquaredHingeEBGAN
    reloaded = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert type(reloaded) is SquaredHingeEBGAN


# ----------------------------------------------------------------------
# Run folders: layout, lock, resume
# ----------------------------------------------------------------------
@file_handling
def test_run_folder_keeps_one_copy_of_the_model(uninterrupted, tmp_path):
    run = tmp_path / "run"
    training.train(tiny_config(epochs=1), str(run), verbose=0)
    names = sorted(os.listdir(run))
    assert names == [
        ".lock",
        "history.json",
        "model.keras",
        "run_config.json",
        "train_info.json",
    ]
    info = json.loads((run / "train_info.json").read_text())
    assert info["steps_done"] == 3 and info["epochs_done"] == 1


@file_handling
def test_a_second_writer_fails_at_once_naming_the_folder_and_holder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with files.RunFolderLock(run):
        with pytest.raises(files.RunFolderError) as error:
            training.train(tiny_config(), str(run), verbose=0)
    assert error.value.errno == errno.EBUSY
    assert str(run) in str(error.value) and f"process {os.getpid()}" in str(error.value)
    assert not (run / "run_config.json").exists()
    # A lock file left behind by a dead process does not block a rerun.
    (run / ".lock").write_text("process 999999 on elsewhere")
    training.train(tiny_config(epochs=1), str(run), verbose=0)


@file_handling
def test_other_settings_are_refused_only_once_a_run_has_started(tmp_path):
    run = tmp_path / "run"
    training.train(tiny_config(epochs=1), str(run), verbose=0)
    with pytest.raises(schema.ConfigError, match="training.seed: 0 -> 1"):
        training.train(tiny_config(seed=1), str(run), verbose=0)
    # A folder whose first attempt never trained an epoch is free to reuse.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    files.write_json(fresh / "run_config.json", tiny_config(seed=5))
    training.train(tiny_config(epochs=1), str(fresh), verbose=0)


class InterruptAt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt at one step, as Ctrl-C (or a kill) would."""

    def __init__(self, epoch: int, batch: int) -> None:
        super().__init__()
        self.epoch, self.batch = epoch, batch

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_to_the_uninterrupted_weights(uninterrupted, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        training.train(
            tiny_config(), str(run), verbose=0, callbacks=[InterruptAt(2, 1)]
        )
    assert (run / "backup" / training.CHECKPOINT_FILE).is_file()
    resumed = training.train(tiny_config(), str(run), verbose=0)
    assert_same_state(resumed, uninterrupted)
    history = json.loads((run / "history.json").read_text())
    assert len(history["d_loss"]) == 3
    assert not (run / "backup").exists()


def test_finished_run_trains_further_from_its_model(uninterrupted, tmp_path):
    run = tmp_path / "run"
    training.train(tiny_config(epochs=1), str(run), verbose=0)
    further = training.train(tiny_config(epochs=3), str(run), verbose=0)
    assert_same_state(further, uninterrupted)


def test_kill_during_a_checkpoint_save_keeps_the_last_good_one(
    uninterrupted, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    original = files._fsync_path
    calls = {"checkpoints": 0}

    def interrupted_fsync(path, directory=False):
        if not directory and path.endswith(".weights.h5"):
            calls["checkpoints"] += 1
            if calls["checkpoints"] == 2:  # the second epoch's checkpoint
                raise KeyboardInterrupt
        return original(path, directory)

    monkeypatch.setattr(files, "_fsync_path", interrupted_fsync)
    with pytest.raises(KeyboardInterrupt):
        training.train(tiny_config(), str(run), verbose=0)
    monkeypatch.setattr(files, "_fsync_path", original)
    backup = run / "backup"
    partials = [name for name in os.listdir(backup) if files.PARTIAL_MARKER in name]
    assert partials, "the half-written checkpoint is a temporary file"
    resumed = training.train(tiny_config(), str(run), verbose=0)
    assert_same_state(resumed, uninterrupted)


@file_handling
def test_torn_checkpoint_is_set_aside_with_a_warning(uninterrupted, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        training.train(
            tiny_config(), str(run), verbose=0, callbacks=[InterruptAt(1, 0)]
        )
    checkpoint = run / "backup" / training.CHECKPOINT_FILE
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: len(data) // 2])  # torn by a lying disk
    with pytest.warns(UserWarning, match="unreadable"):
        resumed = training.train(tiny_config(), str(run), verbose=0)
    assert len(list(run.glob(f"{training.CHECKPOINT_FILE}.unreadable-*"))) == 1
    assert_same_state(resumed, uninterrupted)  # trained again from the start


@file_handling
def test_full_disk_fails_cleanly_and_the_run_resumes_once_space_is_back(
    uninterrupted, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    real_usage = shutil.disk_usage
    saves = {"count": 0}

    def full_after_first_save(path):
        usage = real_usage(path)
        if os.fspath(path).endswith("backup"):
            saves["count"] += 1
            if saves["count"] >= 2:
                return usage._replace(free=1000)
        return usage

    monkeypatch.setattr(shutil, "disk_usage", full_after_first_save)
    with pytest.raises(files.RunFolderError) as error:
        training.train(tiny_config(), str(run), verbose=0)
    assert error.value.errno == errno.ENOSPC and "free" in str(error.value)
    monkeypatch.setattr(shutil, "disk_usage", real_usage)
    resumed = training.train(tiny_config(), str(run), verbose=0)
    assert_same_state(resumed, uninterrupted)


@file_handling
def test_unwritable_run_folder_fails_before_data_and_model(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    loaded = []
    monkeypatch.setattr(training, "load_training_data", loaded.append)
    with pytest.raises(files.RunFolderError) as error:
        training.train(tiny_config(), str(blocker / "run"), verbose=0)
    assert str(blocker / "run") in str(error.value) and not loaded


def test_atomic_write_leaves_the_old_file_on_a_failed_write(tmp_path):
    target = tmp_path / "x.json"
    files.write_json(target, {"a": 1})

    def fail(path):
        Path(path).write_text("half")
        raise OSError(errno.EROFS, "Read-only file system")

    with pytest.raises(files.RunFolderError, match="Read-only file system"):
        files.atomic_write(target, fail)
    assert json.loads(target.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["x.json"]


# ----------------------------------------------------------------------
# Models refuse what they cannot train
# ----------------------------------------------------------------------
def _tiny_model():
    return builder.build_model(tiny_config(), (28, 28, 1))


def test_ebgan_pt_refuses_batches_of_one_up_front():
    model = _tiny_model()
    model.compile()
    images = np.zeros((65, 28, 28, 1), "float32")
    with pytest.raises(ValueError, match="pulling-away term") as error:
        model.fit(images, batch_size=1, epochs=1, verbose=0)
    assert "Received: batch_size=1" in str(error.value)
    with pytest.raises(ValueError, match="last batch of 1") as error:
        model.fit(images, batch_size=64, epochs=1, verbose=0)
    assert "Received: x with 65 images, batch_size=64" in str(error.value)
    model.fit(images[:64], batch_size=32, epochs=1, verbose=0)  # pairs: fine


def test_a_stray_batch_of_one_gives_a_zero_pulling_away_term():
    codes = keras.ops.ones((1, 8))
    value = keras.ops.convert_to_numpy(ek.losses.pulling_away_term(codes))
    assert float(value) == 0.0


def test_tf_data_inputs_are_checked_like_numpy_on_their_first_batch():
    import tensorflow as tf

    model = _tiny_model()
    model.compile()
    pixels = np.full((8, 28, 28, 1), 200, "uint8")
    cases = (
        (pixels, "dtype uint8"),
        (pixels.astype("float32"), "values in [200, 200]"),
        (np.full((8, 28, 28, 1), np.nan, "float32"), "NaN"),
        (np.zeros((8, 32, 32, 1), "float32"), "shape (8, 32, 32, 1)"),
        (np.zeros((1, 28, 28, 1), "float32"), "Received: the first batch of `x`=1"),
    )
    for images, message in cases:
        dataset = tf.data.Dataset.from_tensor_slices(images).batch(8)
        with pytest.raises(ValueError) as error:
            model.fit(dataset, epochs=1, verbose=0)
        assert message in str(error.value), str(error.value)


@file_handling
def test_cli_batch_of_one_is_refused_and_leaves_the_folder_free(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="pulling-away term"):
        training.train(tiny_config(batch_size=1), str(run), verbose=0)
    training.train(tiny_config(epochs=1), str(run), verbose=0)  # another size
