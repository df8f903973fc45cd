"""What works without TensorFlow: the `PyDataset` pipeline, fit, zoo, CLI.

Every test here is marked `notf`: CI's second venv (`pip install -e
".[jax,torch]"`, no TensorFlow) runs exactly these, on JAX and PyTorch. With
TensorFlow installed they run too, asking for `pipeline="pydataset"` where
the default would be `tf.data`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import ebgan_keras as ek
from ebgan_keras import data as ek_data
from ebgan_keras import zoo
from ebgan_keras.data import batches
from tests import helpers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import accelerator_kit as kit  # noqa: E402

pytestmark = pytest.mark.notf
ROOT = Path(__file__).resolve().parents[1]
HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None
BACKEND = keras.backend.backend()
PY = "pydataset"
#: Where TensorFlow is installed (CI's first venv), the costlier PyDataset
#: tests run on the TensorFlow backend only: the TensorFlow-free venv runs
#: them on JAX and PyTorch.
tf_backend_only_with_tensorflow = pytest.mark.skipif(
    HAS_TENSORFLOW and BACKEND != "tensorflow",
    reason="with TensorFlow installed: on the TensorFlow backend only",
)


def _collect(dataset, n=None):
    out = []
    for i, batch in enumerate(dataset):
        if n is not None and i >= n:
            break
        out.append(batch)
    return out


def test_auto_pipeline_is_tf_data_only_where_tensorflow_is_installed():
    expected = "tf.data" if HAS_TENSORFLOW else PY
    assert batches.resolve_pipeline("auto") == expected
    with pytest.raises(ValueError, match="Received: pipeline='grain'"):
        batches.resolve_pipeline("grain")
    if not HAS_TENSORFLOW:
        assert isinstance(ek_data.load("mnist_subset", seed=0), ek_data.Batches)
        with pytest.raises(ImportError, match=r"\[tensorflow\]"):
            ek_data.load("mnist_subset", pipeline="tf.data")


def test_load_options_shapes_labels_and_range():
    ds = ek_data.load(
        "mnist_subset",
        split="test",
        batch_size=64,
        image_size=(14, 12),
        channels=3,
        with_labels=True,
        drop_remainder=False,
        seed=1,
        pipeline=PY,
    )
    assert isinstance(ds, keras.utils.PyDataset)
    spec = ds.element_spec
    assert spec[0].shape == (None, 14, 12, 3) and spec[1].shape == (None,)
    parts = _collect(ds)
    assert ds.cardinality() == len(parts) == 8  # 500 test images: 7 x 64 + 52
    assert [len(x) for x, _ in parts][-1] == 500 - 7 * 64
    images = np.concatenate([x for x, _ in parts])
    labels = np.concatenate([y for _, y in parts])
    assert images.dtype == np.float32 and labels.dtype == np.int32
    assert images.min() >= -1.0 and images.max() <= 1.0 and images.std() > 0.1
    # Gray to RGB: three equal channels; every test label once per epoch.
    np.testing.assert_array_equal(images[..., 0], images[..., 2])
    raw = ek_data.load_arrays("mnist_subset")["y_test"]
    np.testing.assert_array_equal(np.sort(labels), np.sort(raw))


def test_same_seed_same_batches_other_seed_or_epoch_other_batches():
    def first(seed, flip=True):
        ds = ek_data.load(
            "mnist_subset", batch_size=32, seed=seed, flip=flip, pipeline=PY
        )
        return ds, next(iter(ds))

    ds, a = first(3)
    _, b = first(3)
    _, c = first(4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # The next iteration is the next epoch: another order, like tf.data.
    assert not np.array_equal(next(iter(ds)), a)
    # Unshuffled, unflipped: the arrays in order, scaled by x / 127.5 - 1.
    ordered = ek_data.load("mnist_subset", batch_size=8, shuffle=False, pipeline=PY)
    raw = ek_data.load_arrays("mnist_subset")["x_train"][:8, ..., None]
    np.testing.assert_allclose(ordered[0], raw / 127.5 - 1.0, atol=1e-6)


def test_flip_mirrors_about_half_of_the_images():
    plain = ek_data.load("mnist_subset", batch_size=200, seed=2, pipeline=PY)
    flipped = ek_data.load(
        "mnist_subset", batch_size=200, seed=2, flip=True, pipeline=PY
    )
    a, b = plain[0], flipped[0]
    same = np.all(a == b, axis=(1, 2, 3))
    mirrored = np.all(a[:, :, ::-1] == b, axis=(1, 2, 3))
    assert np.all(same | mirrored) and 60 < mirrored.sum() < 140


def test_repeat_and_skip_address_the_endless_stream_by_index():
    ds = ek_data.load("mnist_subset", batch_size=500, seed=0, pipeline=PY)
    assert ds.cardinality() == 4
    stream = ds.repeat()
    assert stream.cardinality() == batches.INFINITE
    np.testing.assert_array_equal(stream.skip(6)[1], stream[7])
    # Batch 5 is batch 1 of epoch 1: the same images as epoch 0, reordered.
    epoch0 = np.concatenate([stream[i] for i in range(4)])
    epoch1 = np.concatenate([stream[i] for i in range(4, 8)])
    assert not np.array_equal(epoch0, epoch1)
    key = np.lexsort(epoch0.reshape(len(epoch0), -1).T)
    key1 = np.lexsort(epoch1.reshape(len(epoch1), -1).T)
    np.testing.assert_array_equal(epoch0[key], epoch1[key1])


def test_keras_iterates_the_same_batches_with_two_workers():
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    def read(workers):
        ds = ek_data.load(
            "mnist_subset",
            batch_size=64,
            seed=5,
            flip=True,
            workers=workers,
            pipeline=PY,
        )
        adapter = PyDatasetAdapter(ds.repeat().skip(3))
        adapter.on_epoch_begin()
        out = [x for _, x in zip(range(40), adapter.get_numpy_iterator())]
        adapter.on_epoch_end()
        return np.stack(out)

    np.testing.assert_array_equal(read(1), read(2))


def test_from_arrays_float_range_crop_and_errors():
    x = np.random.default_rng(0).uniform(0, 1, (20, 10, 12, 3)).astype("float32")
    ds = ek_data.from_arrays(
        x, value_range=(0, 1), crop=8, channels=1, batch_size=5, seed=0, pipeline=PY
    )
    assert ds.element_spec.shape == (5, 8, 8, 1) and len(ds) == 4
    with pytest.raises(ValueError, match="value_range"):
        ek_data.from_arrays(x, pipeline=PY)
    with pytest.raises(ValueError, match="Received: workers=0"):
        ek_data.from_arrays(x, value_range=(0, 1), workers=0, pipeline=PY)


def test_from_directory_labels_resize_and_seed(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cats", "dogs"):
        (tmp_path / cls).mkdir()
        for i in range(6):
            pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / cls / f"{i}.png")

    def load(seed):
        return ek_data.load(
            str(tmp_path),
            batch_size=4,
            image_size=16,
            with_labels=True,
            seed=seed,
            flip=True,
            pipeline=PY,
        )

    ds = load(0)
    assert ds.class_names == ["cats", "dogs"]
    x, y = ds[0]
    assert x.shape == (4, 16, 16, 3) and set(np.unique(y)) <= {0, 1}
    np.testing.assert_array_equal(x, load(0)[0][0])
    labels = np.concatenate([ds[i][1] for i in range(len(ds))])
    np.testing.assert_array_equal(np.sort(labels), [0] * 6 + [1] * 6)
    # Unresized, unshuffled: Pillow's decode exactly, in sorted file order.
    plain = ek_data.from_directory(tmp_path, batch_size=12, shuffle=False, pipeline=PY)
    first = np.asarray(Image.open(tmp_path / "cats" / "0.png"), np.float32)
    np.testing.assert_allclose(plain[0][0], first / 127.5 - 1.0, atol=1e-6)


def test_a_tfds_name_is_refused_in_one_line_naming_the_extra():
    with pytest.raises(ek_data.DatasetUnavailableError) as info:
        ek_data.load("cifar10", pipeline=PY)
    message = str(info.value)
    assert "\n" not in message and "ebgan-keras[tensorflow]" in message


@tf_backend_only_with_tensorflow
def test_fit_takes_the_pipeline_and_is_deterministic():
    x = np.random.default_rng(0).integers(0, 256, (48, 8, 8, 1), dtype=np.uint8)

    def weights():
        keras.utils.set_random_seed(0)
        model = helpers.tiny_model()
        model.compile(
            d_optimizer=keras.optimizers.Adam(1e-3),
            g_optimizer=keras.optimizers.Adam(1e-3),
        )
        ds = ek_data.from_arrays(x, batch_size=8, seed=1, flip=True, pipeline=PY)
        history = model.fit(ds.repeat(), epochs=2, steps_per_epoch=3, verbose=0)
        assert all(np.isfinite(v).all() for v in history.history.values())
        return [keras.ops.convert_to_numpy(w) for w in model.weights]

    for a, b in zip(weights(), weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@tf_backend_only_with_tensorflow
def test_training_run_resumes_exactly_on_the_pydataset(tmp_path, monkeypatch):
    from ebgan_keras.run import config as run_config
    from ebgan_keras.run import training

    monkeypatch.setattr(batches, "tensorflow_available", lambda: False)
    config = training.resolve_config(
        run_config.load_config("ebgan_pt"),
        epochs=2,
        steps_per_epoch=2,
        data="mnist_subset",
        batch_size=16,
        seed=4,
    )
    once = training.train(config, str(tmp_path / "once"), verbose=0)
    first = dict(config, training=dict(config["training"], epochs=1))
    training.train(first, str(tmp_path / "twice"), verbose=0)
    twice = training.train(config, str(tmp_path / "twice"), verbose=0)
    for a, b in zip(once.weights, twice.weights, strict=True):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
        )


def test_zoo_entry_loads_and_reproduces_its_golden_outputs():
    model = zoo.load("ebgan_pt_mnist")
    errors = zoo.check_golden(model, "ebgan_pt_mnist")
    assert errors["image_error"] <= 1e-3 and errors["energy_rtol"] <= 1e-3


def test_export_and_tf_distribute_say_they_need_tensorflow(monkeypatch, capsys):
    from ebgan_keras import cli
    from ebgan_keras.run import distribute
    from ebgan_keras.run import export as exporting

    monkeypatch.setattr(exporting, "tensorflow_available", lambda: False)
    code = cli.main(["export", "no_such_model.keras", "out_path"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "ebgan-keras[tensorflow]" in err
    with pytest.raises(ImportError, match=r"needs TensorFlow"):
        ek.export(helpers.tiny_model(), "never_written")
    if not HAS_TENSORFLOW:
        with pytest.raises(distribute.DistributeError, match=r"\[tensorflow\]"):
            distribute.check_mode("mirrored")


def _cli(*args, cwd):
    # One OpenMP thread: PyTorch's threads wait on each other on a shared CPU.
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    done = subprocess.run(
        [sys.executable, "-m", "ebgan_keras", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.skipif(HAS_TENSORFLOW, reason="the CLI without TensorFlow: CI's venv")
def test_cli_train_sample_eval(tmp_path):
    out = _cli(
        "train", "ebgan_pt", "--data", "mnist_subset", "--epochs", "1",
        "--steps-per-epoch", "4", "--out", "run", cwd=tmp_path,
    )  # fmt: skip
    assert (tmp_path / "run" / "model.keras").is_file(), out
    _cli("sample", "ebgan_pt_mnist", "--sampler", "ddls", "--num", "16",
         "--out", "s.png", cwd=tmp_path)  # fmt: skip
    assert (tmp_path / "s.png").stat().st_size > 0
    out = _cli("eval", "ebgan_pt_mnist", "--num", "500", "--reference",
               "mnist_subset", cwd=tmp_path)  # fmt: skip
    assert "fid" in out.lower()


@pytest.mark.skipif(
    HAS_TENSORFLOW or BACKEND != "jax",
    reason="the TensorFlow-free venv's (the kit runs both backends itself)",
)
def test_accelerator_kit_shrunk_cpu_run(tmp_path):
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "accelerator_kit.py"), "run",
         "--shrink", "--out", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "accelerator_kit.json").read_text())
    assert report["shrink"] is True and (tmp_path / "accelerator_kit.log").is_file()
    for section in ("parity", "samplers", "throughput", "zoo"):
        assert report[section], section
    assert all(row["ok"] for row in report["parity"]), report["parity"]
    assert {row["model"] for row in report["parity"]} >= set(kit.PARITY_CLASSES)
    assert {row["backend"] for row in report["throughput"]} == {"jax", "torch"}
    assert not report["errors"], report["errors"]


def test_accelerator_kit_refuses_an_oversized_tree(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(kit, "LIMIT_BYTES", 1024)
    code = kit.main(["size", "--carry", ""])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "over the device's 64 MiB" in err
