"""One training driver: a run config trained in a run folder, resumable.

`ebgan-keras train` and `ebgan-keras zoo build` (and `ek.zoo.build`) both
train through `train`. A run folder holds:

- `run_config.json`: the run's config (written once training has started;
  a rerun with other settings, `training.epochs` aside, is refused);
- `backup/`: the checkpoint of the last finished epoch (weights, both
  optimizers, model state such as `k` and `margin`, the seed generator),
  written atomically; removed once `model.keras` is written;
- `history.json` and `train_info.json`: the epoch logs and the wall time,
  backend and steps, kept across resumes;
- `samples/epoch_XXXX.png` (optional) and, at the end, `model.keras`;
- `.lock`: held while a process trains there.

Resume is exact: the training data is one seeded stream (`repeat()` of a
shuffled dataset whose order depends only on the seed), and a resumed run
skips the batches that the checkpoint has already seen, so a run killed at
any point and rerun ends with the same weights as an uninterrupted run, on
the same backend and machine.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import shutil
import sys
import time
import warnings

from ebgan_keras import files
from ebgan_keras.run.builder import build_model
from ebgan_keras.run.builder import compile_model
from ebgan_keras.run.builder import model_class
from ebgan_keras.run.config import ConfigError
from ebgan_keras.run.config import merge
from ebgan_keras.run.config import validate

#: Shorter data sets are repeated so that an epoch has at least this many steps.
MIN_STEPS_PER_EPOCH = 100
RUN_CONFIG_FILE = "run_config.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
INFO_FILE = "train_info.json"
BACKUP_DIR = "backup"
CHECKPOINT_FILE = "latest.weights.h5"
#: The Keras dtype policies of `train(mixed_precision=...)`.
MIXED_PRECISION_POLICIES = ("mixed_float16", "mixed_bfloat16")


class DataError(ValueError):
    """The training data cannot be loaded (name, split, offline, shape)."""


def resolve_config(
    config: dict,
    epochs: int | None = None,
    steps_per_epoch: int | None = None,
    data: str | None = None,
    seed: int | None = None,
    batch_size: int | None = None,
    image_size: int | None = None,
    learning_rate=None,
    data_dir: str | None = None,
) -> dict:
    """A config with the run's overrides applied, validated, and the model's
    defaults that depend on the run's length filled in (`config_for_epochs`).

    Every other argument overrides the `training` field of its name; `None`
    keeps the config's value.

    Args:
        config: dict. A run config.
        epochs: int. Epochs to train.
        steps_per_epoch: int. Steps per epoch.
        data: str. An `ek.data.load` name.
        seed: int. Seed of data order and latents.
        batch_size: int. Images per step.
        image_size: int. Square size to resize images to.
        learning_rate: float or dict. Of both optimizers, or of each.
        data_dir: str. The TFDS data folder.

    Returns:
        A new, validated config.
    """
    overrides = {
        key: value
        for key, value in (
            ("epochs", epochs),
            ("steps_per_epoch", steps_per_epoch),
            ("data", data),
            ("seed", seed),
            ("batch_size", batch_size),
            ("image_size", image_size),
            ("learning_rate", learning_rate),
            ("data_dir", data_dir),
        )
        if value is not None
    }
    result = validate(merge(config, {"training": overrides}))
    # Defaults that depend on the run's length (MAGAN's pre-training) are
    # fixed here, so the run folder records them and a resume keeps them.
    cls = model_class(result["class"])
    result["model"] = cls.config_for_epochs(
        result["model"], result["training"]["epochs"]
    )
    return result


def load_training_data(config: dict, data: str | None = None, **kwargs):
    """The training `tf.data.Dataset` of a config (batched, shuffled, seeded).

    Args:
        config: dict. A validated run config.
        data: str. Another data set name than `training.data`.
        **kwargs: other arguments of `ek.data.load` (e.g. `batch_size`).

    Returns:
        A `tf.data.Dataset` of float32 image batches in `[-1, 1]`.
    """
    from ebgan_keras import data as ek_data

    training = config["training"]
    name = data or training["data"]
    if not name:
        raise DataError(
            "no training data: give a data set name (`--data mnist_subset`, or "
            "`training.data` in the config). Received: data=None"
        )
    shape = config.get("image_shape")
    options = {
        "split": training["split"],
        "batch_size": training["batch_size"],
        "image_size": training["image_size"],
        "crop": training["crop"],
        "seed": training["seed"],
        "channels": shape[2] if shape else None,
        "data_dir": training["data_dir"],
    }
    options.update(kwargs)
    try:
        return ek_data.load(name, **options)
    except (
        ValueError,
        TypeError,
        ek_data.DatasetUnavailableError,
        ek_data.OfflineDataError,
    ) as error:
        raise DataError(f"data {name!r}: {error}") from None


def resolve_mixed_precision(value: str | None) -> str | None:
    """The Keras dtype policy of a `mixed_precision` setting.

    Args:
        value: str or None. `None` (float32), `"auto"` (`"mixed_float16"`
            when the backend computes on a GPU, else `None`), or a policy of
            `MIXED_PRECISION_POLICIES`.

    Returns:
        A policy name, or `None` for float32.

    Example:

    >>> resolve_mixed_precision("mixed_bfloat16")
    'mixed_bfloat16'
    """
    if value == "auto":
        from ebgan_keras import backend

        return "mixed_float16" if backend.gpu_available() else None
    if value not in (None, *MIXED_PRECISION_POLICIES):
        raise ConfigError(
            f"`mixed_precision` must be one of {', '.join(MIXED_PRECISION_POLICIES)}, "
            f"'auto' or None. Received: mixed_precision={value!r}"
        )
    return value


def _check_settings(run_dir: str, config: dict) -> None:
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


def _usable_checkpoint(path: str, aside_dir: str | None) -> bool:
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


def versions() -> dict:
    """The versions of Python, Keras, the backends in use and this package."""
    import keras

    import ebgan_keras

    result = {"python": platform.python_version(), "keras": keras.__version__}
    for module in ("tensorflow", "jax", "torch", "numpy"):
        if module in sys.modules:
            result[module] = getattr(sys.modules[module], "__version__", "?")
    result["ebgan_keras"] = ebgan_keras.__version__
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


def _run_info_callback(run_dir: str, cluster=None, mixed_precision=None):
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


def _synchronized_batch_norm(model, cluster, synchronized: bool) -> None:
    """Batch norm on the global batch under `tf.distribute` with several replicas.

    Keras's batch norm takes per-replica statistics unless `synchronized`; a
    distributed run then differs from one process. The flag is set for
    training only and cleared before saving (`synchronized=True` is refused
    by Keras on the other backends, and a saved model is backend-neutral).
    JAX's `DataParallel` runs one global step, whose statistics are global.
    """
    if cluster.strategy is None or cluster.num_replicas == 1:
        return
    import keras

    for network in (model.generator, model.discriminator):
        for layer in network._flatten_layers():
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = synchronized


class _ReplayedStream:
    """The batches of one iterator of `stream`, replayed to each new iterator.

    `ek.data`'s seeded shuffle reshuffles each iteration: the k-th iterator
    of the pipeline reads the k-th order. Keras creates iterators before the
    one it trains on (peeks at a batch), more of them under a `tf.distribute`
    strategy than without, so a distributed run would train on another order
    than one process. This generator function (for
    `tf.data.Dataset.from_generator`) reads one iterator of `stream`, the
    first: each call replays the batches drawn so far, then continues; once
    a later call starts, the earlier ones stop. So every run, distributed or
    not, trains on the first order of its seed, and only the batches of the
    peeks (their prefetch included) are held in memory.
    """

    def __init__(self, stream) -> None:
        import threading

        self.iterator = iter(stream)
        self.seen = []
        self.generation = 0
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.generation += 1
            generation = self.generation
            if self.seen is None:
                raise RuntimeError(
                    "the training data was iterated again after more than "
                    f"{_REPLAYED_BATCHES} batches; its order would differ from "
                    "one process's"
                )
            replay = list(self.seen)
        yield from replay
        while True:
            with self.lock:
                if generation != self.generation:
                    return  # a newer iterator took over
                try:
                    batch = next(self.iterator)
                except StopIteration:
                    return
                if self.seen is not None:
                    self.seen.append(batch)
                    if len(self.seen) > _REPLAYED_BATCHES:
                        self.seen = None  # training is under way: no copies
            yield batch


#: Batches `_ReplayedStream` keeps for a later iterator (Keras's peek and its
#: prefetch draw a few).
_REPLAYED_BATCHES = 64


def _replayed(stream):
    if not hasattr(stream, "prefetch"):
        # An `ek.data.Batches` (no TensorFlow): index-addressed, every
        # iterator reads the same batches, so there is nothing to replay.
        return stream
    import tensorflow as tf

    return tf.data.Dataset.from_generator(
        _ReplayedStream(stream), output_signature=stream.element_spec
    )


def _check_global_batch(config: dict, cluster) -> None:
    batch_size = config["training"]["batch_size"]
    if batch_size % cluster.num_replicas:
        raise ConfigError(
            f"the global batch size must be a multiple of the {cluster.num_replicas} "
            f"replicas of the {cluster.mode!r} run (each takes an equal slice). "
            f"Received: training.batch_size={batch_size}"
        )


def train(
    config: dict,
    run_dir: str,
    verbose: int = 2,
    callbacks=(),
    sample_grids: bool = False,
    announce=None,
    cluster=None,
    mixed_precision: str | None = None,
):
    """Trains a run config in a run folder; rerun the same call to resume.

    Distributed (`cluster` from `ek.run.distribute.setup`): every process runs
    this same call with the same arguments; `training.batch_size` is the
    global batch, split over the replicas of all processes. The chief
    (process 0) alone writes into `run_dir` (lock, run config, checkpoint,
    history, sample grids, `model.keras`); the other processes run the same
    saves (which may need collectives) into a temporary folder that is
    removed at the end, and read the chief's checkpoint to resume, so
    `run_dir` must be on a file system that every process sees. Batch norm
    uses global-batch statistics.

    Args:
        config: dict. A validated run config (`resolve_config` applies the
            command line's overrides).
        run_dir: str. The run folder (created).
        verbose: int. Keras `fit` verbosity. Defaults to `2`.
        callbacks: sequence of `keras.callbacks.Callback`. More callbacks
            (run by every process of a distributed run).
        sample_grids: bool. Write a grid of samples of fixed latents after
            every epoch to `samples/`. Defaults to `False`.
        announce: callable. Called with one line describing the run before
            training starts (the CLI prints it). Defaults to `None`.
        cluster: `ek.run.distribute.Cluster`. Defaults to the one of the last
            `ek.run.distribute.setup` (one process if none).
        mixed_precision: str. A Keras dtype policy for the model,
            `"mixed_float16"` or `"mixed_bfloat16"`, or `"auto"`
            (`"mixed_float16"` on a GPU, float32 otherwise); `None` takes the
            config's `training.mixed_precision` (whose `null` keeps the
            global policy). Recorded in `train_info.json`. Defaults to `None`.

    Returns:
        The trained model (also saved as `run_dir/model.keras`).

    Raises:
        ConfigError: bad settings, or other settings than the folder's run.
        DataError: the data cannot be loaded.
        files.RunFolderError: the folder is unwritable, full or in use.

    Example:

    ```python
    from ebgan_keras.run import config
    from ebgan_keras.run import training

    run = training.resolve_config(config.load_config("ebgan_pt"),
                                  data="mnist_subset", epochs=5)
    model = training.train(run, "runs/quickstart")
    ```
    """
    import tempfile

    import keras

    from ebgan_keras import backend
    from ebgan_keras.callbacks import BackupAndRestore
    from ebgan_keras.callbacks import JSONHistory
    from ebgan_keras.run import distribute

    cluster = cluster or distribute.current()
    chief = cluster.is_chief
    training = config["training"]
    mixed_precision = resolve_mixed_precision(
        training.get("mixed_precision") if mixed_precision is None else mixed_precision
    )
    _check_global_batch(config, cluster)
    # The folder is checked and locked before data and model are built, so a
    # bad folder or a second writer fails at once. Only the chief writes.
    lock = None
    worker_dir = None
    if chief:
        files.check_writable(run_dir)
        lock = files.RunFolderLock(run_dir).acquire()
    try:
        _check_settings(run_dir, config)
        backup_dir = os.path.join(run_dir, BACKUP_DIR)
        if chief:
            for folder in (run_dir, backup_dir):
                files.remove_partials(folder)
        checkpoint = os.path.join(backup_dir, CHECKPOINT_FILE)
        has_checkpoint = _usable_checkpoint(checkpoint, run_dir if chief else None)
        write_dir = run_dir
        if not chief:
            # Every process runs the same steps, saves and sample grids, in
            # step: reading a distributed variable or running the generator
            # may need a collective (TensorFlow's multi-worker rule: every
            # worker saves; on JAX a computation on global arrays needs every
            # process). The chief writes into the run folder, the others into
            # a temporary folder, seeded with a copy of the chief's checkpoint
            # so that their callbacks resume exactly as the chief's do.
            worker_dir = tempfile.mkdtemp(prefix=f"ebgan_keras_worker_{os.getpid()}_")
            write_dir = worker_dir
            if os.path.isdir(backup_dir):
                shutil.copytree(
                    backup_dir, os.path.join(worker_dir, BACKUP_DIR), dirs_exist_ok=True
                )

        dataset = load_training_data(config)
        image_shape = tuple(int(d) for d in dataset.element_spec.shape[1:])
        expected = config.get("image_shape")
        if expected is not None and tuple(expected) != image_shape:
            raise DataError(
                f"the data gives images of shape {image_shape}, the config's "
                f"`image_shape` is {tuple(expected)}. Received: data "
                f"{training['data']!r}"
            )
        batches = int(dataset.cardinality())
        # Steps per compiled call: a measured choice per backend (see the
        # adapters' STEPS_PER_EXECUTION).
        per_call = backend.STEPS_PER_EXECUTION
        if cluster.strategy is not None:
            # A loop of steps around collectives does not run under
            # `tf.distribute` (TensorFlow 2.21: "You must feed a value for
            # placeholder tensor" in multi-worker mode): one step per call.
            per_call = 1
        steps = training["steps_per_epoch"]
        if steps is None:
            if batches < 1:
                raise DataError(
                    f"the data {training['data']!r} gives no full batch of "
                    f"{training['batch_size']} images; lower the batch size."
                )
            steps = max(batches, MIN_STEPS_PER_EPOCH)
            steps = int(math.ceil(steps / per_call) * per_call)
        if steps % per_call:
            per_call = 1
        epochs = training["epochs"]

        keras.utils.set_random_seed(training["seed"])
        policy = keras.config.dtype_policy()
        if mixed_precision is not None:
            keras.config.set_dtype_policy(mixed_precision)
        try:
            with cluster.scope():
                model = build_model(config, image_shape)
                compile_model(model, config, steps_per_execution=per_call)
        finally:
            keras.config.set_dtype_policy(policy)

        final = os.path.join(run_dir, MODEL_FILE)
        if has_checkpoint:
            model.load_weights(checkpoint)
        elif os.path.isfile(final):
            # A finished run trained further: continue from its model.
            model.load_weights(final)
        done = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        if done >= epochs * steps and not has_checkpoint and os.path.isfile(final):
            return model
        if chief:
            files.write_json(os.path.join(run_dir, RUN_CONFIG_FILE), config)
        # One seeded stream for the whole run; a resumed run skips what the
        # checkpoint has seen (the callback skips within a resumed epoch).
        stream = _replayed(dataset.repeat().skip(done - done % steps))
        run_callbacks = [
            BackupAndRestore(
                os.path.join(write_dir, BACKUP_DIR), delete_checkpoint=False
            ),
            JSONHistory(os.path.join(write_dir, HISTORY_FILE)),
            _run_info_callback(write_dir, cluster, mixed_precision),
        ]
        if sample_grids:
            from ebgan_keras.visual_callbacks import SampleGrid

            run_callbacks.append(
                SampleGrid(
                    os.path.join(write_dir, "samples"), num=64, seed=training["seed"]
                )
            )
        if announce is not None and chief:
            where = "" if cluster.mode == "none" else f", {cluster.describe()}"
            announce(
                f"Training {config.get('name') or config['class']} on "
                f"{training['data']} {image_shape} for {epochs} epochs of {steps} "
                f"steps, batch {training['batch_size']} "
                f"({keras.backend.backend()} backend{where}) -> {run_dir}"
            )
        _synchronized_batch_norm(model, cluster, True)
        try:
            model.fit(
                stream,
                epochs=epochs,
                initial_epoch=done // steps,
                steps_per_epoch=steps,
                callbacks=[*run_callbacks, *callbacks],
                verbose=verbose if chief else 0,
            )
        finally:
            _synchronized_batch_norm(model, cluster, False)
        files.atomic_write(
            os.path.join(write_dir, MODEL_FILE),
            model.save,
            expected_bytes=files.state_bytes(model),
        )
        if chief:
            # The finished model is the run's one checkpoint from now on.
            shutil.rmtree(backup_dir, ignore_errors=True)
        return model
    finally:
        if worker_dir is not None:
            shutil.rmtree(worker_dir, ignore_errors=True)
        if lock is not None:
            lock.release()


__all__ = [
    "DataError",
    "MIN_STEPS_PER_EPOCH",
    "MIXED_PRECISION_POLICIES",
    "load_training_data",
    "machine",
    "resolve_config",
    "resolve_mixed_precision",
    "train",
]
