"""TFDS data sets (`tfds.builder` with `data_dir`) that fail fast offline."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ebgan_keras.data import _pipeline
from ebgan_keras.data.arrays import from_arrays

if TYPE_CHECKING:
    import tensorflow as tf

logger = logging.getLogger("ebgan_keras.data")

# TFDS downloads (and its own metadata) come from these hosts; if none answers
# within a few seconds, the machine is taken as offline instead of letting
# TFDS retry for minutes.
_PROBE_HOSTS = ("storage.googleapis.com", "www.tensorflow.org")
_PROBE_TIMEOUT_S = 3.0
# Data sets whose decoded images fit in this many bytes go through the
# in-memory array pipeline (fastest); larger ones stream.
_IN_MEMORY_BYTES = 1024**3


class DatasetUnavailableError(RuntimeError):
    """A data set is neither prepared locally nor downloadable from here."""


def default_data_dir() -> str:
    """The TFDS data folder used when `data_dir=None`.

    Returns:
        `$TFDS_DATA_DIR`, or `~/tensorflow_datasets`.

    Example:

    >>> from ebgan_keras.data import tfds_source
    >>> isinstance(tfds_source.default_data_dir(), str)
    True
    """
    return os.environ.get(
        "TFDS_DATA_DIR", str(Path("~/tensorflow_datasets").expanduser())
    )


def is_prepared(name: str, data_dir=None) -> bool:
    """Whether TFDS data set `name` is already prepared in `data_dir`.

    Looks for the folder first, so no TFDS import is paid when it is absent.

    Args:
        name: str. TFDS name, e.g. `"mnist"` or `"lsun/bedroom"`.
        data_dir: str or None. TFDS data folder. Defaults to
            `default_data_dir()`.

    Returns:
        True if `tfds.builder(name, data_dir=data_dir).is_prepared()`.

    Example:

    >>> from ebgan_keras.data import tfds_source
    >>> tfds_source.is_prepared("mnist", data_dir="/no/such/folder")
    False
    """
    root = Path(data_dir or default_data_dir())
    base = name.split(":")[0].split("/")[0]
    if not (root / base).is_dir():
        return False
    import tensorflow_datasets as tfds

    try:
        return bool(tfds.builder(name, data_dir=str(root)).is_prepared())
    except Exception:  # noqa: BLE001 - an unknown or broken builder: not prepared
        return False


def network_available(hosts=_PROBE_HOSTS, timeout: float = _PROBE_TIMEOUT_S) -> bool:
    """Whether any of `hosts` accepts a TCP connection on port 443.

    With an HTTP(S) proxy configured, direct connections say nothing, so this
    returns True and leaves the answer to the download itself.

    Args:
        hosts: tuple of str. Hosts to try.
        timeout: float. Seconds per host. Defaults to `3.0`.

    Returns:
        True if a host answered (or a proxy is set).

    Example:

    >>> from ebgan_keras.data import tfds_source
    >>> isinstance(tfds_source.network_available(timeout=1.0), bool)
    True
    """
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")):
        return True
    for host in hosts:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            return True
        except OSError:
            continue
    return False


def load_tfds(
    name: str,
    split: str,
    batch_size: int,
    spec: _pipeline.Preprocessing,
    data_dir=None,
    with_labels: bool = False,
    shuffle: bool = True,
    seed: int | None = None,
    drop_remainder: bool = True,
    download: bool = True,
    tried: list[str] | None = None,
) -> tf.data.Dataset:
    """Load TFDS data set `name` as a batched `[-1, 1]` pipeline.

    Used by `ek.data.load`; see there for the arguments. Raises
    `DatasetUnavailableError` within seconds when the data is not prepared in
    `data_dir` and cannot be downloaded.

    Args:
        name: str. TFDS name, e.g. `"cifar10"`, `"celeb_a"`, `"lsun/bedroom"`.
        split: str. TFDS split, e.g. `"train"` or `"train[:10%]"`.
        batch_size: int. Images per batch.
        spec: Preprocessing. Crop, resize, channels and flip.
        data_dir: str or None. TFDS data folder. Defaults to
            `default_data_dir()`.
        with_labels: bool. Yield `(images, labels)`. Defaults to `False`.
        shuffle: bool. Shuffle each epoch. Defaults to `True`.
        seed: int or None. Shuffle and flip seed. Defaults to `None`.
        drop_remainder: bool. Drop the last partial batch. Defaults to `True`.
        download: bool. Download and prepare the data if missing. Defaults to
            `True`.
        tried: list of str or None. What the caller already tried, for the
            error message. Defaults to `None`.

    Returns:
        A `tf.data.Dataset` of float32 NHWC images in `[-1, 1]` (or pairs).

    Example:

    >>> from ebgan_keras.data import tfds_source, _pipeline
    >>> ds = tfds_source.load_tfds(  # doctest: +SKIP
    ...     "cifar10", "train", 64, _pipeline.make_preprocessing())
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    tried = list(tried or [])
    data_dir = str(data_dir or default_data_dir())
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # noqa: BLE001 - tfds raises several types
        reason = f"{error.__class__.__name__}: {str(error).splitlines()[0]}"
        if tried:  # an ek.data source that could not be prepared either
            tried.append(f"TFDS builder {name!r}: {reason}")
            _raise_unavailable(name, tried)
        raise ValueError(
            f"'{name}' is neither a TFDS data set, an ek.data source nor an "
            f"existing folder of images ({reason}). Received: name={name!r}"
        ) from None
    if not builder.is_prepared():
        tried.append(f"TFDS data prepared in data_dir={data_dir!r}: not there")
        if not download:
            _raise_unavailable(name, tried, "download=False")
        if not network_available():
            tried.append(
                "TFDS download: no network (could not reach "
                f"{', '.join(_PROBE_HOSTS)} within {_PROBE_TIMEOUT_S:.0f} s)"
            )
            _raise_unavailable(name, tried)
        try:
            builder.download_and_prepare()
        except Exception as error:  # noqa: BLE001 - report what TFDS said
            tried.append(
                f"TFDS download_and_prepare: {error.__class__.__name__}: {error}"
            )
            _raise_unavailable(name, tried)

    features = builder.info.features
    image_key = _image_key(features, name)
    label_key = None
    if with_labels:
        label_key = _label_key(features, name)
    image_feature = features[image_key]
    shape = tuple(image_feature.shape)
    try:
        num_examples = builder.info.splits[split].num_examples
    except Exception as error:  # noqa: BLE001 - unknown or malformed split
        raise ValueError(
            f"Unknown split for TFDS data set '{name}'. Expected one of "
            f"{sorted(builder.info.splits)} (optionally sliced, e.g. "
            f"'train[:10%]'). Received: split={split!r} ({error})"
        ) from None

    if None not in shape and num_examples * int(np.prod(shape)) <= _IN_MEMORY_BYTES:
        # Small and fixed-size (MNIST, CIFAR): decode once, then index.
        arrays = builder.as_dataset(split=split, batch_size=-1, shuffle_files=False)
        arrays = tfds.as_numpy(arrays)
        return from_arrays(
            arrays[image_key],
            labels=arrays[label_key] if label_key else None,
            batch_size=batch_size,
            image_size=spec.image_size,
            crop=spec.crop,
            channels=spec.channels,
            shuffle=shuffle,
            seed=seed,
            flip=spec.flip,
            drop_remainder=drop_remainder,
        )

    shuffle_seed = _pipeline.shuffle_seed(seed)
    dataset = builder.as_dataset(
        split=split,
        shuffle_files=shuffle,
        read_config=tfds.ReadConfig(shuffle_seed=shuffle_seed),
    )
    channels = shape[-1] if shape[-1] is not None else 3
    out_channels = _pipeline.output_channels(channels, spec)
    decode_spec = _pipeline.Preprocessing(spec.image_size, spec.crop, spec.channels)

    def extract(example):
        image = tf.ensure_shape(example[image_key], (None, None, channels))
        image = _pipeline.spatial_transform(image, decode_spec)
        image = tf.cast(tf.round(image), tf.uint8)
        if spec.image_size is not None:
            image = tf.ensure_shape(image, (*spec.image_size, out_channels))
        elif isinstance(spec.crop, tuple):
            image = tf.ensure_shape(image, (*spec.crop, out_channels))
        if label_key:
            return image, tf.cast(example[label_key], tf.int32)
        return (image,)

    dataset = dataset.map(extract, num_parallel_calls=_pipeline.AUTOTUNE)
    fixed_hw = spec.image_size or (spec.crop if isinstance(spec.crop, tuple) else None)
    if fixed_hw is None and None not in shape[:2]:
        fixed_hw = _pipeline.output_hw(shape[0], shape[1], spec)[0]
    if fixed_hw is not None:
        image_bytes = num_examples * fixed_hw[0] * fixed_hw[1] * out_channels
        if image_bytes <= _pipeline.DEFAULT_CACHE_BYTES:
            dataset = dataset.cache()  # decoded, cropped, resized uint8
    if shuffle:
        dataset = dataset.shuffle(
            10_000, seed=shuffle_seed, reshuffle_each_iteration=True
        )
    return _pipeline.finish(
        dataset,
        _pipeline.Preprocessing(None, None, None, spec.flip),
        batch_size,
        seed,
        with_labels=label_key is not None,
        drop_remainder=drop_remainder,
    )


def _image_key(features, name: str) -> str:
    import tensorflow_datasets as tfds

    keys = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
    if not keys:
        raise ValueError(
            f"TFDS data set '{name}' has no image feature (features: "
            f"{list(features.keys())}). Received: name={name!r}"
        )
    return "image" if "image" in keys else keys[0]


def _label_key(features, name: str) -> str:
    import tensorflow_datasets as tfds

    keys = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
    if not keys:
        raise ValueError(
            f"TFDS data set '{name}' has no class label feature (features: "
            f"{list(features.keys())}). Received: with_labels=True"
        )
    return "label" if "label" in keys else keys[0]


def _raise_unavailable(name: str, tried: list[str], reason: str | None = None):
    steps = "\n".join(f"  {i + 1}. {step}" for i, step in enumerate(tried))
    extra = f" ({reason})" if reason else ""
    raise DatasetUnavailableError(
        f"Data set '{name}' is not available on this machine{extra}. Tried:\n"
        f"{steps}\n"
        "Supply the data in one of these ways:\n"
        f"  - prepare it with TFDS on a machine with internet "
        f"(tfds.builder({name!r}).download_and_prepare()) and pass "
        "data_dir=<that tensorflow_datasets folder>;\n"
        "  - put the images in a folder and use "
        "ek.data.from_directory(folder, image_size=...);\n"
        "  - load them yourself and use ek.data.from_arrays(x, labels)."
    )
