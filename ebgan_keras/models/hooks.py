"""The two callbacks that every model's `fit` adds: its epoch hooks and a NaN guard."""

from __future__ import annotations

import math

import keras
import numpy as np


class ModelHooks(keras.callbacks.Callback):
    """Runs the model's own training-level hooks inside `fit`.

    Calls `model.on_train_begin()` when training starts (after any callback
    earlier in the list, such as `BackupAndRestore`, has restored the state)
    and `model.on_epoch_end(epoch, logs)` after each epoch. Either hook may
    return `True`: the model's compiled step then depends on state the hook
    changed (MAGAN leaving pre-training), so the train and test functions are
    rebuilt. Every model's `fit` adds one, unless one is passed; so a model
    rule (MAGAN's margin) lives in the model and applies exactly once.

    Example:

    ```python
    model.fit(images, epochs=5, callbacks=[ModelHooks()])  # what `fit` adds
    ```
    """

    def on_train_begin(self, logs=None):
        if self.model.on_train_begin():
            _rebuild_step_functions(self.model)

    def on_epoch_end(self, epoch, logs=None):
        if self.model.on_epoch_end(epoch, logs):
            _rebuild_step_functions(self.model)


def _rebuild_step_functions(model) -> None:
    """Retraces the train and test steps after the model's phase changed."""
    model.make_train_function(force=True)
    model.test_function = None  # rebuilt by the next evaluate


class TerminateOnNonFinite(keras.callbacks.Callback):
    """Stops training with a clear error at the first non-finite loss.

    Every model's `fit` adds it first in the callback list, so no checkpoint
    callback sees the step. The training step zeroes the gradients of a
    non-finite loss, so the weights stay finite.

    Args:
        monitor: tuple of str. Logs to check. Defaults to
            `("d_loss", "g_loss")`.
    """

    def __init__(self, monitor: tuple[str, ...] = ("d_loss", "g_loss")) -> None:
        super().__init__()
        self.monitor = tuple(monitor)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        bad = {
            name: float(np.asarray(logs[name]))
            for name in self.monitor
            if name in logs and not math.isfinite(float(np.asarray(logs[name])))
        }
        if bad:
            self.model.stop_training = True
            values = ", ".join(f"{name}={value}" for name, value in bad.items())
            raise FloatingPointError(
                f"Training stopped: non-finite loss at epoch {self._epoch + 1}, "
                f"batch {batch + 1} ({values}). The weights were not updated "
                "with it. Check the data for NaN/Inf values (images must be "
                "finite floats in [-1, 1]) or lower the learning rates."
            )


__all__ = ["ModelHooks", "TerminateOnNonFinite"]
