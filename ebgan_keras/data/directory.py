"""`from_directory`: a folder of image files as a training pipeline.

`tf.data` where TensorFlow is installed, else a `keras.utils.PyDataset`
(`ebgan_keras.data.batches`) that decodes with Pillow.
"""

from __future__ import annotations

import collections
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ebgan_keras.data import _pipeline
from ebgan_keras.data import batches

if TYPE_CHECKING:
    import tensorflow as tf

    from ebgan_keras.data.batches import Batches

logger = logging.getLogger("ebgan_keras.data")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
#: CelebA's official train/validation/test partition, as distributed with
#: `img_align_celeba` (`000001.jpg 0` lines) and on Kaggle (a CSV with the
#: header `image_id,partition`), looked for near the folder (`partition_file`).
PARTITION_FILES = ("list_eval_partition.txt", "list_eval_partition.csv")
PARTITION_SPLITS = ("train", "validation", "test")
_GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def from_directory(
    path,
    image_size=None,
    batch_size: int = 64,
    crop=None,
    channels: int | None = None,
    with_labels: bool = False,
    shuffle: bool = True,
    seed: int | None = None,
    flip: bool = False,
    drop_remainder: bool = True,
    cache="auto",
    shuffle_buffer: int = 10_000,
    split: str | None = None,
    pipeline: str = "auto",
    workers: int = 1,
) -> tf.data.Dataset | Batches:
    """Turn a folder of images (searched recursively) into a training dataset.

    Files ending in .png, .jpg, .jpeg or .bmp are used. Every file's header is
    read once with Pillow (PNGs are verified, JPEGs checked for their end
    marker): a file that fails is skipped with a warning naming it (if none
    can be read, it is an error), and the image
    sizes are checked (mixed sizes need `image_size`, or a fixed `crop`).
    Decoding, cropping and resizing then run in parallel in `tf.data`
    (`num_parallel_calls=AUTOTUNE`); the decoded uint8 images are cached in
    memory when they fit (`cache="auto"`, up to 2 GiB).

    For CelebA (`img_align_celeba`, 178x218) the usual recipe is
    `crop=108, image_size=64` (DCGAN) or `crop=140, image_size=64`.

    `split` picks a part of the folder: with CelebA's partition file
    (`list_eval_partition.txt` or `.csv` where CelebA's downloads put it,
    see `partition_file`) `"train"`, `"validation"` and `"test"` are the official
    splits; without one the folder is the one split `"train"`. Both take
    TFDS-style slices of the sorted file list (`"train[:90%]"`,
    `"train[-1000:]"`) and sums (`"validation+test"`).

    Args:
        path: str or Path. The folder.
        image_size: int, (height, width) or None. Resize to this size (after
            cropping). Defaults to `None` (all images must then share one
            size).
        batch_size: int. Images per batch. Defaults to `64`.
        crop: None, "center", int or (height, width). Central crop before
            resizing; "center" takes the largest central square. Defaults to
            `None`.
        channels: None, 1 or 3. Decode as grayscale (1) or RGB (3); `None`
            picks 1 if every image is grayscale, else 3. Defaults to `None`.
        with_labels: bool. Yield `(images, labels)`, the label being the
            index of the image's first-level subfolder in sorted order.
            Defaults to `False`.
        shuffle: bool. Shuffle each epoch. Defaults to `True`.
        seed: int or None. Seed of the shuffle and the flips; `None` is not
            reproducible. Defaults to `None`.
        flip: bool. Random horizontal flip of half the images. Defaults to
            `False`.
        drop_remainder: bool. Drop the last partial batch. Defaults to
            `True`.
        cache: "auto", bool or str. Cache decoded images in memory ("auto":
            when they fit in 2 GiB; True: always), in a file (a str path), or
            not at all (False). Defaults to `"auto"`.
        shuffle_buffer: int. Shuffle buffer size when the images are cached.
            Defaults to `10000`.
        split: str or None. A split of the folder (see above); `None` takes
            every image. Defaults to `None`.
        pipeline: str. `"tf.data"`, `"pydataset"` (a `keras.utils.PyDataset`
            decoding with Pillow in `workers` threads, no TensorFlow needed;
            its in-memory cache is filled as images are first read, and a
            file path `cache` is taken as `True`) or `"auto"` (`tf.data` where
            TensorFlow is installed). Defaults to `"auto"`.
        workers: int. Threads building batches of a `"pydataset"` pipeline
            while Keras iterates it. Defaults to `1`.

    Returns:
        A `tf.data.Dataset` (or `Batches`, a `keras.utils.PyDataset`) of
        float32 `(batch, height, width, channels)`
        images in `[-1, 1]` (or `(images, labels)` pairs with int32 labels).

    Example:

    >>> from ebgan_keras import data as ek_data
    >>> ds = ek_data.from_directory(  # doctest: +SKIP
    ...     "img_align_celeba", image_size=64, crop=108, seed=0)
    """
    pipeline = batches.resolve_pipeline(pipeline)
    workers = batches.check_workers(workers)
    spec = _pipeline.make_preprocessing(image_size, crop, channels, flip)
    batch_size = _pipeline.check_batch_size(batch_size)
    seed = _pipeline.check_seed(seed)
    if not (cache in ("auto", True, False) or isinstance(cache, (str, Path))):
        raise ValueError(
            "`cache` must be 'auto', True, False or a file path. "
            f"Received: cache={cache!r}"
        )
    folder = Path(path)
    if not folder.is_dir():
        raise ValueError(f"`path` must be an existing folder. Received: path={path!r}")
    files = list_images(folder)
    if not files:
        raise ValueError(
            f"No images ({', '.join(IMAGE_EXTENSIONS)}) found in {folder} or its "
            f"subfolders. Received: path={path!r}"
        )
    if split is not None:
        files = split_files(folder, files, split)
    labels = None
    class_names = None
    if with_labels:
        labels, class_names = _labels_from_subfolders(folder, files)

    infos = _scan(files)
    good = [i for i, info in enumerate(infos) if not isinstance(info, Exception)]
    for file, info in zip(files, infos, strict=True):
        if isinstance(info, Exception):
            logger.warning("Skipping unreadable image %s: %s", file, info)
    if not good:
        examples = "; ".join(
            f"{files[i]}: {infos[i]}" for i in range(min(3, len(files)))
        )
        raise ValueError(
            f"None of the {len(files)} image files in {folder} could be read "
            f"({examples}). Received: path={path!r}"
        )
    files = [files[i] for i in good]
    infos = [infos[i] for i in good]
    if labels is not None:
        labels = [labels[i] for i in good]

    if channels is None:
        grayscale = all(mode in _GRAYSCALE_MODES for _, mode in infos)
        decode_channels = 1 if grayscale else 3
    else:
        decode_channels = channels
    out_hw = _output_size(files, infos, spec, path)
    count = len(files)
    if drop_remainder and count < batch_size:
        raise ValueError(
            f"`batch_size` ({batch_size}) is larger than the number of readable "
            f"images ({count}) and `drop_remainder=True`. "
            f"Received: batch_size={batch_size}"
        )
    decode_spec = _pipeline.Preprocessing(spec.image_size, spec.crop, None, False)
    image_bytes = count * out_hw[0] * out_hw[1] * decode_channels
    use_cache = cache is True or isinstance(cache, (str, Path))
    use_cache |= cache == "auto" and image_bytes <= _pipeline.DEFAULT_CACHE_BYTES
    if pipeline == "pydataset":
        dataset = batches.Batches(
            _FileReader(files, out_hw, decode_channels, decode_spec, use_cache),
            count,
            (*out_hw, batches.output_channels(decode_channels, spec.channels)),
            batch_size,
            _pipeline.Preprocessing(None, None, spec.channels, spec.flip),
            labels=None if labels is None else np.asarray(labels, np.int32),
            shuffle=shuffle,
            seed=seed,
            drop_remainder=drop_remainder,
            workers=workers,
        )
        dataset.class_names = class_names
        return dataset
    import tensorflow as tf

    def load(file, *label):
        raw = tf.io.read_file(file)
        image = tf.io.decode_image(
            raw, channels=decode_channels, expand_animations=False
        )
        image = tf.ensure_shape(image, (None, None, decode_channels))
        if decode_spec.spatial:
            image = _pipeline.spatial_transform(image, decode_spec)
            image = tf.cast(tf.round(image), tf.uint8)
        image = tf.ensure_shape(image, (*out_hw, decode_channels))
        return (image, *label)

    parts = [tf.constant([str(f) for f in files])]
    if labels is not None:
        parts.append(tf.constant(labels, tf.int32))
    dataset = tf.data.Dataset.from_tensor_slices(tuple(parts))
    shuffle_seed = _pipeline.shuffle_seed(seed)
    if shuffle and not use_cache:
        # Shuffling the file names is cheap and gives a full shuffle.
        dataset = dataset.shuffle(
            count, seed=shuffle_seed, reshuffle_each_iteration=True
        )
    dataset = dataset.map(load, num_parallel_calls=_pipeline.AUTOTUNE)
    # Safety net for files that pass the scan but still fail to decode
    # (TensorFlow logs those without the file name).
    dataset = dataset.ignore_errors(log_warning=True)
    if use_cache:
        dataset = dataset.cache("" if cache in (True, "auto") else str(cache))
        if shuffle:
            dataset = dataset.shuffle(
                min(count, shuffle_buffer),
                seed=shuffle_seed,
                reshuffle_each_iteration=True,
            )
    dataset = _pipeline.finish(
        dataset,
        _pipeline.Preprocessing(None, None, spec.channels, spec.flip),
        batch_size,
        seed,
        with_labels=labels is not None,
        drop_remainder=drop_remainder,
    )
    if class_names is not None:
        dataset.class_names = class_names
    return dataset


class _FileReader:
    """`read(indices)` of a `Batches`: decode (Pillow), crop, resize, cache."""

    def __init__(self, files, out_hw, channels, spec, use_cache) -> None:
        self.files = files
        self.shape = (*out_hw, channels)
        self.mode = "L" if channels == 1 else "RGB"
        self.spec = spec
        self.cache = None
        if use_cache:
            self.cache = np.zeros((len(files), *self.shape), np.uint8)
            self.cached = np.zeros(len(files), bool)

    def decode(self, index: int) -> np.ndarray:
        file = self.files[index]
        try:
            with Image.open(file) as image:
                array = np.asarray(image.convert(self.mode), np.uint8)
        except Exception as error:  # noqa: BLE001 - name the file
            raise ValueError(f"Cannot decode image {file}: {error}") from None
        array = array.reshape(*array.shape[:2], -1)
        if self.spec.spatial:
            array = batches.spatial_transform(array[None], self.spec)[0]
            array = np.round(array).astype(np.uint8)
        if array.shape != self.shape:
            raise ValueError(
                f"Image {file} decodes to shape {array.shape}, expected {self.shape}"
            )
        return array

    def __call__(self, indices) -> np.ndarray:
        if self.cache is not None and self.cached[indices].all():
            return self.cache[indices]
        out = np.empty((len(indices), *self.shape), np.uint8)
        for n, index in enumerate(indices):
            if self.cache is not None and self.cached[index]:
                out[n] = self.cache[index]
                continue
            out[n] = self.decode(int(index))
            if self.cache is not None:
                self.cache[index] = out[n]
                self.cached[index] = True
        return out


def list_images(folder) -> list[Path]:
    """Image files under `folder` (recursively), sorted by path.

    Args:
        folder: str or Path. The folder.

    Returns:
        A sorted list of `Path`s with an extension in `IMAGE_EXTENSIONS`.

    Example:

    >>> from ebgan_keras.data import directory
    >>> directory.list_images("no_such_folder")
    []
    """
    found = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        found.extend(
            Path(root) / name
            for name in sorted(names)
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")
        )
    return sorted(found)


def partition_file(folder) -> Path | None:
    """CelebA's partition file for an image folder, if there is one.

    Args:
        folder: str or Path. The image folder (e.g. `img_align_celeba`).

    Returns:
        The path of the first of `PARTITION_FILES` found in `folder`, its
        parent or grandparent, or an `Eval/` folder beside them (CelebA's
        own layout `Img/img_align_celeba` + `Eval/list_eval_partition.txt`;
        Kaggle's `img_align_celeba/img_align_celeba` +
        `list_eval_partition.csv`), or `None`.

    Example:

    >>> from ebgan_keras.data import directory
    >>> directory.partition_file("no_such_folder") is None
    True
    """
    folder = Path(folder).resolve()
    for place in (folder, folder.parent, folder.parent.parent):
        for where in (place, place / "Eval"):
            for name in PARTITION_FILES:
                if (where / name).is_file():
                    return where / name
    return None


def _read_partition(path: Path) -> dict[str, int]:
    """File name -> partition (0 train, 1 validation, 2 test)."""
    partition = {}
    with open(path) as handle:
        for number, line in enumerate(handle, 1):
            fields = line.replace(",", " ").split()
            if not fields or fields[0] == "image_id":  # blank line, CSV header
                continue
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise ValueError(
                    f"{path} line {number} must read `FILE PARTITION` with "
                    f"PARTITION 0 (train), 1 (validation) or 2 (test). "
                    f"Received: {line.strip()!r}"
                )
            partition[fields[0]] = int(fields[1])
    return partition


def split_files(folder, files: list[Path], split: str) -> list[Path]:
    """The files of one split of an image folder (see `from_directory`).

    Args:
        folder: str or Path. The image folder.
        files: list of Path. Its images, sorted (`list_images`).
        split: str. `"train"`, `"validation"` or `"test"` (the last two need
            CelebA's partition file), sliced or summed as TFDS splits are.

    Returns:
        The sorted files of the split.
    """
    path = partition_file(folder)
    if path is None:
        parts = {"train": files}
    else:
        partition = _read_partition(path)
        parts = {name: [] for name in PARTITION_SPLITS}
        for file in files:
            index = partition.get(file.name)
            if index is not None:
                parts[PARTITION_SPLITS[index]].append(file)
    arrays = {}
    for name, members in parts.items():
        arrays[f"x_{name}"] = np.array([str(f) for f in members], dtype=object)
        arrays[f"y_{name}"] = np.zeros(len(members), dtype=np.int32)
    try:
        selected, _ = _pipeline.select_split(arrays, split, str(folder))
    except ValueError as error:
        if path is not None:
            raise
        raise ValueError(
            f"{error}. A folder of images is one split, 'train' (slice it, e.g. "
            "split='train[-1000:]' for the last 1000 files); CelebA's "
            f"'validation' and 'test' splits need its partition file "
            f"({' or '.join(PARTITION_FILES)}) in {folder}, its parent or "
            "grandparent, or an Eval/ folder beside them."
        ) from None
    return [Path(f) for f in selected]


def _labels_from_subfolders(folder: Path, files: list[Path]):
    top_level = [f for f in files if f.parent == folder]
    if top_level:
        raise ValueError(
            "`with_labels=True` takes each image's class from its subfolder "
            f"(folder/<class>/image.png), but {len(top_level)} images lie directly "
            f"in {folder} (e.g. {top_level[0].name}). Received: with_labels=True"
        )
    classes = [f.relative_to(folder).parts[0] for f in files]
    class_names = sorted(set(classes))
    index = {name: i for i, name in enumerate(class_names)}
    return [index[c] for c in classes], class_names


def _read_header(file: Path):
    try:
        with Image.open(file) as image:
            size, mode = image.size, image.mode
            if file.suffix.lower() == ".png":
                image.verify()  # cheap for PNG: checks chunk CRCs and IEND
        if file.suffix.lower() in (".jpg", ".jpeg"):
            # A cut-off download lacks the end-of-image marker (FF D9); some
            # writers pad after it, so look at the last KiB.
            with open(file, "rb") as handle:
                handle.seek(max(0, file.stat().st_size - 1024))
                if b"\xff\xd9" not in handle.read():
                    raise OSError("truncated JPEG (no end-of-image marker)")
        return (size[1], size[0]), mode
    except Exception as error:  # noqa: BLE001 - any failure means "unreadable"
        return error


def _scan(files: list[Path]) -> list:
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        return list(pool.map(_read_header, files, chunksize=256))


def _output_size(files, infos, spec: _pipeline.Preprocessing, path):
    sizes = collections.Counter(hw for hw, _ in infos)
    if spec.image_size is not None:
        for hw in sizes:
            _pipeline.output_hw(*hw, spec)  # raises if a crop does not fit
        return spec.image_size
    if isinstance(spec.crop, tuple):
        for hw in sizes:
            _pipeline.output_hw(*hw, spec)
        return spec.crop
    if len(sizes) > 1:
        examples = []
        for hw in list(sizes)[:3]:
            first = next(
                f for f, info in zip(files, infos, strict=True) if info[0] == hw
            )
            examples.append(f"{sizes[hw]} of size {hw} (e.g. {first.name})")
        raise ValueError(
            f"The images in {path} have {len(sizes)} different sizes: "
            f"{'; '.join(examples)}. Pass image_size=... to resize them (or a "
            f"fixed crop). Received: image_size=None"
        )
    (hw,) = sizes
    return _pipeline.output_hw(*hw, spec)[0]
