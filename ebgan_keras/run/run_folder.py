"""A run folder: its file names, the check of its settings, its provenance.

The training driver (`ebgan_keras.run.training.train`) trains in a run
folder; this module holds what the folder is: the fixed names of its files,
the refusal to continue a run with other settings, the check of a
checkpoint (a torn one is set aside), and `train_info.json` (wall time,
steps, versions, machine), which the zoo's cards read too.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import sys
import time
import warnings

from ebgan_keras import files
from ebgan_keras.run.config import ConfigError

RUN_CONFIG_FILE = "run_config.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
INFO_FILE = "train_info.json"
BACKUP_DIR = "backup"
CHECKPOINT_FILE = "latest.weights.h5"


def final_path(run_dir: str) -> str:
    """The finished model of a run folder."""
    return os.path.join(run_dir, MODEL_FILE)


def nothing_to_train(run_dir: str, done: int, steps: int, epochs: int) -> str:
    """The line of a rerun that asks for no more epochs than were trained."""
    return (
        f"Nothing was trained: the run in {run_dir} has already done "
        f"{done // steps} epoch(s) ({done} steps) and --epochs asks for {epochs}; "
        f"{MODEL_FILE} is unchanged (raise the epochs to train further)."
    )


def check_settings(run_dir: str, config: dict) -> None:
    """A run folder holds one run: refuse to continue it with other settings."""
    previous = files.read_json(os.path.join(run_dir, RUN_CONFIG_FILE))
    started = os.path.isdir(os.path.join(run_dir, BACKUP_DIR)) or os.path.isfile(
        os.path.join(run_dir, MODEL_FILE)
    )
    if previous is None or not started:
        return
    changed = []
    for key in sorted(set(previous) | set(config)):
        old, new = previous.get(key), config.get(key)
        if key == "training" and isinstance(old, dict) and isinstance(new, dict):
            for field in sorted(set(old) | set(new)):
                if field != "epochs" and old.get(field) != new.get(field):
                    changed.append(
                        (f"training.{field}", old.get(field), new.get(field))
                    )
        elif old != new:
            changed.append((key, old, new))
    if changed:
        details = ", ".join(f"{key}: {old!r} -> {new!r}" for key, old, new in changed)
        raise ConfigError(
            f"{run_dir!r} holds a run with other settings ({details}); continue it "
            "with the same settings (only the epochs may change) or choose "
            "another folder."
        )


def usable_checkpoint(path: str, aside_dir: str | None) -> bool:
    """Whether a checkpoint file reads whole; a torn one is set aside.

    A torn file (a disk that lost part of a write despite the fsync) is moved
    to `aside_dir`, kept for inspection, and training starts from the last
    good state: the finished model if there is one, else the beginning.
    `aside_dir=None` (a worker of a distributed run, which never writes into
    the run folder) only reads.
    """
    if not os.path.isfile(path):
        return False
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            handle.visititems(
                lambda _, item: item[()] if isinstance(item, h5py.Dataset) else None
            )
        return True
    except Exception as error:  # noqa: BLE001 - any unreadable file is set aside
        if aside_dir is None:
            return False
        name = f"{os.path.basename(path)}.unreadable-{int(time.time())}"
        aside = os.path.join(aside_dir, name)
        os.replace(path, aside)
        warnings.warn(
            f"The checkpoint {path!r} is unreadable ({error}); it was moved to "
            f"{aside!r} and training starts again from the last good state.",
            stacklevel=3,
        )
        return False


class RunFolder:
    """Where a process of a run writes, and the checkpoint it resumes from.

    The chief writes into the run folder. Every other process runs the same
    steps, saves and sample grids, in step: reading a distributed variable or
    running the generator may need a collective (TensorFlow's multi-worker
    rule: every worker saves; on JAX a computation on global arrays needs
    every process). It writes into a temporary folder, seeded with a copy of
    the chief's checkpoint so that its callbacks resume exactly as the
    chief's do.
    """

    def __init__(self, run_dir: str, chief: bool) -> None:
        self.run_dir = run_dir
        self.chief = chief
        self.backup_dir = os.path.join(run_dir, BACKUP_DIR)
        self.checkpoint = os.path.join(self.backup_dir, CHECKPOINT_FILE)
        self.final = os.path.join(run_dir, MODEL_FILE)
        self.has_checkpoint = self.finished_before = False
        self.lock = self.worker_dir = None
        self.write_dir = run_dir

    def open(self, config: dict) -> None:
        """Checks and locks the folder (the chief), checks the settings,
        reads the checkpoint, and makes a worker's own folder: before data
        and model are built, so a bad folder or a second writer fails at
        once."""
        import tempfile

        if self.chief:
            self.lock = files.claim_run_folder(self.run_dir, RUN_CONFIG_FILE)
        check_settings(self.run_dir, config)
        if self.chief:
            for folder in (self.run_dir, self.backup_dir):
                files.remove_partials(folder)
        self.has_checkpoint = usable_checkpoint(
            self.checkpoint, self.run_dir if self.chief else None
        )
        if self.chief and not self.has_checkpoint and os.path.isfile(self.final):
            # A kill while the finished run removed its backup left a part.
            files.remove_folder(self.backup_dir)
        if not self.chief:
            self.worker_dir = tempfile.mkdtemp(
                prefix=f"ebgan_keras_worker_{os.getpid()}_"
            )
            self.write_dir = self.worker_dir
            if os.path.isdir(self.backup_dir):
                shutil.copytree(
                    self.backup_dir,
                    os.path.join(self.worker_dir, BACKUP_DIR),
                    dirs_exist_ok=True,
                )

    def write_run_config(self, config: dict) -> None:
        if self.chief:
            files.write_json(os.path.join(self.run_dir, RUN_CONFIG_FILE), config)

    def restore(self, model) -> int:
        """Loads the checkpoint (or the finished model); returns the steps done."""
        import keras

        if self.has_checkpoint:
            model.load_weights(self.checkpoint)
        elif os.path.isfile(self.final):
            # A finished run trained further: continue from its model.
            model.load_weights(self.final)
            self.finished_before = True
        return int(keras.ops.convert_to_numpy(model.optimizer.iterations))

    def finish(self, model) -> None:
        """Saves `model.keras`; the chief then drops the checkpoint."""
        files.save_model(model, os.path.join(self.write_dir, MODEL_FILE))
        if self.chief:
            # The finished model is the run's one checkpoint from now on.
            files.remove_folder(self.backup_dir)

    def close(self) -> None:
        if self.worker_dir is not None:
            shutil.rmtree(self.worker_dir, ignore_errors=True)
        if self.lock is not None:
            self.lock.release()


def versions() -> dict:
    """The versions of Python, Keras, the backends in use and this package."""
    import keras

    from ebgan_keras.version import __version__

    result = {"python": platform.python_version(), "keras": keras.__version__}
    for module in ("tensorflow", "jax", "torch", "numpy"):
        if module in sys.modules:
            result[module] = getattr(sys.modules[module], "__version__", "?")
    result["ebgan_keras"] = __version__
    return result


def machine() -> str:
    """The CPU model and count of this machine, for provenance."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()}"


def run_info_callback(run_dir: str, cluster=None, mixed_precision=None):
    import keras

    class RunInfo(keras.callbacks.Callback):
        """Keeps `train_info.json` (wall time, steps, provenance) across resumes."""

        path = os.path.join(run_dir, INFO_FILE)

        def on_train_begin(self, logs=None):
            self.info = files.read_json(self.path, {"wall_time_s": 0.0, "segments": 0})
            self.info["segments"] += 1
            self.info["backend"] = keras.backend.backend()
            self.info["versions"] = versions()
            self.info["machine"] = machine()
            if cluster is not None and cluster.mode != "none":
                self.info["distribute"] = {
                    "mode": cluster.mode,
                    "processes": cluster.num_processes,
                    "replicas": cluster.num_replicas,
                }
            if mixed_precision is not None:
                self.info["mixed_precision"] = mixed_precision
            self.start = time.perf_counter()
            self.base_seconds = self.info["wall_time_s"]

        def on_epoch_end(self, epoch, logs=None):
            self.info["epochs_done"] = epoch + 1
            self._write()

        def on_train_end(self, logs=None):
            # A run killed between its checkpoint and this file resumes with
            # no epoch left to train: the file is still completed here.
            steps = (self.params or {}).get("steps")
            if "epochs_done" not in self.info and steps:
                done = keras.ops.convert_to_numpy(self.model.optimizer.iterations)
                self.info["epochs_done"] = int(done) // int(steps)
            self._write()

        def _write(self):
            self.info["wall_time_s"] = (
                self.base_seconds + time.perf_counter() - self.start
            )
            self.info["date"] = datetime.date.today().isoformat()
            self.info["steps_done"] = int(
                keras.ops.convert_to_numpy(self.model.optimizer.iterations)
            )
            files.write_json(self.path, self.info)

    return RunInfo()


__all__ = [
    "BACKUP_DIR",
    "RunFolder",
    "CHECKPOINT_FILE",
    "HISTORY_FILE",
    "INFO_FILE",
    "MODEL_FILE",
    "RUN_CONFIG_FILE",
    "check_settings",
    "machine",
    "run_info_callback",
    "usable_checkpoint",
    "versions",
]
