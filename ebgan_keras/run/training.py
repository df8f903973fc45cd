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

Distributed (`cluster` from `ek.run.distribute.setup`): every process runs
the same `train` call with the same arguments; `training.batch_size` is the
global batch, split over the replicas of all processes. The chief (process
0) alone writes into the run folder (lock, run config, checkpoint, history,
sample grids, `model.keras`); the other processes run the same saves (which
may need collectives) into a temporary folder that is removed at the end,
and read the chief's checkpoint to resume, so the run folder must be on a
file system that every process sees. Batch norm uses global-batch
statistics, in every network of the model (`networks()`).

Example:

```python
from ebgan_keras.run import config
from ebgan_keras.run import training

run = training.resolve_config(config.load_config("ebgan_pt"),
                              data="mnist_subset", epochs=5)
model = training.train(run, "runs/quickstart")
```
"""

from __future__ import annotations

import math
import os

from ebgan_keras.run.builder import build_model
from ebgan_keras.run.builder import compile_model
from ebgan_keras.run.builder import model_class
from ebgan_keras.run.config import ConfigError
from ebgan_keras.run.config import merge
from ebgan_keras.run.config import validate
from ebgan_keras.run.run_folder import BACKUP_DIR
from ebgan_keras.run.run_folder import CHECKPOINT_FILE
from ebgan_keras.run.run_folder import HISTORY_FILE
from ebgan_keras.run.run_folder import INFO_FILE
from ebgan_keras.run.run_folder import MODEL_FILE
from ebgan_keras.run.run_folder import RUN_CONFIG_FILE
from ebgan_keras.run.run_folder import RunFolder
from ebgan_keras.run.run_folder import final_path
from ebgan_keras.run.run_folder import machine
from ebgan_keras.run.run_folder import nothing_to_train
from ebgan_keras.run.run_folder import run_info_callback
from ebgan_keras.run.run_folder import versions
from ebgan_keras.run.stream import replayed

#: Shorter data sets are repeated so that an epoch has at least this many steps.
MIN_STEPS_PER_EPOCH = 100
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

    from ebgan_keras.backend.keras_internals import walk_layers

    for network in model.networks().values():
        for layer in walk_layers(network):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = synchronized


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

    Distributed runs: every process makes this same call (module docstring).

    Args:
        config: dict. A validated run config (`resolve_config` applies the
            command line's overrides).
        run_dir: str. The run folder (created).
        verbose: int. Keras `fit` verbosity. Defaults to `2`.
        callbacks: sequence of `keras.callbacks.Callback`. More callbacks
            (run by every process of a distributed run). Defaults to none.
        sample_grids: bool. Write a grid of samples of fixed latents after
            every epoch to `samples/`. Defaults to `False`.
        announce: callable. Called with one line describing the run before
            training starts (the CLI prints it). Defaults to `None`.
        cluster: `ek.run.distribute.Cluster`. Defaults to the one of the last
            `ek.run.distribute.setup` (one process if none).
        mixed_precision: str. `"mixed_float16"`, `"mixed_bfloat16"` or
            `"auto"` (`resolve_mixed_precision`); `None` takes the config's
            `training.mixed_precision`. Recorded in `train_info.json`.
            Defaults to `None`.

    Returns:
        The trained model (also saved as `run_dir/model.keras`).

    Raises:
        ConfigError: bad settings, or other settings than the folder's run.
        DataError: the data cannot be loaded.
        files.RunFolderError: the folder is unwritable, full or in use.

    Example: see the module docstring.
    """
    from ebgan_keras.run import distribute

    cluster = cluster or distribute.current()
    training = config["training"]
    mixed_precision = resolve_mixed_precision(
        training.get("mixed_precision") if mixed_precision is None else mixed_precision
    )
    _check_global_batch(config, cluster)
    folder = RunFolder(run_dir, cluster.is_chief)
    try:
        folder.open(config)
        dataset, image_shape = _training_data(config)
        steps, per_call = _steps_per_epoch(config, dataset, cluster)
        model = _built_model(config, image_shape, cluster, mixed_precision, per_call)
        done = folder.restore(model)
        say = announce if announce is not None and cluster.is_chief else None
        if done >= training["epochs"] * steps and folder.finished_before:
            if say:
                say(nothing_to_train(run_dir, done, steps, training["epochs"]))
            return model
        folder.write_run_config(config)
        if say:
            say(_announcement(config, image_shape, steps, cluster, run_dir))
        run_callbacks = _run_callbacks(
            folder.write_dir, cluster, mixed_precision, sample_grids, training["seed"]
        )
        fit_callbacks = [*run_callbacks, *callbacks]
        verbose = verbose if cluster.is_chief else 0
        epochs = training["epochs"]
        _fit(model, dataset, done, steps, epochs, cluster, fit_callbacks, verbose)
        folder.finish(model)
        return model
    finally:
        folder.close()


def _fit(model, dataset, done, steps, epochs, cluster, callbacks, verbose) -> None:
    """`model.fit` on the run's one seeded stream, from step `done` on."""
    # One seeded stream for the whole run; a resumed run skips what the
    # checkpoint has seen (the callback skips within a resumed epoch).
    stream = replayed(dataset.repeat().skip(done - done % steps))
    _synchronized_batch_norm(model, cluster, True)
    try:
        model.fit(
            stream,
            epochs=epochs,
            initial_epoch=done // steps,
            steps_per_epoch=steps,
            callbacks=callbacks,
            verbose=verbose,
        )
    finally:
        _synchronized_batch_norm(model, cluster, False)


def _announcement(config, image_shape, steps, cluster, run_dir) -> str:
    """The line `train` hands to `announce` before training starts."""
    import keras

    training = config["training"]
    where = "" if cluster.mode == "none" else f", {cluster.describe()}"
    return (
        f"Training {config.get('name') or config['class']} on "
        f"{training['data']} {image_shape} for {training['epochs']} epochs "
        f"of {steps} steps, batch {training['batch_size']} "
        f"({keras.backend.backend()} backend{where}) -> {run_dir}"
    )


def _training_data(config: dict) -> tuple:
    """The run's dataset and its image shape, checked against the config's."""
    training = config["training"]
    dataset = load_training_data(config)
    image_shape = tuple(int(d) for d in dataset.element_spec.shape[1:])
    expected = config.get("image_shape")
    if expected is not None and tuple(expected) != image_shape:
        raise DataError(
            f"the data gives images of shape {image_shape}, the config's "
            f"`image_shape` is {tuple(expected)}. Received: data "
            f"{training['data']!r}"
        )
    return dataset, image_shape


def _steps_per_epoch(config: dict, dataset, cluster) -> tuple:
    """`(steps per epoch, steps per compiled call)` of a run."""
    from ebgan_keras import backend

    training = config["training"]
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
    return steps, per_call


def _built_model(config, image_shape, cluster, mixed_precision, per_call):
    """The run's compiled model, seeded, under its dtype policy and strategy."""
    import keras

    keras.utils.set_random_seed(config["training"]["seed"])
    policy = keras.config.dtype_policy()
    if mixed_precision is not None:
        keras.config.set_dtype_policy(mixed_precision)
    try:
        with cluster.scope():
            model = build_model(config, image_shape)
            compile_model(model, config, steps_per_execution=per_call)
    finally:
        keras.config.set_dtype_policy(policy)
    return model


def _run_callbacks(write_dir, cluster, mixed_precision, sample_grids, seed) -> list:
    """The driver's callbacks: checkpoint, history, run info, sample grids."""
    from ebgan_keras.callbacks import BackupAndRestore
    from ebgan_keras.callbacks import JSONHistory

    run_callbacks = [
        BackupAndRestore(os.path.join(write_dir, BACKUP_DIR), delete_checkpoint=False),
        JSONHistory(os.path.join(write_dir, HISTORY_FILE)),
        run_info_callback(write_dir, cluster, mixed_precision),
    ]
    if sample_grids:
        from ebgan_keras.visual_callbacks import SampleGrid

        run_callbacks.append(
            SampleGrid(os.path.join(write_dir, "samples"), num=64, seed=seed)
        )
    return run_callbacks


__all__ = [
    # The run folder's names (`ebgan_keras.run.run_folder`), kept here.
    "BACKUP_DIR",
    "CHECKPOINT_FILE",
    "HISTORY_FILE",
    "INFO_FILE",
    "MODEL_FILE",
    "RUN_CONFIG_FILE",
    "final_path",
    "machine",
    "nothing_to_train",
    "versions",
    # The driver's own.
    "DataError",
    "MIN_STEPS_PER_EPOCH",
    "MIXED_PRECISION_POLICIES",
    "load_training_data",
    "resolve_config",
    "resolve_mixed_precision",
    "train",
]
