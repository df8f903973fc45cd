"""`from_arrays`: numpy images (and labels) as a training pipeline.

`tf.data` where TensorFlow is installed, else a `keras.utils.PyDataset`
(`ebgan_keras.data.batches`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ebgan_keras.data import _pipeline
from ebgan_keras.data import batches

if TYPE_CHECKING:
    import tensorflow as tf

    from ebgan_keras.data.batches import Batches

_VALUE_RANGES = ((0, 1), (-1, 1), (0, 255))
# Float images may overshoot their declared range by rounding only.
_RANGE_TOLERANCE = 1e-4


def from_arrays(
    x,
    labels=None,
    batch_size: int = 64,
    image_size=None,
    crop=None,
    channels: int | None = None,
    value_range: tuple[float, float] | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    flip: bool = False,
    drop_remainder: bool = True,
    pipeline: str = "auto",
    workers: int = 1,
) -> tf.data.Dataset | Batches:
    """Turn numpy images (and optional labels) into a training pipeline.

    The images stay in memory as given (uint8 stays uint8); each batch is
    gathered by shuffled index, then cropped, resized, converted and scaled to
    float32 `[-1, 1]` in one vectorized step, so the pipeline is much faster
    than a training step.

    uint8 (or integer 0-255) images are scaled by `x / 127.5 - 1`. Float
    images must say their range through `value_range`; values outside it are
    an error, never a silent wrong scale.

    Args:
        x: array-like. Images, `(N, H, W)` or `(N, H, W, C)` with `C` in
            1-4, uint8/integer in `[0, 255]` or float in `value_range`.
        labels: array-like or None. One integer label per image, `(N,)`; if
            given, the dataset yields `(images, labels)`. Defaults to `None`.
        batch_size: int. Images per batch. Defaults to `64`.
        image_size: int, (height, width) or None. Resize to this size (after
            cropping). Defaults to `None` (keep).
        crop: None, "center", int or (height, width). Central crop before
            resizing; "center" takes the largest central square. Defaults to
            `None`.
        channels: None, 1 or 3. Convert to grayscale (1) or RGB (3).
            Defaults to `None` (keep).
        value_range: tuple or None. Range of float input: `(0, 1)`,
            `(-1, 1)` or `(0, 255)`. Required for float input; integer input
            must be `None` or `(0, 255)`. Defaults to `None`.
        shuffle: bool. Reshuffle the whole array each epoch. Defaults to
            `True`.
        seed: int or None. Seed of the shuffle and of the flips; `None` is
            not reproducible. Defaults to `None`.
        flip: bool. Random horizontal flip of half the images. Defaults to
            `False`.
        drop_remainder: bool. Drop the last partial batch. Defaults to
            `True`.
        pipeline: str. `"tf.data"`, `"pydataset"` (a `keras.utils.PyDataset`,
            no TensorFlow needed) or `"auto"` (`tf.data` where TensorFlow is
            installed). Defaults to `"auto"`.
        workers: int. Threads building batches of a `"pydataset"` pipeline
            while Keras iterates it (`tf.data` tunes its own). Defaults to `1`.

    Returns:
        A `tf.data.Dataset` (or `Batches`, a `keras.utils.PyDataset`) of
        float32 `(batch, height, width, channels)` images in `[-1, 1]` (or
        `(images, labels)` pairs with int32 labels).

    Example:

    >>> import numpy as np
    >>> from ebgan_keras import data as ek_data
    >>> x = np.zeros((10, 28, 28), "uint8")
    >>> ds = ek_data.from_arrays(x, batch_size=4, seed=0)
    >>> tuple(next(iter(ds)).shape)
    (4, 28, 28, 1)
    """
    pipeline = batches.resolve_pipeline(pipeline)
    workers = batches.check_workers(workers)
    spec = _pipeline.make_preprocessing(image_size, crop, channels, flip)
    batch_size = _pipeline.check_batch_size(batch_size)
    seed = _pipeline.check_seed(seed)
    images, offset, scale = _check_images(x, value_range)
    label_array = None if labels is None else _check_labels(labels, len(images))
    count, height, width, source_channels = images.shape
    if drop_remainder and count < batch_size:
        raise ValueError(
            f"`batch_size` ({batch_size}) is larger than the number of images "
            f"({count}) and `drop_remainder=True`, so there would be no batch. "
            f"Pass a smaller batch_size or drop_remainder=False. "
            f"Received: batch_size={batch_size}"
        )
    out_hw = _pipeline.output_hw(height, width, spec)[0]  # raises if no fit
    out_channels = batches.convert_channels(  # raises if impossible
        np.zeros((1, 1, 1, source_channels), np.float32), spec.channels
    ).shape[-1]
    if pipeline == "pydataset":
        spatial = _pipeline.Preprocessing(spec.image_size, spec.crop, None, False)

        def read(indices):
            batch = images[indices]
            if scale is not None:  # float input: map its range to [0, 255]
                batch = (batch.astype(np.float32) - offset) * np.float32(scale)
            if spatial.spatial:
                batch = batches.spatial_transform(batch, spatial)
            return batch

        return batches.Batches(
            read,
            count,
            (*out_hw, out_channels),
            batch_size,
            spec,
            labels=label_array,
            shuffle=shuffle,
            seed=seed,
            drop_remainder=drop_remainder,
            workers=workers,
        )
    import tensorflow as tf

    image_tensor = tf.convert_to_tensor(images)
    label_tensor = None if label_array is None else tf.convert_to_tensor(label_array)

    def gather(indices):
        batch = tf.gather(image_tensor, indices)
        if scale is not None:  # float input: map its range to [0, 255]
            batch = (tf.cast(batch, tf.float32) - offset) * scale
        batch = _pipeline.spatial_transform(batch, spec)
        if label_tensor is None:
            return (batch,)
        return batch, tf.gather(label_tensor, indices)

    indices = tf.data.Dataset.range(count)
    if shuffle:
        indices = indices.shuffle(
            count, seed=_pipeline.shuffle_seed(seed), reshuffle_each_iteration=True
        )
    indices = indices.batch(batch_size, drop_remainder=drop_remainder)
    return _pipeline.finish(
        indices,
        spec,
        batch_size,
        seed,
        with_labels=label_tensor is not None,
        drop_remainder=drop_remainder,
        batch_fn=gather,
    )


def _check_images(x, value_range):
    """Validate images; return (array NHWC, offset, scale to [0, 255] or None)."""
    # A tf.data.Dataset (or a Batches) has an element_spec; arrays do not.
    if hasattr(x, "element_spec") or not hasattr(x, "__len__"):
        raise ValueError(
            "`x` must be a numpy array of images (N, H, W) or (N, H, W, C). "
            f"Received: x of type {type(x).__name__}"
        )
    images = np.asarray(x)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(
            "`x` must have rank 3 (N, H, W) or 4 (N, H, W, C). "
            f"Received: x with shape {images.shape}"
        )
    if images.shape[0] == 0 or images.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(
            "`x` must hold at least one image with 1-4 channels (NHWC). "
            f"Received: x with shape {images.shape}"
        )
    if min(images.shape[1:3]) == 0:
        raise ValueError(
            f"`x` images must not be empty. Received: x with shape {images.shape}"
        )
    if value_range is not None:
        try:
            value_range = tuple(float(v) for v in value_range)
        except (TypeError, ValueError):
            value_range = ("invalid",)
        if value_range not in _VALUE_RANGES:
            raise ValueError(
                "`value_range` must be None, (0, 1), (-1, 1) or (0, 255). "
                f"Received: value_range={value_range!r}"
            )
    dtype = images.dtype
    if dtype == np.uint8:
        if value_range not in (None, (0, 255)):
            raise ValueError(
                "uint8 images are in [0, 255]; `value_range` must be None or "
                f"(0, 255). Received: value_range={value_range!r} with x.dtype=uint8"
            )
        return images, None, None
    if np.issubdtype(dtype, np.integer):
        low, high = int(images.min()), int(images.max())
        if low < 0 or high > 255 or value_range not in (None, (0, 255)):
            raise ValueError(
                f"Integer images must hold values in [0, 255] (value_range None "
                f"or (0, 255)). Received: x.dtype={dtype}, values in "
                f"[{low}, {high}], value_range={value_range!r}"
            )
        return images.astype(np.uint8), None, None
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(
            f"`x` must be uint8, integer or float images. Received: x.dtype={dtype}"
        )
    not_finite = int(np.size(images) - np.count_nonzero(np.isfinite(images)))
    if not_finite:
        raise ValueError(
            f"`x` holds {not_finite} NaN or infinite values; images must be "
            f"finite. Received: x.dtype={dtype}, shape {images.shape}"
        )
    low, high = float(images.min()), float(images.max())
    if value_range is None:
        raise ValueError(
            "Float images need `value_range` to say how to scale them: (0, 1), "
            f"(-1, 1) or (0, 255). Received: x.dtype={dtype} with values in "
            f"[{low:.4g}, {high:.4g}] and value_range=None"
        )
    if low < value_range[0] - _RANGE_TOLERANCE or high > value_range[1] + (
        _RANGE_TOLERANCE * max(1.0, value_range[1])
    ):
        raise ValueError(
            f"`x` values lie in [{low:.4g}, {high:.4g}], outside the declared "
            f"value_range {value_range}. Pass the range the images are in. "
            f"Received: value_range={value_range!r}"
        )
    images = images.astype(np.float32, copy=False)
    return images, value_range[0], 255.0 / (value_range[1] - value_range[0])


def _check_labels(labels, count: int) -> np.ndarray:
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or len(array) != count:
        raise ValueError(
            f"`labels` must be one label per image, shape ({count},). "
            f"Received: labels with shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer):
        if np.issubdtype(array.dtype, np.floating) and np.all(
            np.isfinite(array) & (array == np.round(array))
        ):
            return array.astype(np.int32)
        raise ValueError(
            "`labels` must be integer class ids. "
            f"Received: labels with dtype {array.dtype}"
        )
    return array.astype(np.int32)
