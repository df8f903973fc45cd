"""Data-parallel training in one process or across processes and hosts.

`ek.run.distribute.setup(mode, ...)` prepares the backend for one of these modes
and returns a `Cluster` that says which process this is and under which
scope to build the model; the training driver (`ebgan_keras.run.training.train`,
`ebgan-keras train --distribute MODE`) does the rest:

- `"none"`: one process, one device.
- `"mirrored"` (TensorFlow): `tf.distribute.MirroredStrategy` over the
  devices of this process.
- `"data-parallel"` (JAX): `keras.distribution.DataParallel` over the
  devices of this process.
- `"multi-worker"` (TensorFlow): `tf.distribute.MultiWorkerMirroredStrategy`
  across processes described by the `TF_CONFIG` environment variable (one
  process per task of the `worker` job, plus an optional `chief`).
- `"multi-process"` (JAX): `jax.distributed.initialize` (CPU collectives
  through gloo) and `keras.distribution.DataParallel` over the devices of all
  processes. The coordinator comes from `coordinator`, `num_processes` and
  `process_id` (the CLI's `--coordinator HOST:PORT --num-processes N
  --process-id I`), else from Keras's environment variables
  `KERAS_DISTRIBUTION_JOB_ADDRESSES` (the coordinator's `HOST:PORT`, or a
  comma-separated list whose first entry is the coordinator),
  `KERAS_DISTRIBUTION_NUM_PROCESSES` and `KERAS_DISTRIBUTION_PROCESS_ID`,
  else from JAX's detection of the cluster (Slurm, Open MPI).

Every replica computes its slice of one global batch and the gradients are
averaged, so with the same global batch a run on several processes trains
to the same weights as one process within float tolerance (tested with two
processes on TensorFlow and JAX). Process 0 (TensorFlow: the `chief` task,
else worker 0) is the chief: only it writes into the run folder.

A process that dies makes the others fail within a bound instead of
waiting forever: `timeout_s` (default `DEFAULT_TIMEOUT_S`) is the collective
timeout and health-check bound of TensorFlow, and the heartbeat timeout of
JAX's coordination service.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import sys

from ebgan_keras.run.cluster_settings import COORDINATOR_ENV
from ebgan_keras.run.cluster_settings import NUM_PROCESSES_ENV
from ebgan_keras.run.cluster_settings import PROCESS_ID_ENV
from ebgan_keras.run.cluster_settings import DistributeError
from ebgan_keras.run.cluster_settings import coordinator_settings
from ebgan_keras.run.cluster_settings import parse_tf_config

#: The values of `mode` (and of `ebgan-keras train --distribute`).
MODES = ("none", "mirrored", "data-parallel", "multi-worker", "multi-process")
#: The backend each mode needs (`None`: any backend).
MODE_BACKENDS = {
    "none": None,
    "mirrored": "tensorflow",
    "data-parallel": "jax",
    "multi-worker": "tensorflow",
    "multi-process": "jax",
}
#: Seconds after which the survivors of a dead process fail (collective
#: timeout on TensorFlow, heartbeat timeout on JAX).
DEFAULT_TIMEOUT_S = 60


@dataclasses.dataclass
class Cluster:
    """Where this process stands in a distributed run.

    Args:
        mode: str. One of `MODES`.
        num_processes: int. Processes training together.
        process_index: int. This process's index, `0` the chief.
        num_replicas: int. Replicas (devices) over all processes.
        strategy: the `tf.distribute.Strategy` (TensorFlow) or `None`.
    """

    mode: str = "none"
    num_processes: int = 1
    process_index: int = 0
    num_replicas: int = 1
    strategy: object = None

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the run's files (process 0)."""
        return self.process_index == 0

    def scope(self):
        """The context in which to build and compile the model.

        Returns:
            `strategy.scope()` on TensorFlow, else a null context.
        """
        if self.strategy is None:
            return contextlib.nullcontext()
        return self.strategy.scope()

    def describe(self) -> str:
        """One line for the training announcement, e.g. `multi-worker 2 processes`."""
        if self.mode == "none":
            return "one process"
        return (
            f"{self.mode}: process {self.process_index} of {self.num_processes}, "
            f"{self.num_replicas} replicas"
        )


_CURRENT = Cluster()


def current() -> Cluster:
    """The `Cluster` of the last `setup` in this process (mode `"none"` before)."""
    return _CURRENT


def _backend() -> str:
    keras = sys.modules.get("keras")
    if keras is not None:
        return keras.backend.backend()
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def check_mode(mode: str, backend: str | None = None) -> str:
    """Checks that `mode` is known and runs on the backend.

    Args:
        mode: str. One of `MODES`.
        backend: str. The Keras backend. Defaults to the current one.

    Returns:
        `mode`.

    Raises:
        DistributeError: an unknown mode, or one of another backend.

    Example:

    >>> check_mode("multi-worker", "tensorflow")
    'multi-worker'
    """
    backend = backend or _backend()
    if mode not in MODES:
        raise DistributeError(
            f"`distribute` must be one of {', '.join(MODES)}. Received: "
            f"distribute={mode!r}"
        )
    needed = MODE_BACKENDS[mode]
    if needed == "tensorflow" and importlib.util.find_spec("tensorflow") is None:
        raise DistributeError(
            f"`distribute={mode!r}` (tf.distribute) needs TensorFlow, which is not "
            "installed: pip install 'ebgan-keras[tensorflow]'. Received: "
            f"distribute={mode!r}"
        )
    if needed is not None and needed != backend:
        other = {"tensorflow": "multi-worker", "jax": "multi-process"}.get(backend)
        hint = f" (on {backend}, use {other!r})" if other else ""
        raise DistributeError(
            f"`distribute={mode!r}` runs on the {needed} backend{hint}. Received: "
            f"distribute={mode!r} with the {backend!r} backend"
        )
    return mode


def setup(
    mode: str = "none",
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Cluster:
    """Prepares this process for a distribution mode; returns its `Cluster`.

    Call it before any model is built. TensorFlow's strategies are created
    here (multi-worker: from `TF_CONFIG`); on JAX, `"multi-process"` calls
    `jax.distributed.initialize` (before any JAX computation) and both JAX
    modes set `keras.distribution.DataParallel` over all devices. Calling it
    again with the same settings returns the same cluster.

    Args:
        mode: str. One of `MODES`. Defaults to `"none"`.
        coordinator: str. JAX multi-process: `HOST:PORT` of process 0.
        num_processes: int. JAX multi-process: processes in the run.
        process_id: int. JAX multi-process: this process's index.
        timeout_s: float. Bound, in seconds, on how long the survivors wait
            for a dead process before failing. Defaults to
            `DEFAULT_TIMEOUT_S`.

    Returns:
        The `Cluster` of this process.

    Raises:
        DistributeError: a mode of another backend, a missing or malformed
            `TF_CONFIG`, an incomplete coordinator, or a process that cannot
            join its cluster.

    Example:

    ```python
    # On each of two processes, with TF_CONFIG set (TensorFlow backend):
    import ebgan_keras as ek
    cluster = ek.run.distribute.setup("multi-worker")
    with cluster.scope():
        model = ek.EBGANPT(...)
        model.compile()
    ```
    """
    global _CURRENT
    backend = _backend()
    check_mode(mode, backend)
    if timeout_s is None or not timeout_s > 0:
        raise DistributeError(
            f"`timeout_s` must be a positive number of seconds. Received: "
            f"timeout_s={timeout_s!r}"
        )
    if _CURRENT.mode == mode and mode != "none":
        return _CURRENT
    if _CURRENT.mode in ("multi-worker", "multi-process") and mode != _CURRENT.mode:
        raise DistributeError(
            f"this process already joined a {_CURRENT.mode!r} cluster; start a new "
            f"process for `distribute={mode!r}`. Received: distribute={mode!r}"
        )
    cluster = _new_cluster(
        mode, backend, coordinator, num_processes, process_id, timeout_s
    )
    _CURRENT = cluster
    return cluster


def _new_cluster(mode, backend, coordinator, num_processes, process_id, timeout_s):
    """The `Cluster` of a mode, its strategy or distribution set up."""
    if mode == "none":
        cluster = Cluster()
        if backend == "jax":
            import keras

            keras.distribution.set_distribution(None)
    elif mode == "mirrored":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
        cluster = Cluster(mode, 1, 0, strategy.num_replicas_in_sync, strategy)
    elif mode == "multi-worker":
        cluster = _setup_multi_worker(timeout_s)
    else:
        if mode == "multi-process":
            _initialize_jax(
                coordinator_settings(coordinator, num_processes, process_id),
                timeout_s,
            )
        import jax
        import keras

        devices = jax.devices()
        keras.distribution.set_distribution(
            keras.distribution.DataParallel(devices=devices)
        )
        cluster = Cluster(
            mode, jax.process_count(), jax.process_index(), len(devices), None
        )
    return cluster


def _setup_multi_worker(timeout_s: float) -> Cluster:
    settings = parse_tf_config(os.environ.get("TF_CONFIG"))
    import tensorflow as tf

    from ebgan_keras.backend.keras_internals import bound_health_checks

    # The strategy's peer health checks, bounded by `timeout_s`.
    bound_health_checks(timeout_s)
    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=float(timeout_s)
    )
    strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    return Cluster(
        "multi-worker",
        settings["num_processes"],
        settings["process_index"],
        strategy.num_replicas_in_sync,
        strategy,
    )


def peer_failure(error: BaseException) -> bool:
    """Whether `error` says that a process of a distributed run was lost.

    TensorFlow aborts the collectives of a cluster that lost a worker with
    `UnavailableError` (health check), `DeadlineExceededError` (collective
    timeout) or `CancelledError`. On JAX a collective with a dead process
    fails at once with a gloo error ("Connection closed by peer"); a process
    that hangs instead is declared dead by the coordination service's
    heartbeat timeout, which terminates the others itself.

    Args:
        error: an exception raised by training.

    Returns:
        `True` for those errors in a multi-worker or multi-process run.
    """
    if _CURRENT.mode == "multi-process":
        text = str(error)
        return any(
            mark in text
            for mark in ("Gloo", "gloo", "coordination service", "heartbeat")
        )
    if _CURRENT.mode != "multi-worker":
        return False
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return False
    return isinstance(
        error,
        (
            tf.errors.UnavailableError,
            tf.errors.DeadlineExceededError,
            tf.errors.CancelledError,
        ),
    )


def _initialize_jax(settings: dict, timeout_s: float) -> None:
    import jax

    # CPU collectives between processes need an implementation; gloo ships
    # with jaxlib (GPU and TPU collectives do not use it).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(
            coordinator_address=settings["coordinator"],
            num_processes=settings["num_processes"],
            process_id=settings["process_id"],
            initialization_timeout=max(int(timeout_s), 1) * 5,
            heartbeat_timeout_seconds=max(int(timeout_s), 1),
        )
    except (ValueError, RuntimeError) as error:
        text = str(error).strip().splitlines()[0] if str(error).strip() else error
        raise DistributeError(
            f"cannot join the JAX multi-process cluster ({text}). Give the "
            "coordinator with --coordinator HOST:PORT --num-processes N "
            f"--process-id I (or {COORDINATOR_ENV}, {NUM_PROCESSES_ENV}, "
            f"{PROCESS_ID_ENV}). Received: {settings}"
        ) from None


__all__ = [
    "COORDINATOR_ENV",
    "Cluster",
    "DEFAULT_TIMEOUT_S",
    "DistributeError",
    "MODES",
    "NUM_PROCESSES_ENV",
    "PROCESS_ID_ENV",
    "check_mode",
    "coordinator_settings",
    "current",
    "parse_tf_config",
    "peer_failure",
    "setup",
]
