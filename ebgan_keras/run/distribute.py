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
import json
import os
import sys

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
#: Environment variables of the JAX coordinator (Keras's own names, read by
#: `keras.distribution.initialize` too).
COORDINATOR_ENV = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES_ENV = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID_ENV = "KERAS_DISTRIBUTION_PROCESS_ID"


class DistributeError(ValueError):
    """Distribution settings that cannot work (mode, backend, cluster)."""


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


def parse_tf_config(text: str | None) -> dict:
    """Reads and checks a `TF_CONFIG` value for multi-worker training.

    Args:
        text: str. The JSON value of `TF_CONFIG`, e.g. `{"cluster": {"worker":
            ["host1:12345", "host2:12345"]}, "task": {"type": "worker",
            "index": 0}}`.

    Returns:
        A dict with `num_processes`, `process_index` (`0` for the chief:
        the `chief` task, else worker 0), `task_type`, `task_index` and
        `cluster`.

    Raises:
        DistributeError: `TF_CONFIG` missing, not JSON, without `cluster` or
            `task`, or with a task outside the cluster.

    Example:

    >>> parse_tf_config('{"cluster": {"worker": ["a:1", "b:2"]}, '
    ...                 '"task": {"type": "worker", "index": 1}}')["process_index"]
    1
    """
    example = (
        '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
        '"task": {"type": "worker", "index": 0}}'
    )
    if not text:
        raise DistributeError(
            "`distribute='multi-worker'` needs the TF_CONFIG environment variable "
            f"(JSON, e.g. {example}). Received: TF_CONFIG unset or empty"
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise DistributeError(
            f"TF_CONFIG must be JSON ({error}), e.g. {example}. Received: "
            f"TF_CONFIG={text!r}"
        ) from None
    cluster = value.get("cluster") if isinstance(value, dict) else None
    task = value.get("task") if isinstance(value, dict) else None
    jobs_ok = (
        isinstance(cluster, dict)
        and cluster
        and set(cluster) <= {"chief", "worker", "evaluator"}
        and all(
            isinstance(addresses, list)
            and addresses
            and all(isinstance(a, str) and ":" in a for a in addresses)
            for addresses in cluster.values()
        )
    )
    if not jobs_ok:
        raise DistributeError(
            "TF_CONFIG's `cluster` must map the jobs `chief` (optional) and "
            f"`worker` to lists of 'host:port' addresses, e.g. {example}. "
            f"Received: TF_CONFIG={text!r}"
        )
    if (
        not isinstance(task, dict)
        or task.get("type") not in cluster
        or not isinstance(task.get("index"), int)
        or not 0 <= task["index"] < len(cluster[task["type"]])
    ):
        raise DistributeError(
            "TF_CONFIG's `task` must name a job of `cluster` and an index into "
            f'its addresses (`{{"type": "worker", "index": 0}}`). Received: '
            f"TF_CONFIG={text!r}"
        )
    if "evaluator" in cluster or task["type"] == "evaluator":
        raise DistributeError(
            "multi-worker training does not run a side-car evaluator; remove the "
            f"`evaluator` job from TF_CONFIG. Received: TF_CONFIG={text!r}"
        )
    order = [("chief", i) for i in range(len(cluster.get("chief", [])))]
    order += [("worker", i) for i in range(len(cluster.get("worker", [])))]
    return {
        "num_processes": len(order),
        "process_index": order.index((task["type"], task["index"])),
        "task_type": task["type"],
        "task_index": task["index"],
        "cluster": cluster,
    }


def coordinator_settings(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    environ=None,
) -> dict:
    """The JAX coordinator of a multi-process run: arguments, else environment.

    Each argument left `None` is read from its environment variable
    (`KERAS_DISTRIBUTION_JOB_ADDRESSES`, `KERAS_DISTRIBUTION_NUM_PROCESSES`,
    `KERAS_DISTRIBUTION_PROCESS_ID`); all three still `None` means "let JAX
    detect the cluster" (Slurm, Open MPI).

    Args:
        coordinator: str. `HOST:PORT` of process 0's coordinator service.
        num_processes: int. Processes in the run.
        process_id: int. This process's index, `0 <= process_id <
            num_processes`.
        environ: mapping. Defaults to `os.environ`.

    Returns:
        A dict with `coordinator`, `num_processes` and `process_id`.

    Raises:
        DistributeError: some but not all given, a malformed address, or a
            process id out of range.

    Example:

    >>> coordinator_settings("localhost:1234", 2, 1)["process_id"]
    1
    """
    environ = os.environ if environ is None else environ
    if coordinator is None and environ.get(COORDINATOR_ENV):
        coordinator = environ[COORDINATOR_ENV].split(",")[0].strip()
    for name, env in (
        ("num_processes", NUM_PROCESSES_ENV),
        ("process_id", PROCESS_ID_ENV),
    ):
        value = num_processes if name == "num_processes" else process_id
        if value is None and environ.get(env):
            try:
                value = int(environ[env])
            except ValueError:
                raise DistributeError(
                    f"{env} must be an int. Received: {env}={environ[env]!r}"
                ) from None
        if name == "num_processes":
            num_processes = value
        else:
            process_id = value
    settings = {
        "coordinator": coordinator,
        "num_processes": num_processes,
        "process_id": process_id,
    }
    given = [key for key, value in settings.items() if value is not None]
    if not given:
        return settings  # JAX detects the cluster (Slurm, Open MPI) or fails
    if len(given) < 3:
        missing = [key for key in settings if key not in given]
        raise DistributeError(
            "`distribute='multi-process'` needs the coordinator, the number of "
            "processes and this process's id together (--coordinator HOST:PORT "
            "--num-processes N --process-id I, or the environment variables "
            f"{COORDINATOR_ENV}, {NUM_PROCESSES_ENV}, {PROCESS_ID_ENV}). Missing: "
            f"{', '.join(missing)}. Received: {settings}"
        )
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise DistributeError(
            "the coordinator must be 'HOST:PORT' (process 0's address and a free "
            f"port). Received: coordinator={coordinator!r}"
        )
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise DistributeError(
            "`process_id` must be in [0, num_processes) and `num_processes` >= 1. "
            f"Received: num_processes={num_processes}, process_id={process_id}"
        )
    return settings


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
    _CURRENT = cluster
    return cluster


def _setup_multi_worker(timeout_s: float) -> Cluster:
    settings = parse_tf_config(os.environ.get("TF_CONFIG"))
    import tensorflow as tf
    from tensorflow.python.distribute import collective_all_reduce_strategy

    # The strategy checks its peers' health in a background thread (started
    # by its constructor) and aborts the collectives of a cluster that lost
    # one. Its defaults (a check every 30 s, 3 tries of 10 s, and no limit on
    # the wait for all workers at start) are bounded here by `timeout_s`:
    # a check every timeout/4, 3 tries of timeout/4 each.
    extended = collective_all_reduce_strategy.CollectiveAllReduceExtended
    extended._check_health_interval = max(timeout_s / 4, 1)
    extended._check_health_timeout = max(int(timeout_s / 4), 1)
    extended._check_health_initial_timeout = max(int(timeout_s), 1) * 5
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
