"""Hyperparameter sweeps on Ray Tune: every trial a normal run of the one driver.

`ek.sweep(base, grid, out_dir)` (CLI: `ebgan-keras sweep GRID_FILE --out DIR`)
trains one run config per point of a grid, or of a seeded random subset of
it, over any field of the config schema (`ebgan_keras.run.config`), and scores
each trained model. Trials run on Ray Tune (`pip install "ebgan-keras[sweep]"`):
on one machine `ray.init(num_cpus=...)` with `cpus_per_trial` CPUs per trial;
given `address`, the same sweep runs on a Ray cluster.

A sweep folder holds:

- `sweep.json`: the sweep (base config, the trials' overrides and configs,
  evaluation settings), written once; a rerun with other trials is refused.
- `trials/NNNN/`: each trial's run folder (`training.train`: resumable,
  locked) and, once it finished, its `row.json`: the trial's settings, seed,
  steps, wall time, scores and whether it diverged.
- `ray/`: Ray Tune's experiment state.
- `results.jsonl`: one row per finished trial, in trial order.

Rerunning the same sweep resumes it: Ray Tune's `Tuner.restore` when its
state is there, and a trial whose `row.json` exists is never trained again
(it reports its row at once), so finished trials are never re-run even when
the sweep was killed before Ray saved its state. An unfinished trial resumes
from its run folder's checkpoint.

Grids name config fields by dotted path: `training.learning_rate`,
`training.optimizer`, `model.margin`, `generator.kwargs.hidden_units`,
`discriminator.kwargs.dropout`, ... Every trial's config is checked before
any trial starts: unknown keys (schema fields, model arguments, network
builder arguments) and values of the wrong type are refused, naming the key.

Evaluation settings (`evaluation`, `EVALUATION_DEFAULTS`): `metrics`
(default `["fid", "is"]`), `reference` (default: the training data's name),
`reference_split` (`"test"`), `features` (`"auto"`: the offline classifier
of MNIST/Fashion-MNIST), `num_samples` (5000), `seed` (0).

`reuse_workers=True` runs the next trial in a finished trial's process:
imports, data and compilation caches stay warm, much faster for short
trials, but a trial's numbers may then differ in the last digits from a run
in a fresh process (measured: FID relative difference 1.3e-4 after 8 steps
on JAX), so a resumed sweep no longer repeats them exactly.

Example:

```python
import ebgan_keras as ek

rows = ek.sweep(
    "ebgan_pt",
    "runs/lr_sweep",
    grid={"training.learning_rate": [1e-3, 1e-4]},
    overrides={"training": {"data": "mnist_subset", "epochs": 1}},
)
```

A grid file is a JSON object:

```json
{
 "base": "ebgan",
 "overrides": {"training": {"data": "mnist", "epochs": 1, "steps_per_epoch": 300}},
 "grid": {"training.learning_rate": [0.001, 0.0001], "model.margin": [5.0, 10.0]},
 "num_samples": null,
 "seed": 0,
 "evaluation": {"num_samples": 5000}
}
```
"""

from __future__ import annotations

import json
import os

from ebgan_keras import files
from ebgan_keras.run.sweep_plan import EVALUATION_DEFAULTS
from ebgan_keras.run.sweep_plan import GRID_KEYS
from ebgan_keras.run.sweep_plan import SweepError
from ebgan_keras.run.sweep_plan import check_trial_config
from ebgan_keras.run.sweep_plan import evaluation_settings
from ebgan_keras.run.sweep_plan import expand
from ebgan_keras.run.sweep_plan import grid_point
from ebgan_keras.run.sweep_plan import grid_size
from ebgan_keras.run.sweep_plan import plan
from ebgan_keras.run.sweep_plan import read_grid_file
from ebgan_keras.run.sweep_plan import set_path
from ebgan_keras.run.sweep_trial import ROW_FILE
from ebgan_keras.run.sweep_trial import SWEEP_FILE
from ebgan_keras.run.sweep_trial import TRIALS_DIR
from ebgan_keras.run.sweep_trial import ray_trainable
from ebgan_keras.run.sweep_trial import run_trial
from ebgan_keras.run.sweep_trial import trial_dir

RESULTS_FILE = "results.jsonl"
RAY_DIR = "ray"
RAY_NAME = "sweep"
INSTALL_HINT = 'pip install "ebgan-keras[sweep]"  (or: pip install "ray[tune]")'
#: Environment of each trial's process: one thread per CPU of the trial.
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


# ----------------------------------------------------------------------
# The sweep
# ----------------------------------------------------------------------
def _import_ray():
    try:
        import ray
        from ray import tune
    except ImportError:
        raise SweepError(
            f"sweeps run on Ray Tune, which is not installed. Install it with: "
            f"{INSTALL_HINT}"
        ) from None
    return ray, tune


def _write_spec(out_dir: str, spec: dict) -> None:
    os.makedirs(out_dir, exist_ok=True)
    files.check_writable(out_dir)
    path = os.path.join(out_dir, SWEEP_FILE)
    old = files.read_json(path)
    if old is not None:
        if (
            json.dumps(old["trials"], sort_keys=True)
            != json.dumps(json.loads(json.dumps(spec["trials"])), sort_keys=True)
            or old.get("evaluation") != spec["evaluation"]
        ):
            raise SweepError(
                f"the sweep folder {out_dir!r} holds another sweep (other trials or "
                "evaluation settings); use a new folder. Received: a sweep of "
                f"{len(spec['trials'])} trials vs {len(old['trials'])} there"
            )
        return
    files.write_json(path, spec)


def collect(out_dir: str) -> list[dict]:
    """The rows of a sweep folder's finished trials, in trial order.

    Args:
        out_dir: str. The sweep folder.

    Returns:
        A list of rows (also written to `results.jsonl`).
    """
    spec = files.read_json(os.path.join(out_dir, SWEEP_FILE)) or {"trials": []}
    rows = []
    for trial in spec["trials"]:
        folder = trial_dir(out_dir, trial["index"])
        row = files.read_json(os.path.join(folder, ROW_FILE))
        if row is not None:
            rows.append(row)

    def write(partial: str) -> None:
        with open(partial, "w") as handle:
            for row in rows:
                row = files.finite_json(row)  # strict JSON: null, never NaN
                handle.write(json.dumps(row, sort_keys=True, allow_nan=False) + "\n")

    files.atomic_write(os.path.join(out_dir, RESULTS_FILE), write)
    return rows


def sweep(
    base,
    out_dir: str,
    grid: dict | None = None,
    trials: list | None = None,
    num_samples: int | None = None,
    seed: int = 0,
    overrides: dict | None = None,
    evaluation: dict | bool | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    cpus_per_trial: float = 1,
    max_concurrent_trials: int | None = None,
    keep_models: bool = True,
    reuse_workers: bool = False,
    verbose: int = 1,
) -> list[dict]:
    """Runs (or resumes) a sweep on Ray Tune; returns the trials' rows.

    Args:
        base: str or dict. The base run config: a built-in name, a path or
            a dict (a zoo entry's: `ek.zoo.find_config(name)`).
        out_dir: str. The sweep folder (created; rerun to resume).
        grid: dict. `{dotted config path: [values]}`; every point is a trial.
        trials: list of dict. Explicit trials `{dotted path: value}`.
        num_samples: int. Run a seeded random subset of this many points of
            the grid. Defaults to `None` (every point).
        seed: int. Seed of the subset and base of the trials' seeds (trial
            `i` trains with `training.seed + i` unless it sets the seed).
            Defaults to `0`.
        overrides: dict. Nested overrides of the base for every trial.
        evaluation: dict, or `False` for none. Scores of each trained model
            (`EVALUATION_DEFAULTS`; see the module docstring).
        address: str. A Ray cluster's address. Defaults to `None` (local).
        num_cpus: int. CPUs of the local Ray. Defaults to all.
        cpus_per_trial: float. CPUs each trial reserves (and threads it
            uses). Defaults to `1`.
        max_concurrent_trials: int. Defaults to as many as the CPUs allow.
        keep_models: bool. Keep each trial's `model.keras`; `False` deletes
            it once the trial's row is written. Defaults to `True`.
        reuse_workers: bool. Run the next trial in a finished trial's
            process (Ray's `reuse_actors`; see the module docstring).
            Defaults to `False` (a fresh process per trial).
        verbose: int. Ray Tune's verbosity (0-3). Defaults to `1`.

    Returns:
        The rows of the finished trials, in trial order (see `run_trial`).

    Raises:
        SweepError: Ray missing (with the install command), a bad grid (the
            key named), or a folder that holds another sweep.
    """
    evaluation = evaluation_settings(evaluation)
    planned = plan(base, grid, trials, num_samples, seed, overrides)
    ray, tune = _import_ray()
    out_dir = os.path.abspath(out_dir)
    spec = {"trials": planned, "evaluation": evaluation, "keep_models": keep_models}
    _write_spec(out_dir, spec)
    started_ray = False
    if not ray.is_initialized():
        # Ray runs its workers at niceness 15 by default: trials would yield
        # the CPU to any other process of the machine.
        os.environ.setdefault("RAY_worker_niceness", "0")
        env = _trial_environment(out_dir, cpus_per_trial)
        init = {"runtime_env": {"env_vars": env}, "include_dashboard": False}
        if address:
            ray.init(address=address, **init)
        else:
            ray.init(num_cpus=num_cpus, **init)
        started_ray = True
    try:
        settings = (cpus_per_trial, max_concurrent_trials, reuse_workers, verbose)
        _tuner(tune, out_dir, planned, *settings).fit()
    finally:
        if started_ray:
            ray.shutdown()
    return collect(out_dir)


def _trial_environment(out_dir: str, cpus_per_trial: float) -> dict:
    """The environment variables of each trial's process."""
    threads = str(max(1, int(cpus_per_trial)))
    env = {name: threads for name in _THREAD_VARIABLES}
    env["TF_NUM_INTRAOP_THREADS"] = threads
    env["TF_NUM_INTEROP_THREADS"] = "1"
    if int(cpus_per_trial) <= 1:
        env["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        ).strip()
    # JAX compiles every variable initializer and step: a persistent cache
    # shared by the trials saves most of it (shapes repeat across a grid).
    env["JAX_COMPILATION_CACHE_DIR"] = os.environ.get(
        "JAX_COMPILATION_CACHE_DIR", os.path.join(out_dir, ".cache", "jax")
    )
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"
    for name, value in os.environ.items():
        if name.startswith(("KERAS_", "TFDS_", "EBGAN_KERAS_")):
            env[name] = value
    return env


def _tuner(
    tune, out_dir, planned, cpus_per_trial, max_concurrent, reuse_workers, verbose
):
    """Ray Tune's tuner of the sweep: restored when its state is there."""
    trainable = tune.with_resources(ray_trainable, {"cpu": cpus_per_trial})
    storage = os.path.join(out_dir, RAY_DIR)
    experiment = os.path.join(storage, RAY_NAME)
    param_space = {
        "out_dir": out_dir,
        "index": tune.grid_search([trial["index"] for trial in planned]),
    }
    if tune.Tuner.can_restore(experiment):
        return tune.Tuner.restore(
            experiment,
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=True,
            param_space=param_space,
        )
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            max_concurrent_trials=max_concurrent,
            reuse_actors=reuse_workers,
            trial_dirname_creator=lambda t: f"trial_{t.config['index']:04d}",
        ),
        run_config=tune.RunConfig(
            name=RAY_NAME,
            storage_path=storage,
            verbose=verbose,
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )


__all__ = [
    # The plan and the trials (`sweep_plan`, `sweep_trial`), kept here.
    "EVALUATION_DEFAULTS",
    "GRID_KEYS",
    "ROW_FILE",
    "SWEEP_FILE",
    "SweepError",
    "TRIALS_DIR",
    "check_trial_config",
    "expand",
    "grid_point",
    "grid_size",
    "plan",
    "read_grid_file",
    "run_trial",
    "set_path",
    "trial_dir",
    # The sweep's own.
    "INSTALL_HINT",
    "RESULTS_FILE",
    "collect",
    "sweep",
]
