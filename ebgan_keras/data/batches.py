"""The TensorFlow-free pipeline of `ebgan_keras.data`: a `keras.utils.PyDataset`.

Why a `PyDataset` (and not Grain or a `torch` `DataLoader`): it is Keras's own
input type, so `model.fit` takes it on every backend with no adapter and no
extra dependency; it is index-addressed (`dataset[i]` is batch `i`), so a
batch depends only on the seed and its index, never on how many threads
built it or in which order; and Keras runs its `__getitem__` in `workers`
threads (or processes) with a bounded queue, which is the prefetching a
training loop needs. Index addressing is also what keeps a resumed run
exact: `repeat()` gives the endless stream of epochs (epoch `e` is the
permutation drawn from `(seed, e)`), `skip(n)` starts it `n` batches later.

`Batches` mirrors the few `tf.data.Dataset` members that the package uses
(`element_spec`, `cardinality()`, `repeat()`, `skip()`), so the training
code treats both pipelines alike.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

import keras
import numpy as np

from ebgan_keras.data import _pipeline

#: `cardinality()` of an endless stream (`tf.data.INFINITE_CARDINALITY`).
INFINITE = -1
# ITU-R 601 luma weights, those of `tf.image.rgb_to_grayscale`.
_LUMA = np.array([0.2989, 0.5870, 0.1140], np.float32)


class Spec(NamedTuple):
    """Shape and dtype of a batch part, as `tf.TensorSpec` has them."""

    shape: tuple
    dtype: str


def tensorflow_available() -> bool:
    """Whether TensorFlow can be imported (without importing it).

    Returns:
        True if a `tensorflow` module is installed.

    Example:

    >>> from ebgan_keras.data import batches
    >>> isinstance(batches.tensorflow_available(), bool)
    True
    """
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


def resolve_pipeline(pipeline: str) -> str:
    """`"tf.data"` or `"pydataset"` for a `pipeline` argument.

    `"auto"` keeps `tf.data` wherever TensorFlow is installed (so every
    backend's numbers stay as they were) and takes the `PyDataset` without it.

    Args:
        pipeline: str. `"auto"`, `"tf.data"` or `"pydataset"`.

    Returns:
        `"tf.data"` or `"pydataset"`.

    Example:

    >>> from ebgan_keras.data import batches
    >>> batches.resolve_pipeline("pydataset")
    'pydataset'
    """
    if pipeline not in ("auto", "tf.data", "pydataset"):
        raise ValueError(
            "`pipeline` must be 'auto', 'tf.data' or 'pydataset'. "
            f"Received: pipeline={pipeline!r}"
        )
    if pipeline == "auto":
        return "tf.data" if tensorflow_available() else "pydataset"
    if pipeline == "tf.data" and not tensorflow_available():
        raise ImportError(
            "pipeline='tf.data' needs TensorFlow: pip install "
            "'ebgan-keras[tensorflow]' (or pass pipeline='pydataset')."
        )
    return pipeline


def check_workers(workers) -> int:
    """Return `workers` as a positive int, or raise naming the bad value."""
    if (
        not isinstance(workers, (int, np.integer))
        or isinstance(workers, bool)
        or workers < 1
    ):
        raise ValueError(
            f"`workers` must be a positive int. Received: workers={workers!r}"
        )
    return int(workers)


def resize(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Antialiased bilinear resize of float32 NHWC images in `[0, 255]`.

    Pillow's bilinear filter widens its support when shrinking (like
    `tf.image.resize(..., antialias=True)`); one float32 plane at a time.
    """
    from PIL import Image

    height, width = size
    if images.shape[1:3] == (height, width):
        return images
    out = np.empty((len(images), height, width, images.shape[3]), np.float32)
    for n in range(len(images)):
        for c in range(images.shape[3]):
            plane = Image.fromarray(np.ascontiguousarray(images[n, :, :, c]), "F")
            out[n, :, :, c] = np.asarray(
                plane.resize((width, height), Image.BILINEAR), np.float32
            )
    return np.clip(out, 0.0, 255.0, out=out)


def convert_channels(x: np.ndarray, channels: int | None) -> np.ndarray:
    """Grayscale/RGB conversion of float NHWC images; drops an alpha channel."""
    if channels is None:
        return x
    source = x.shape[-1]
    if source in (2, 4) and source != channels:
        x = x[..., : source - 1]
        source -= 1
    if source == channels:
        return x
    if source == 1 and channels == 3:
        return np.repeat(x, 3, axis=-1)
    if source == 3 and channels == 1:
        return (x @ _LUMA)[..., None].astype(np.float32)
    raise ValueError(
        f"Cannot convert images with {source} channels to {channels}. "
        f"Received: channels={channels!r}"
    )


def output_channels(source: int, channels: int | None) -> int:
    """Channels after `convert_channels` (raises if it is impossible)."""
    return convert_channels(np.zeros((1, 1, 1, source), np.float32), channels).shape[-1]


def spatial_transform(images: np.ndarray, spec: _pipeline.Preprocessing) -> np.ndarray:
    """Crop, resize and convert channels of NHWC images in `[0, 255]`.

    The numpy twin of `_pipeline.spatial_transform`; returns float32.
    """
    x = np.asarray(images, np.float32)
    height, width = x.shape[1:3]
    if spec.crop is not None:
        crop_h, crop_w = _pipeline.output_hw(height, width, spec)[1]
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        x = x[:, top : top + crop_h, left : left + crop_w, :]
    if spec.image_size is not None:
        x = resize(x, spec.image_size)
    return convert_channels(x, spec.channels)


class Batches(keras.utils.PyDataset):
    """Seeded, shuffled batches of `[-1, 1]` images as a `keras.utils.PyDataset`.

    Built by `ek.data.load`, `from_arrays` and `from_directory` when the
    pipeline is `"pydataset"` (the default without TensorFlow). Batch `j` of
    epoch `e` is drawn from `(seed, e)` alone, so the same seed gives the same
    batches whatever `workers` is. A finite `Batches` reshuffles per epoch
    (`on_epoch_end`, or each new `iter()`), like `tf.data`'s
    `reshuffle_each_iteration`; `repeat()` is the endless stream of epochs.

    Args:
        read: callable. `read(indices)` returns the images at those indices
            as a `(n, height, width, channels)` array in `[0, 255]`.
        count: int. Number of images.
        image_shape: tuple. `(height, width, channels)` of a batch's images.
        batch_size: int. Images per batch.
        spec: `_pipeline.Preprocessing`. Batch-level work (channels, flip).
        labels: array or None. int32 labels, one per image. Defaults to
            `None`.
        shuffle: bool. Reshuffle each epoch. Defaults to `True`.
        seed: int or None. Seed of the shuffle and the flips. Defaults to
            `None` (drawn once, so this object is consistent with itself).
        drop_remainder: bool. Drop the last partial batch. Defaults to
            `True`.
        workers: int. Threads that build batches while Keras iterates.
            Defaults to `1`.
    """

    def __init__(
        self,
        read: Callable[[np.ndarray], np.ndarray],
        count: int,
        image_shape: tuple,
        batch_size: int,
        spec: _pipeline.Preprocessing,
        labels=None,
        shuffle: bool = True,
        seed: int | None = None,
        drop_remainder: bool = True,
        workers: int = 1,
    ) -> None:
        super().__init__(workers=check_workers(workers), use_multiprocessing=False)
        self._read = read
        self._count = int(count)
        self._image_shape = tuple(int(d) for d in image_shape)
        self._batch_size = int(batch_size)
        self._spec = spec
        self._labels = labels
        self._shuffle = bool(shuffle)
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1)[0] >> 1)
        self._shuffle_seed = _pipeline.shuffle_seed(seed)
        self._flip_seed = (seed * 7919 + 1) % (2**31 - 1)
        self._drop_remainder = bool(drop_remainder)
        self._epoch = 0
        self._infinite = False
        self._offset = 0
        self._orders: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.class_names = None

    # -- the tf.data.Dataset members the package uses -----------------------

    @property
    def element_spec(self):
        """The `Spec` of a batch (a pair of them with labels)."""
        batch = self._batch_size if self._drop_remainder else None
        images = Spec((batch, *self._image_shape), "float32")
        if self._labels is None:
            return images
        return images, Spec((batch,), "int32")

    def cardinality(self) -> int:
        """Batches per pass; `INFINITE` (-1) after `repeat()`."""
        return INFINITE if self._infinite else self._batches_per_epoch

    def repeat(self) -> Batches:
        """The endless stream of epochs: batch `i` is batch `i % n` of epoch
        `i // n` (`n` batches per epoch), starting at the current epoch."""
        stream = self._copy()
        stream._infinite = True
        stream._offset = self._epoch * self._batches_per_epoch
        return stream

    def skip(self, count: int) -> Batches:
        """This stream without its first `count` batches."""
        stream = self._copy()
        stream._offset += int(count)
        return stream

    # -- keras.utils.PyDataset -----------------------------------------------

    @property
    def num_batches(self) -> int | None:
        return None if self._infinite else self._batches_per_epoch

    def __len__(self) -> int:
        if self._infinite:
            raise TypeError("an endless stream (repeat()) has no length")
        return self._batches_per_epoch

    def __getitem__(self, index: int):
        if self._infinite:
            epoch, position = divmod(int(index) + self._offset, self._batches_per_epoch)
        else:
            if not 0 <= index < self._batches_per_epoch:
                raise IndexError(
                    f"batch index {index} out of range({self._batches_per_epoch})"
                )
            epoch, position = self._epoch, int(index)
        return self.batch(epoch, position)

    def __iter__(self):
        if self._infinite:
            index = 0
            while True:
                yield self[index]
                index += 1
        with self._lock:
            epoch = self._epoch
            self._epoch += 1
        for position in range(self._batches_per_epoch):
            yield self.batch(epoch, position)

    def on_epoch_end(self) -> None:
        if not self._infinite:
            with self._lock:
                self._epoch += 1

    # -- batches ------------------------------------------------------------

    @property
    def _batches_per_epoch(self) -> int:
        if self._drop_remainder:
            return self._count // self._batch_size
        return -(-self._count // self._batch_size)

    def _copy(self) -> Batches:
        other = Batches.__new__(Batches)
        other.__dict__.update(self.__dict__)
        other._orders = OrderedDict()
        other._lock = threading.Lock()
        return other

    def _order(self, epoch: int) -> np.ndarray:
        with self._lock:
            order = self._orders.get(epoch)
            if order is None:
                if self._shuffle:
                    rng = np.random.default_rng([self._shuffle_seed, epoch])
                    order = rng.permutation(self._count)
                else:
                    order = np.arange(self._count)
                self._orders[epoch] = order
                while len(self._orders) > 4:
                    self._orders.popitem(last=False)
            return order

    def batch(self, epoch: int, position: int):
        """Batch `position` of epoch `epoch`: float32 images (and labels).

        Args:
            epoch: int. The epoch (its shuffle order).
            position: int. The batch's place in the epoch.

        Returns:
            A float32 `(n, height, width, channels)` array in `[-1, 1]`, or
            `(images, labels)`.
        """
        order = self._order(epoch)
        indices = order[position * self._batch_size : (position + 1) * self._batch_size]
        x = convert_channels(
            np.asarray(self._read(indices), np.float32), self._spec.channels
        )
        x = x / np.float32(127.5) - np.float32(1.0)
        if self._spec.flip:
            rng = np.random.default_rng([self._flip_seed, epoch, position])
            flips = rng.random(len(x)) < 0.5
            x[flips] = x[flips, :, ::-1, :]
        x = np.ascontiguousarray(x, np.float32)
        if self._labels is None:
            return x
        return x, self._labels[indices]
