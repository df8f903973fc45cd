"""One trial of a sweep: a normal run of the training driver, then its scores.

See `ebgan_keras.run.sweeps`.
"""

from __future__ import annotations

import math
import os
import time

from ebgan_keras import files

SWEEP_FILE = "sweep.json"
ROW_FILE = "row.json"
TRIALS_DIR = "trials"


# ----------------------------------------------------------------------
# One trial
# ----------------------------------------------------------------------
def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def trial_dir(out_dir: str, index: int) -> str:
    """The run folder of trial `index` of a sweep folder."""
    return os.path.join(os.path.abspath(out_dir), TRIALS_DIR, f"{index:04d}")


def run_trial(
    trial: dict, out_dir: str, evaluation: dict | None, keep_model: bool = True
) -> dict:
    """Trains and scores one trial in its run folder (resumable); its row.

    A trial whose `row.json` exists returns that row without training. A
    trial whose training raises (a bad setting that only shows at build
    time, out of memory) gets a row with its `error`: a rerun does not
    retry it (delete its `row.json` to retry).

    Args:
        trial: dict. `{"index", "overrides", "config"}` (from `plan`).
        out_dir: str. The sweep folder.
        evaluation: dict or None. Evaluation settings; `None`: no scores.
        keep_model: bool. Keep the trial's `model.keras` once its row is
            written. Defaults to `True`.

    Returns:
        The row: `index`, `overrides`, `seed`, `steps`, `wall_time_s`,
        `diverged`, `final_logs` and the scores (`fid`, `is`, ...; `None`
        when the model diverged), `error` (`None`, or why the trial failed).
    """
    import numpy as np

    from ebgan_keras.run import training as driver

    run_dir = trial_dir(out_dir, trial["index"])
    row_path = os.path.join(run_dir, ROW_FILE)
    if os.path.isfile(row_path):
        return files.read_json(row_path)
    config = trial["config"]
    row = {
        "index": trial["index"],
        "overrides": trial["overrides"],
        "class": config["class"],
        "seed": config["training"]["seed"],
        "steps": None,
        "wall_time_s": None,
        "diverged": False,
        "final_logs": {},
        "error": None,
    }
    start = time.time()
    model = None
    try:
        model = driver.train(config, run_dir, verbose=0)
    except (files.RunFolderError, driver.DataError):
        raise  # A busy folder or missing data: not the trial's result.
    except (ValueError, RuntimeError, OSError, MemoryError) as error:
        # The trial's result: recorded, and not retried by a rerun.
        row["error"] = f"{type(error).__name__}: {error}"
    info = files.read_json(os.path.join(run_dir, driver.INFO_FILE), {}) or {}
    history = files.read_json(os.path.join(run_dir, driver.HISTORY_FILE), {}) or {}
    row["steps"] = info.get("steps_done")
    row["wall_time_s"] = info.get("wall_time_s", round(time.time() - start, 2))
    row["final_logs"] = {
        key: (values[-1] if isinstance(values, list) and values else values)
        for key, values in (history.items() if isinstance(history, dict) else [])
    }
    if any(not _finite(v) for v in row["final_logs"].values() if v is not None):
        row["diverged"] = True
    if model is not None and evaluation is not None:
        images = np.asarray(
            model.generate(evaluation["num_samples"], seed=evaluation["seed"]),
            dtype="float32",
        )
        if not np.all(np.isfinite(images)):
            row["diverged"] = True
        if not row["diverged"]:
            row.update(_scores(images, config, evaluation))
        else:
            row.update({metric: None for metric in evaluation["metrics"]})
    os.makedirs(run_dir, exist_ok=True)  # a trial refused at once left none
    files.write_json(row_path, row)
    if row["error"] is None:
        if not keep_model:
            final = os.path.join(run_dir, driver.MODEL_FILE)
            if os.path.isfile(final):
                os.remove(final)
    return row


def _scores(images, config: dict, evaluation: dict) -> dict:
    from ebgan_keras.metrics import evaluate

    reference = evaluation["reference"] or config["training"]["data"]
    report = evaluate(
        images,
        reference=reference,
        metrics=tuple(evaluation["metrics"]),
        features=evaluation["features"],
        reference_name=reference,
        reference_split=evaluation["reference_split"],
        seed=evaluation["seed"],
    )
    scores = {}
    for result in report.to_dict().values():
        for key, value in result["values"].items():
            scores[key] = float(value)
    return scores


def ray_trainable(params: dict) -> None:
    """Ray Tune's function trainable: one trial of the sweep in `params`."""
    import keras
    from ray import tune

    # With `reuse_workers`, Ray runs the next trial in this process (its
    # imports, data and compilation caches stay warm): a clean Keras first.
    keras.backend.clear_session()
    spec = files.read_json(os.path.join(params["out_dir"], SWEEP_FILE))
    trial = spec["trials"][params["index"]]
    row = run_trial(
        trial, params["out_dir"], spec["evaluation"], spec.get("keep_models", True)
    )
    metrics = {
        key: (float(value) if _finite(value) else float("nan"))
        for key, value in row.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    metrics["diverged"] = int(bool(row["diverged"]))
    metrics["failed"] = int(row["error"] is not None)
    tune.report(metrics)


__all__ = [
    "ROW_FILE",
    "SWEEP_FILE",
    "TRIALS_DIR",
    "ray_trainable",
    "run_trial",
    "trial_dir",
]
