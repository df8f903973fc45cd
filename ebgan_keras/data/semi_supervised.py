"""Semi-supervised data: a balanced labelled subset, the rest unlabelled.

Permutation-invariant MNIST (PI-MNIST) as in the ladder network and EBGAN-LN
experiments: pixels in `[0, 1]` (uint8 / 255), flattened (the MLP sees no
pixel layout), a labelled subset with the same number of images per class
drawn by seed, and every other training image unlabelled.
"""

from __future__ import annotations

import keras
import numpy as np

#: Label of an unlabelled row in a batch.
UNLABELLED = -1


def labelled_split(labels, num_labels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a class-balanced labelled subset and of the rest.

    Args:
        labels: int array `(N,)` of classes `0..C-1`.
        num_labels: int. Size of the labelled subset, a multiple of the number
            of classes (`num_labels / C` per class).
        seed: int. Draws the subset; the same seed gives the same subset.

    Returns:
        `(labelled, unlabelled)`: sorted int64 index arrays, disjoint, covering
        `0..N-1`.

    Example:

    >>> labels = np.repeat(np.arange(10), 20)
    >>> labelled, rest = labelled_split(labels, 100, seed=0)
    >>> np.bincount(labels[labelled]).tolist() == [10] * 10, len(rest)
    (True, 100)
    """
    labels = np.asarray(labels).reshape(-1).astype("int64")
    classes = int(labels.max()) + 1 if labels.size else 0
    if (
        classes < 1
        or not isinstance(num_labels, (int, np.integer))
        or (num_labels < classes or num_labels % classes)
    ):
        raise ValueError(
            f"`num_labels` must be a positive multiple of the {classes} classes. "
            f"Received: num_labels={num_labels!r}"
        )
    per_class = num_labels // classes
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(classes):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(
                f"Class {c} has {len(members)} images, fewer than the "
                f"{per_class} per class that num_labels={num_labels} needs."
            )
        chosen.append(rng.choice(members, per_class, replace=False))
    labelled = np.sort(np.concatenate(chosen))
    unlabelled = np.setdiff1d(np.arange(len(labels)), labelled)
    return labelled, unlabelled


def load_pi_mnist(num_labels: int = 100, seed: int = 0, cache_dir=None) -> dict:
    """PI-MNIST with `num_labels` labels drawn by `seed`.

    Args:
        num_labels: int. Labelled training images (balanced). Defaults to
            `100`.
        seed: int. Draws the labelled subset. Defaults to `0`.
        cache_dir: str or None. Folder of the offline MNIST cache (see
            `ek.data.load_arrays`). Defaults to its default.

    Returns:
        A dict of float32 pixels in `[0, 1]`, flattened `(N, 784)`:
        `x_labelled`, `x_unlabelled`, `x_test`, and int32 `y_labelled`,
        `y_test`; `labelled_indices` (into the 60,000 training images).

    Example:

    ```python
    data = ek.data.semi_supervised.load_pi_mnist(100, seed=0)
    data["x_labelled"].shape  # (100, 784)
    ```
    """
    from ebgan_keras.data import offline

    arrays = offline.load_arrays("mnist", cache_dir)
    return split_arrays(arrays, num_labels, seed)


def split_arrays(arrays: dict, num_labels: int, seed: int) -> dict:
    """`load_pi_mnist`'s split of uint8 arrays `x_train, y_train, x_test, y_test`.

    Args:
        arrays: dict. uint8 images `(N, H, W)` and int labels.
        num_labels: int. Labelled training images (balanced).
        seed: int. Draws the labelled subset.

    Returns:
        The dict of `load_pi_mnist`.
    """

    def flat(x):
        x = np.asarray(x)
        return (x.reshape(len(x), -1).astype("float32") / 255.0).astype("float32")

    x_train, y_train = flat(arrays["x_train"]), np.asarray(arrays["y_train"])
    labelled, unlabelled = labelled_split(y_train, num_labels, seed)
    return {
        "x_labelled": x_train[labelled],
        "y_labelled": y_train[labelled].astype("int32"),
        "x_unlabelled": x_train[unlabelled],
        "x_test": flat(arrays["x_test"]),
        "y_test": np.asarray(arrays["y_test"]).astype("int32"),
        "labelled_indices": labelled,
    }


class SemiSupervisedBatches(keras.utils.PyDataset):
    """Batches of labelled and unlabelled rows together, for `EBGANLN.fit`.

    Each batch holds `labelled_batch_size` labelled rows (cycling through the
    labelled set, as the official ladder code does) followed by `batch_size`
    unlabelled rows; an epoch is one pass over the unlabelled rows (the last
    partial batch dropped). The order of epoch `e` is drawn from `(seed, e)`,
    so a run resumed at an epoch sees the same batches.

    Args:
        data: dict. `x_labelled`, `y_labelled`, `x_unlabelled` (as from
            `load_pi_mnist`).
        batch_size: int. Unlabelled rows per batch. Defaults to `100`.
        labelled_batch_size: int. Labelled rows per batch. Defaults to `100`.
        image_shape: tuple of int. Shape the rows are reshaped to. Defaults to
            `(28, 28, 1)`.
        seed: int. Seeds the order. Defaults to `0`.
        epoch: int. The epoch the first pass belongs to (resume). Defaults
            to `0`.

    Example:

    ```python
    batches = SemiSupervisedBatches(data, seed=0)
    images, labels = batches[0]  # (200, 28, 28, 1), (200,): -1 = unlabelled
    ```
    """

    def __init__(
        self,
        data: dict,
        batch_size: int = 100,
        labelled_batch_size: int = 100,
        image_shape=(28, 28, 1),
        seed: int = 0,
        epoch: int = 0,
    ):
        super().__init__()
        self.x_labelled = np.asarray(data["x_labelled"], "float32")
        self.y_labelled = np.asarray(data["y_labelled"], "int32")
        self.x_unlabelled = np.asarray(data["x_unlabelled"], "float32")
        self.batch_size = int(batch_size)
        self.labelled_batch_size = int(labelled_batch_size)
        self.image_shape = tuple(image_shape)
        self.seed = seed
        if self.batch_size < 1 or self.batch_size > len(self.x_unlabelled):
            raise ValueError(
                f"`batch_size` must be in [1, {len(self.x_unlabelled)}] (the "
                f"unlabelled rows). Received: batch_size={batch_size!r}"
            )
        if self.labelled_batch_size < 1 or len(self.x_labelled) < 1:
            raise ValueError(
                "`labelled_batch_size` must be >= 1 and `data` must hold labelled "
                f"rows. Received: labelled_batch_size={labelled_batch_size!r}, "
                f"{len(self.x_labelled)} labelled rows"
            )
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        """Draws the order of epoch `epoch`."""
        self.epoch = int(epoch)
        rng = np.random.default_rng([int(self.seed), self.epoch])
        self._unlabelled_order = rng.permutation(len(self.x_unlabelled))
        self._labelled_order = rng.permutation(len(self.x_labelled))

    def __len__(self) -> int:
        return len(self.x_unlabelled) // self.batch_size

    def __getitem__(self, index: int):
        u = self._unlabelled_order[
            index * self.batch_size : (index + 1) * self.batch_size
        ]
        start = index * self.labelled_batch_size
        positions = np.arange(start, start + self.labelled_batch_size)
        lab = self._labelled_order[positions % len(self._labelled_order)]
        images = np.concatenate([self.x_labelled[lab], self.x_unlabelled[u]])
        labels = np.concatenate(
            [self.y_labelled[lab], np.full(len(u), UNLABELLED, "int32")]
        )
        return images.reshape((-1, *self.image_shape)), labels

    def on_epoch_end(self) -> None:
        self.set_epoch(self.epoch + 1)


__all__ = [
    "UNLABELLED",
    "SemiSupervisedBatches",
    "labelled_split",
    "load_pi_mnist",
    "split_arrays",
]
