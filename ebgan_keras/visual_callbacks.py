"""Callbacks that show training as it happens: sample grids and energy diagnostics.

Both write PNG files and/or TensorBoard event files. Event files are written
with `tf.summary` in eager mode on numpy values, which works on every Keras
backend (TensorFlow is a dependency of the library); open them with
`tensorboard --logdir LOG_DIR`.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from ebgan_keras import plot

__all__ = ["EnergyDiagnostics", "SampleGrid"]

#: The model scalars written by `EnergyDiagnostics` when the model has them.
MODEL_SCALARS = ("k", "convergence", "margin", "pt")


class _SummaryWriter:
    """A lazily created `tf.summary` file writer usable from any backend."""

    def __init__(self, log_dir: str) -> None:
        self.log_dir = os.fspath(log_dir)
        self._writer = None

    def _get(self):
        if self._writer is None:
            import tensorflow as tf

            os.makedirs(self.log_dir, exist_ok=True)
            self._writer = tf.summary.create_file_writer(self.log_dir)
        return self._writer

    def scalars(self, values: dict, step: int) -> None:
        import tensorflow as tf

        with self._get().as_default():
            for name, value in values.items():
                tf.summary.scalar(name, float(value), step=step)

    def image(self, name: str, picture: np.ndarray, step: int) -> None:
        import tensorflow as tf

        with self._get().as_default():
            tf.summary.image(name, picture[None], step=step)

    def histogram(self, name: str, values: np.ndarray, step: int) -> None:
        import tensorflow as tf

        with self._get().as_default():
            tf.summary.histogram(name, np.asarray(values, np.float32), step=step)

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


def _check_positive(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return int(value)


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
        self.num = _check_positive(num, "num")
        self.seed = int(seed)
        self.nrow = nrow
        self.scale = _check_positive(scale, "scale")
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
        self.num = _check_positive(num, "num")
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

    def on_train_begin(self, logs=None):
        if self.latents is None:
            self.latents = keras.ops.convert_to_numpy(
                self.model.sample_latents(len(self.real_images), seed=self.seed)
            )

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        logs = logs or {}
        step = epoch + 1
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
            if name in logs:
                values[f"model/{name}"] = float(np.asarray(logs[name]))
            elif isinstance(getattr(self.model, name, None), keras.Variable):
                value = keras.ops.convert_to_numpy(getattr(self.model, name))
                values[f"model/{name}"] = float(value)
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
        self._writer.close()
