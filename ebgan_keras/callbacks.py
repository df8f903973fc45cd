"""Callbacks that belong to the models' training rules."""

from __future__ import annotations

import math

import keras
import numpy as np


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


class MAGANMarginUpdate(keras.callbacks.Callback):
    """Applies MAGAN's end-of-epoch rules: pre-training phase and margin.

    `ek.MAGAN.fit` adds it unless one is passed; see `ek.MAGAN`.
    """

    def on_train_begin(self, logs=None):
        # After BackupAndRestore (earlier in the list) has restored the state.
        if self.model.sync_phase():
            _rebuild_step_functions(self.model)

    def on_epoch_end(self, epoch, logs=None):
        if self.model.end_epoch():
            _rebuild_step_functions(self.model)
        if logs is not None:
            logs["margin"] = float(keras.ops.convert_to_numpy(self.model.margin))


def _rebuild_step_functions(model) -> None:
    """Retraces the train and test steps after the model's phase changed."""
    model.make_train_function(force=True)
    model.test_function = None  # rebuilt by the next evaluate


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


from ebgan_keras.metrics.callbacks import FIDMonitor  # noqa: E402
from ebgan_keras.visual_callbacks import EnergyDiagnostics  # noqa: E402
from ebgan_keras.visual_callbacks import SampleGrid  # noqa: E402

__all__ = [
    "EnergyDiagnostics",
    "FIDMonitor",
    "HalveLearningRateOnStall",
    "MAGANMarginUpdate",
    "SampleGrid",
    "TerminateOnNonFinite",
]
