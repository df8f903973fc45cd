"""Shared preprocessing and `tf.data` plumbing of `ebgan_keras.data`.

Every source (arrays, image folders, TFDS, the offline caches) ends in the
same two steps written here once: per-image spatial work (centre crop, resize,
channel conversion) and per-batch work (scaling to `[-1, 1]`, seeded random
horizontal flip), then batching and prefetching with `tf.data.AUTOTUNE`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ebgan_keras.utils import check_positive_int

if TYPE_CHECKING:
    import tensorflow as tf

# TensorFlow is imported where a pipeline is built, not here: the package
# is imported under JAX and PyTorch too (see `ebgan_keras/__init__.py`).
# `tf.data.AUTOTUNE` is the constant -1 (a test checks that it still is).
AUTOTUNE = -1

# Images (as uint8 after decoding) up to this many bytes are cached in memory.
DEFAULT_CACHE_BYTES = 2 * 1024**3


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """What to do to every image; built by `make_preprocessing`.

    `image_size` and `crop` are `(height, width)` tuples (or `None`); `crop`
    may also be `"center"` (largest central square). `channels` is `None`
    (keep), 1 or 3.
    """

    image_size: tuple[int, int] | None = None
    crop: tuple[int, int] | str | None = None
    channels: int | None = None
    flip: bool = False

    @property
    def spatial(self) -> bool:
        return self.image_size is not None or self.crop is not None


def _pair(value, name: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
        )
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValueError(
            f"`{name}` must be a positive int or a (height, width) pair of "
            f"positive ints. Received: {name}={value!r}"
        )
    if min(pair) <= 0:
        raise ValueError(f"`{name}` must be positive. Received: {name}={value!r}")
    return pair


def make_preprocessing(
    image_size=None, crop=None, channels=None, flip: bool = False
) -> Preprocessing:
    """Check the user's preprocessing arguments and bundle them."""
    size = _pair(image_size, "image_size")
    if crop is None or crop == "center":
        crop_value = crop
    elif isinstance(crop, str):
        raise ValueError(
            "`crop` must be None, 'center' (largest central square), an int "
            f"(central square of that side) or a (height, width) pair. "
            f"Received: crop={crop!r}"
        )
    else:
        crop_value = _pair(crop, "crop")
    if channels not in (None, 1, 3):
        raise ValueError(
            f"`channels` must be None (keep), 1 (grayscale) or 3 (RGB). "
            f"Received: channels={channels!r}"
        )
    if not isinstance(flip, (bool, np.bool_)):
        raise ValueError(f"`flip` must be a bool. Received: flip={flip!r}")
    return Preprocessing(size, crop_value, channels, bool(flip))


def check_batch_size(batch_size) -> int:
    """Return `batch_size` as an int, or raise naming the bad value."""
    return check_positive_int(batch_size, "batch_size")


def check_seed(seed) -> int | None:
    """Return `seed` as an int (or None), or raise naming the bad value."""
    if seed is None:
        return None
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"`seed` must be an int or None. Received: seed={seed!r}")
    return int(seed)


def output_hw(
    height: int, width: int, spec: Preprocessing
) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """Static `(height, width)` after crop and resize, and the crop size used.

    Raises if the crop does not fit into an image of `height x width`.
    """
    crop_hw = None
    if spec.crop == "center":
        side = min(height, width)
        crop_hw = (side, side)
    elif spec.crop is not None:
        crop_hw = spec.crop
        if crop_hw[0] > height or crop_hw[1] > width:
            raise ValueError(
                f"`crop` {crop_hw} is larger than the images ({height}, {width}). "
                f"Received: crop={spec.crop!r}"
            )
    hw = crop_hw or (height, width)
    if spec.image_size is not None:
        hw = spec.image_size
    return hw, crop_hw


def output_channels(source_channels: int, spec: Preprocessing) -> int:
    """Channels after conversion."""
    return spec.channels if spec.channels is not None else source_channels


def spatial_transform(images: tf.Tensor, spec: Preprocessing) -> tf.Tensor:
    """Crop, resize and convert channels of one image (HWC) or a batch (NHWC).

    Works on values in `[0, 255]`; returns float32 in `[0, 255]`.
    """
    import tensorflow as tf

    x = tf.cast(images, tf.float32)
    if spec.crop is not None:
        shape = tf.shape(x)
        height, width = shape[-3], shape[-2]
        if spec.crop == "center":
            crop_h = crop_w = tf.minimum(height, width)
        else:
            crop_h, crop_w = spec.crop
            tf.debugging.assert_less_equal(
                tf.stack([crop_h, crop_w]),
                tf.stack([height, width]),
                message=f"`crop` {spec.crop} is larger than an image",
            )
        top = (height - crop_h) // 2
        left = (width - crop_w) // 2
        x = x[..., top : top + crop_h, left : left + crop_w, :]
    if spec.image_size is not None:
        x = tf.image.resize(x, spec.image_size, method="bilinear", antialias=True)
        x = tf.clip_by_value(x, 0.0, 255.0)
    return convert_channels(x, spec.channels)


def convert_channels(x: tf.Tensor, channels: int | None) -> tf.Tensor:
    """Grayscale/RGB conversion; drops an alpha channel when converting."""
    import tensorflow as tf

    if channels is None:
        return x
    source = x.shape[-1]
    if source is None:
        raise ValueError("The number of image channels must be known statically.")
    if source == channels:
        return x
    if source in (2, 4):  # gray+alpha or RGBA: drop alpha first
        x = x[..., : source - 1]
        source -= 1
        if source == channels:
            return x
    if source == 1 and channels == 3:
        return tf.image.grayscale_to_rgb(x)
    if source == 3 and channels == 1:
        return tf.image.rgb_to_grayscale(x)
    raise ValueError(
        f"Cannot convert images with {source} channels to {channels}. "
        f"Received: channels={channels!r}"
    )


def batch_transform(images: tf.Tensor, spec: Preprocessing, flip_seed=None):
    """Scale a batch from `[0, 255]` to float32 `[-1, 1]` and maybe flip it."""
    import tensorflow as tf

    x = tf.cast(images, tf.float32) / 127.5 - 1.0
    if spec.flip:
        coins = tf.random.stateless_uniform(tf.shape(x)[:1], seed=flip_seed)
        x = tf.where(coins[:, None, None, None] < 0.5, tf.reverse(x, axis=[2]), x)
    return x


def finish(
    dataset: tf.data.Dataset,
    spec: Preprocessing,
    batch_size: int,
    seed: int | None,
    with_labels: bool,
    drop_remainder: bool,
    batch_fn=None,
) -> tf.data.Dataset:
    """Batch, scale to `[-1, 1]`, flip, and prefetch a dataset of examples.

    `dataset` yields `(image,)` or `(image, label)` with image values in
    `[0, 255]`, already shuffled. With `batch_fn` given, `dataset` already
    yields batches and `batch_fn` is applied first (to gather, crop, resize).
    """
    import tensorflow as tf

    if batch_fn is None:
        dataset = dataset.batch(
            batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE
        )
    else:
        dataset = dataset.map(batch_fn, num_parallel_calls=AUTOTUNE)

    if spec.flip:
        # One stateless seed per batch from a seeded stream that changes each
        # epoch, so flips are reproducible for a seed yet differ per epoch.
        flip_seeds = tf.data.Dataset.random(
            seed=_derived_seed(seed, 1), rerandomize_each_iteration=True
        ).batch(2)
        dataset = tf.data.Dataset.zip((dataset, flip_seeds))

        def scale(example, flip_seed):
            image = batch_transform(example[0], spec, flip_seed)
            return (image, example[1]) if with_labels else image
    else:

        def scale(*example):
            # tf.data passes the parts of a tuple element as arguments.
            image = batch_transform(example[0], spec)
            return (image, example[1]) if with_labels else image

    dataset = dataset.map(scale, num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def _derived_seed(seed: int | None, offset: int) -> int | None:
    return None if seed is None else (seed * 7919 + offset) % (2**31 - 1)


def shuffle_seed(seed: int | None) -> int | None:
    """The seed used for shuffling (kept apart from the flip seed)."""
    return _derived_seed(seed, 0)


_SPLIT_PATTERN = re.compile(
    r"^(?P<name>[A-Za-z0-9_]+)(\[(?P<start>-?\d+%?)?:(?P<end>-?\d+%?)?\])?$"
)


def select_split(arrays: dict[str, np.ndarray], split: str, source: str):
    """Pick `split` out of `{"x_<split>", "y_<split>"}` arrays.

    Accepts `"train"`, `"test"`, sums like `"train+test"` and TFDS-style
    slices such as `"train[:1000]"` or `"train[10%:]"`.

    Returns:
        A tuple `(images, labels)` of numpy arrays.
    """
    available = sorted(k[2:] for k in arrays if k.startswith("x_"))
    if not isinstance(split, str):
        raise ValueError(
            f"`split` must be a string such as 'train'. Received: split={split!r}"
        )
    images, labels = [], []
    for part in split.split("+"):
        match = _SPLIT_PATTERN.match(part.strip())
        if match is None or match["name"] not in available:
            raise ValueError(
                f"Unknown split for dataset '{source}'. Expected one of "
                f"{available}, optionally sliced ('train[:1000]', 'train[:10%]') "
                f"or joined with '+'. Received: split={split!r}"
            )
        x = arrays[f"x_{match['name']}"]
        y = arrays[f"y_{match['name']}"]
        start = _slice_index(match["start"], len(x))
        end = _slice_index(match["end"], len(x))
        images.append(x[start:end])
        labels.append(y[start:end])
    x = images[0] if len(images) == 1 else np.concatenate(images)
    y = labels[0] if len(labels) == 1 else np.concatenate(labels)
    if len(x) == 0:
        raise ValueError(
            f"Split {split!r} of dataset '{source}' is empty. Received: split={split!r}"
        )
    return x, y


def _slice_index(text: str | None, length: int) -> int | None:
    if text is None:
        return None
    if text.endswith("%"):
        return round(int(text[:-1]) * length / 100)
    return int(text)
