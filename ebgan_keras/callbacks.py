"""Callbacks of training: exact resume, BEGAN's learning-rate rule, logs, pictures."""

from __future__ import annotations

import json
import math
import os
import shutil

import keras
import numpy as np

from ebgan_keras import backend
from ebgan_keras import files
from ebgan_keras.backend import keras_internals
from ebgan_keras.models.hooks import ModelHooks
from ebgan_keras.models.hooks import TerminateOnNonFinite


class MAGANMarginUpdate(ModelHooks):
    """Applies MAGAN's end-of-epoch rules: pre-training phase and margin.

    Kept for code that passes it explicitly: every model's `fit` adds
    `ek.models.ModelHooks`, which calls the model's own `on_epoch_end` (where
    `ek.MAGAN` applies its rule), unless one is passed; this is one, so the
    rule is never applied twice. See `ek.MAGAN`.
    """


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` with atomic files and exact mid-epoch resume.

    Keras's callback writes its weights file in place (a kill during the
    write leaves a corrupt file) and, on restore, restarts the interrupted
    epoch from its first batch, training those batches twice. This one
    writes each file to a temporary name, fsyncs and renames it (atomic on
    POSIX and Windows), after checking the free disk space, so a
    half-written checkpoint is never loaded and a full disk never destroys
    the last good one; and it resumes at
    the step after the last backup: the position comes from the restored
    step counter (`model.optimizer.iterations`, saved with the weights, so it
    can never disagree with them), and the batches of the interrupted epoch
    already trained on are drawn from the data and skipped. Everything else
    is in the weights file: both optimizers, `k`, `margin` and MAGAN's phase
    and epoch sums, and the seed generator of the latents. With the same
    data order (`shuffle=False`, or a dataset whose order does not depend on
    how often it was iterated) the resumed run equals an uninterrupted one.
    Epoch-averaged logs of the interrupted epoch cover only its resumed part.

    Args:
        backup_dir: str. Folder of the backup; created if missing.
        save_freq: `"epoch"` or int. Back up at the end of each epoch, or
            every `save_freq` training steps. Defaults to `"epoch"`.
        double_checkpoint: bool. Also keep the previous backup (`.bkp`).
            Defaults to `False`.
        delete_checkpoint: bool. Delete the backup when training ends.
            Defaults to `True`.

    Example:

    ```python
    import ebgan_keras as ek

    backup = ek.callbacks.BackupAndRestore("run/backup", save_freq=100)
    model.fit(images, epochs=20, batch_size=64, shuffle=False, callbacks=[backup])
    # Killed? Run the same lines again: training continues at the next step.
    ```
    """

    def __init__(
        self,
        backup_dir: str,
        save_freq="epoch",
        double_checkpoint: bool = False,
        delete_checkpoint: bool = True,
    ) -> None:
        super().__init__(
            backup_dir,
            save_freq=save_freq,
            double_checkpoint=double_checkpoint,
            delete_checkpoint=delete_checkpoint,
        )
        self._batches_to_skip = 0

    def _load_model(self):
        self._batches_to_skip = 0
        if not os.path.exists(self._weights_path):
            # Metadata without its weights (set aside as unreadable, or never
            # written) describes nothing to restore.
            return
        super()._load_model()
        steps = (self.params or {}).get("steps")
        if not steps:
            return
        done = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        keras_internals.set_initial_epoch(self.model, done // steps)
        self._batches_to_skip = done % steps
        self._current_epoch = done // steps

    def on_epoch_begin(self, epoch, logs=None):
        if self._batches_to_skip:
            # Installed here, after every `on_train_begin` (which may rebuild
            # the train function), for the resumed epoch only.
            self.model.train_function = backend.skip_batches(
                self.model, self.model.train_function, self._batches_to_skip
            )
            self._batches_to_skip = 0

    def _save_model(self):
        # Each file goes through `ebgan_keras.files.atomic_write`: written
        # under a temporary name, fsynced, renamed; the free space is checked
        # first, so a full disk is an error before h5py writes anything.
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint:
            for path, previous in (
                (self._weights_path, self._prev_weights_path),
                (self._training_metadata_path, self._prev_training_metadata_path),
            ):
                if os.path.exists(path):
                    files.atomic_write(
                        previous,
                        lambda target, source=path: shutil.copyfile(source, target),
                    )
        files.save_weights(self.model, self._weights_path)
        # Written after the weights it describes.
        files.write_json(
            self._training_metadata_path,
            {"epoch": self._current_epoch, "batch": self._last_batch_seen},
        )


class HalveLearningRateOnStall(keras.callbacks.Callback):
    """BEGAN's learning-rate rule: halve both learning rates when stalled.

    When the epoch's convergence measure (`convergence` in the logs) has not
    improved by `min_delta` for `patience` epochs, both the discriminator's
    and the generator's learning rates are multiplied by `factor`.

    Args:
        monitor: str. The log to watch. Defaults to `"convergence"`.
        patience: int. Epochs without improvement before halving.
            Defaults to `2`.
        factor: float. Multiplier of the learning rates. Defaults to `0.5`.
        min_delta: float. Smallest decrease counted as improvement.
            Defaults to `0.0`.
        min_learning_rate: float. Learning rates are not lowered below it.
            Defaults to `1e-7`.
        verbose: int. Print a line when the rates change. Defaults to `0`.
    """

    def __init__(
        self,
        monitor: str = "convergence",
        patience: int = 2,
        factor: float = 0.5,
        min_delta: float = 0.0,
        min_learning_rate: float = 1e-7,
        verbose: int = 0,
    ) -> None:
        super().__init__()
        if not 0.0 < factor < 1.0:
            raise ValueError(f"`factor` must be in (0, 1). Received: factor={factor}")
        if patience < 1:
            raise ValueError(f"`patience` must be >= 1. Received: patience={patience}")
        self.monitor = monitor
        self.patience = int(patience)
        self.factor = float(factor)
        self.min_delta = float(min_delta)
        self.min_learning_rate = float(min_learning_rate)
        self.verbose = verbose
        self.best = math.inf
        self.wait = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(
                f"HalveLearningRateOnStall monitors {self.monitor!r}, which is "
                f"not in the logs. Received logs: {sorted(logs)}"
            )
        value = float(np.asarray(logs[self.monitor]))
        if value < self.best - self.min_delta:
            self.best = value
            self.wait = 0
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        self.wait = 0
        for optimizer in (self.model.d_optimizer, self.model.g_optimizer):
            rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
            optimizer.learning_rate = max(rate * self.factor, self.min_learning_rate)
        if self.verbose:
            rate = float(
                keras.ops.convert_to_numpy(self.model.d_optimizer.learning_rate)
            )
            print(
                f"\nEpoch {epoch + 1}: {self.monitor} stalled; learning rates {rate:g}"
            )


class JSONHistory(keras.callbacks.Callback):
    """Keeps a `history.json` of the epoch logs up to date, across resumes.

    After every epoch the file holds one list per log name, one value per
    epoch so far (a resumed run continues the lists of the interrupted one;
    a log that starts later, such as MAGAN's `g_loss` after pre-training,
    has `null` for the epochs before). Written atomically.

    Args:
        path: str. The JSON file.

    Example:

    ```python
    model.fit(data, epochs=10, callbacks=[ek.callbacks.JSONHistory("run/history.json")])
    ```
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def on_train_begin(self, logs=None):
        self.history = {}
        if os.path.isfile(self.path):
            with open(self.path) as handle:
                self.history = json.load(handle)

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            values = self.history.setdefault(name, [])[:epoch]
            values += [None] * (epoch - len(values))
            self.history[name] = [*values, float(value)]
        for name in self.history:
            self.history[name] = self.history[name][: epoch + 1]
        with open(self.path + ".tmp", "w") as handle:
            json.dump(self.history, handle, indent=1)
        os.replace(self.path + ".tmp", self.path)


from ebgan_keras.metrics.callbacks import FIDMonitor  # noqa: E402
from ebgan_keras.visual_callbacks import EnergyDiagnostics  # noqa: E402
from ebgan_keras.visual_callbacks import SampleGrid  # noqa: E402

__all__ = [
    "BackupAndRestore",
    "EnergyDiagnostics",
    "FIDMonitor",
    "HalveLearningRateOnStall",
    "JSONHistory",
    "MAGANMarginUpdate",
    "SampleGrid",
    "TerminateOnNonFinite",
]
