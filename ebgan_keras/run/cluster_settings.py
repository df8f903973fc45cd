"""The settings of a cluster: `TF_CONFIG` (TensorFlow multi-worker) and the
JAX coordinator (multi-process), read and checked before any process joins.

See `ebgan_keras.run.distribute`.
"""

from __future__ import annotations

import json
import os

#: Environment variables of the JAX coordinator (Keras's own names, read by
#: `keras.distribution.initialize` too).
COORDINATOR_ENV = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES_ENV = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID_ENV = "KERAS_DISTRIBUTION_PROCESS_ID"


class DistributeError(ValueError):
    """Distribution settings that cannot work (mode, backend, cluster)."""


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
    _check_tf_cluster(cluster, task, text, example)
    order = [("chief", i) for i in range(len(cluster.get("chief", [])))]
    order += [("worker", i) for i in range(len(cluster.get("worker", [])))]
    return {
        "num_processes": len(order),
        "process_index": order.index((task["type"], task["index"])),
        "task_type": task["type"],
        "task_index": task["index"],
        "cluster": cluster,
    }


def _check_tf_cluster(cluster, task, text: str, example: str) -> None:
    """TF_CONFIG's `cluster` and `task`: jobs, addresses, an index in range."""
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


__all__ = [
    "COORDINATOR_ENV",
    "DistributeError",
    "NUM_PROCESSES_ENV",
    "PROCESS_ID_ENV",
    "coordinator_settings",
    "parse_tf_config",
]
