"""Callbacks that show training as it happens: sample grids and energy diagnostics.

Both write PNG files and/or TensorBoard event files. Event files are written
with TensorFlow's low-level `tf.summary.write` in eager mode on numpy values,
which works on every Keras backend (TensorFlow is a dependency of the
library) without the `tensorboard` package; view them with
`pip install tensorboard && tensorboard --logdir LOG_DIR`.
"""

from __future__ import annotations

import io
import os

import keras
import numpy as np

from ebgan_keras import plot
from ebgan_keras.utils import check_positive_int

__all__ = ["EnergyDiagnostics", "SampleGrid"]

# `SummaryMetadata.DataClass` values of TensorBoard's summary.proto.
_SCALAR, _TENSOR, _BLOB_SEQUENCE = 1, 2, 3

#: The model scalars written by `EnergyDiagnostics` when the model has them.
MODEL_SCALARS = ("k", "convergence", "margin", "pt")


class _SummaryWriter:
    """A lazily created TensorBoard event-file writer usable from any backend.

    It writes with the low-level `tf.summary.write` and the TensorBoard
    plugin metadata of scalars, images and histograms, so it needs only
    TensorFlow (not the `tensorboard` package, which only views the files).
    """

    def __init__(self, log_dir: str) -> None:
        self.log_dir = os.fspath(log_dir)
        self._writer = None

    def _write(self, tag: str, tensor, step: int, plugin: str, data_class: int):
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        if self._writer is None:
            os.makedirs(self.log_dir, exist_ok=True)
            self._writer = tf.summary.create_file_writer(self.log_dir)
        metadata = summary_pb2.SummaryMetadata(data_class=data_class)
        metadata.plugin_data.plugin_name = plugin
        with self._writer.as_default():
            tf.summary.write(tag, tensor, step=step, metadata=metadata)

    def scalars(self, values: dict, step: int) -> None:
        for name, value in values.items():
            self._write(name, np.float32(value), step, "scalars", _SCALAR)

    def image(self, name: str, picture: np.ndarray, step: int) -> None:
        from PIL import Image

        buffer = io.BytesIO()
        pixels = picture[..., 0] if picture.shape[-1] == 1 else picture
        Image.fromarray(pixels).save(buffer, format="PNG")
        height, width = picture.shape[:2]
        tensor = np.array([str(width), str(height), buffer.getvalue()], dtype=object)
        self._write(name, tensor, step, "images", _BLOB_SEQUENCE)

    def histogram(self, name: str, values: np.ndarray, step: int, bins: int = 30):
        values = np.asarray(values, np.float64).reshape(-1)
        low, high = float(values.min()), float(values.max())
        counts, edges = np.histogram(values, bins=bins, range=(low, high or low + 1))
        tensor = np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)
        self._write(name, tensor, step, "histograms", _TENSOR)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _pixels(picture) -> np.ndarray:
    """A PIL picture as an `(H, W, C)` uint8 array for `tf.summary.image`."""
    pixels = np.asarray(picture)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _check_every(every_n_epochs) -> int:
    if isinstance(every_n_epochs, bool) or int(every_n_epochs) != every_n_epochs:
        every_n_epochs = -1
    if every_n_epochs < 1:
        raise ValueError(
            "`every_n_epochs` must be a positive int. "
            f"Received: every_n_epochs={every_n_epochs!r}"
        )
    return int(every_n_epochs)


class SampleGrid(keras.callbacks.Callback):
    """Writes a grid of samples from the same fixed latents every N epochs.

    The latents are drawn once, from `seed`, when training begins, so the
    grids of successive epochs show how the same samples evolve. Each grid is
    written to `directory/epoch_XXXX.png` (epochs counted from 1) and, if
    `log_dir` is given, as the image `samples` to TensorBoard.

    Args:
        directory: str or None. Folder of the PNG files; created if needed.
            `None` writes no PNG (then give `log_dir`).
        every_n_epochs: int. Write after every N-th epoch. Defaults to `1`.
        num: int. Samples in the grid. Defaults to `64`.
        seed: int. Seed of the fixed latents. Defaults to `0`.
        log_dir: str or None. TensorBoard log folder. Defaults to `None`.
        nrow: int or None. Images per row. Defaults to `ceil(sqrt(num))`.
        scale: int. Magnification of the PNG files. Defaults to `2`.

    Example:

    ```python
    from ebgan_keras.visual_callbacks import SampleGrid

    model.fit(data, epochs=10, callbacks=[SampleGrid("runs/a/samples", num=64)])
    ```
    """

    def __init__(
        self,
        directory=None,
        every_n_epochs: int = 1,
        num: int = 64,
        seed: int = 0,
        log_dir=None,
        nrow: int | None = None,
        scale: int = 2,
    ) -> None:
        super().__init__()
        if directory is None and log_dir is None:
            raise ValueError(
                "SampleGrid needs somewhere to write: pass `directory` (PNG files) "
                "and/or `log_dir` (TensorBoard). Received: directory=None, "
                "log_dir=None"
            )
        self.directory = None if directory is None else os.fspath(directory)
        self.every_n_epochs = _check_every(every_n_epochs)
        self.num = check_positive_int(num, "num")
        self.seed = int(seed)
        self.nrow = nrow
        self.scale = check_positive_int(scale, "scale")
        self.log_dir = log_dir
        self._writer = None if log_dir is None else _SummaryWriter(log_dir)
        self.latents = None
        self.last_path = None

    def on_train_begin(self, logs=None):
        if self.latents is None:
            self.latents = keras.ops.convert_to_numpy(
                self.model.sample_latents(self.num, seed=self.seed)
            )

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        images = self.model.generate(self.latents)
        if self.directory is not None:
            self.last_path = os.path.join(self.directory, f"epoch_{epoch + 1:04d}.png")
            plot.grid(images, self.last_path, nrow=self.nrow, scale=self.scale)
        if self._writer is not None:
            picture = _pixels(plot.grid(images, nrow=self.nrow, scale=1))
            self._writer.image("samples", picture, step=epoch + 1)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()


class EnergyDiagnostics(keras.callbacks.Callback):
    """Writes energy diagnostics to TensorBoard every N epochs.

    For a fixed set of real images and the samples of fixed latents:
    histograms of real and generated energies (`energy/real`,
    `energy/fake`), their means, the generated samples sorted by energy from
    low (looks real to the discriminator) to high (`samples_by_energy`), and
    the model's own scalars where present (`model/k`, `model/convergence`,
    `model/margin`, `model/pt`: the epoch's logs, or the model's state
    variables `k` and `margin`).

    Args:
        real_images: array `(N, H, W, C)` of real images in `[-1, 1]`; at
            most `num` of them are used.
        log_dir: str. TensorBoard log folder (created if needed).
        every_n_epochs: int. Write after every N-th epoch. Defaults to `1`.
        num: int. Real and generated images to score. Defaults to `256`.
        seed: int. Seed of the generated images' latents. Defaults to `0`.
        directory: str or None. If given, also write PNGs there:
            `energy_epoch_XXXX.png` (histograms, needs matplotlib) and
            `sorted_epoch_XXXX.png` (samples by energy). Defaults to `None`.

    Example:

    ```python
    from ebgan_keras.visual_callbacks import EnergyDiagnostics

    model.fit(data, epochs=10,
              callbacks=[EnergyDiagnostics(real_images[:256], log_dir="runs/a/tb")])
    ```
    """

    def __init__(
        self,
        real_images,
        log_dir,
        every_n_epochs: int = 1,
        num: int = 256,
        seed: int = 0,
        directory=None,
    ) -> None:
        super().__init__()
        self.num = check_positive_int(num, "num")
        real_images = np.asarray(real_images, dtype=np.float32)
        if real_images.ndim != 4 or len(real_images) < 2:
            raise ValueError(
                "`real_images` must be at least 2 images (N, H, W, C) in [-1, 1]. "
                f"Received: real_images with shape {real_images.shape}"
            )
        if log_dir is None:
            raise ValueError(
                "`log_dir` must be a folder for the TensorBoard files. "
                "Received: log_dir=None"
            )
        self.real_images = real_images[: self.num]
        self.log_dir = os.fspath(log_dir)
        self.every_n_epochs = _check_every(every_n_epochs)
        self.seed = int(seed)
        self.directory = None if directory is None else os.fspath(directory)
        self._writer = _SummaryWriter(self.log_dir)
        self.latents = None
        self.last_values = {}
        self._pending = None

    def on_train_begin(self, logs=None):
        if self.latents is None:
            self.latents = keras.ops.convert_to_numpy(
                self.model.sample_latents(len(self.real_images), seed=self.seed)
            )

    def on_epoch_end(self, epoch, logs=None):
        # Written at the next epoch's start (or the end of training), after
        # every callback's `on_epoch_end`, so that end-of-epoch state updates
        # such as MAGAN's margin are seen.
        if (epoch + 1) % self.every_n_epochs == 0:
            self._pending = (epoch + 1, dict(logs or {}))

    def on_epoch_begin(self, epoch, logs=None):
        self._write_pending()

    def _write_pending(self) -> None:
        if self._pending is None:
            return
        step, logs = self._pending
        self._pending = None
        fake = self.model.generate(self.latents)
        energy_real = np.asarray(self.model.energy(self.real_images))
        energy_fake = np.asarray(self.model.energy(fake))
        order = np.argsort(energy_fake)
        shown = order[np.linspace(0, len(order) - 1, min(64, len(order))).astype(int)]
        picture = _pixels(plot.grid(fake[shown], scale=1))

        values = {
            "energy/real_mean": float(energy_real.mean()),
            "energy/fake_mean": float(energy_fake.mean()),
        }
        for name in MODEL_SCALARS:
            if isinstance(getattr(self.model, name, None), keras.Variable):
                value = keras.ops.convert_to_numpy(getattr(self.model, name))
                values[f"model/{name}"] = float(value)
            elif name in logs:
                values[f"model/{name}"] = float(np.asarray(logs[name]))
        self.last_values = values
        self._writer.histogram("energy/real", energy_real, step)
        self._writer.histogram("energy/fake", energy_fake, step)
        self._writer.image("samples_by_energy", picture, step)
        self._writer.scalars(values, step)
        self._writer.flush()
        if self.directory is not None:
            plot.grid(
                fake[shown],
                os.path.join(self.directory, f"sorted_epoch_{step:04d}.png"),
            )
            plot.energy_histogram(
                self.model,
                self.real_images,
                fake,
                path=os.path.join(self.directory, f"energy_epoch_{step:04d}.png"),
            )

    def on_train_end(self, logs=None):
        self._write_pending()
        self._writer.close()
