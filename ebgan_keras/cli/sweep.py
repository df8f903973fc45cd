"""`ebgan-keras sweep`: a resumable hyperparameter sweep on Ray Tune."""

from __future__ import annotations

import os

from ebgan_keras.cli import options

SWEEP_EXAMPLE = """examples:
  ebgan-keras sweep benchmarks/grids/ebgan_lr_margin.json --out runs/sweep
  ebgan-keras sweep grid.json --out runs/sweep --num-samples 8 --seed 1
  ebgan-keras sweep grid.json --out runs/sweep --address ray://head:10001

GRID.json is a JSON object: "base" (a config name, path or object),
"overrides" (nested settings for every trial, e.g. {"training": {"data":
"mnist", "epochs": 1, "steps_per_epoch": 300}}), "grid" ({dotted config path:
[values]}, e.g. {"training.learning_rate": [0.001, 0.0001], "model.margin":
[5.0, 10.0]}) and/or "trials" (a list of {dotted path: value}), and optional
"num_samples" (a seeded random subset of the grid), "seed" and "evaluation"
({"num_samples": 5000, "metrics": ["fid", "is"], ...}). Command-line options
win. Every trial's config is checked before any trial starts.

SWEEP_DIR receives sweep.json, trials/NNNN/ (each trial's run folder and
row.json), ray/ (Ray Tune's state) and results.jsonl (one row per trial).
Rerun the same command to resume: finished trials are never re-run.
Needs Ray Tune: pip install "ebgan-keras[sweep]"."""


def add_parser(subparsers) -> None:
    """Adds `sweep` and its flags to the subparsers of `ebgan-keras`."""
    sweep = options.subparser(
        subparsers,
        "sweep",
        "a hyperparameter sweep on Ray Tune; resumable",
        "Train one run per point of a grid over any field of the run config "
        "(or a seeded random subset of it) on Ray Tune, each trial a normal "
        "resumable run folder, and score each trained model (FID and IS on "
        "the offline classifier of MNIST/Fashion-MNIST by default).",
        SWEEP_EXAMPLE,
    )
    sweep.add_argument("grid_file", metavar="GRID.json", help="the grid file")
    sweep.add_argument(
        "--out", required=True, metavar="SWEEP_DIR", help="sweep folder (created)"
    )
    sweep.add_argument(
        "--num-samples",
        type=options.positive_int,
        help="run a seeded random subset of this many grid points",
    )
    sweep.add_argument(
        "--seed", type=options.seed, help="seed of the subset and the trials"
    )
    sweep.add_argument(
        "--steps",
        type=options.positive_int,
        help="training steps per trial (sets training.epochs=1 and "
        "training.steps_per_epoch)",
    )
    sweep.add_argument(
        "--eval-samples",
        type=options.positive_int,
        help="generated images scored per trial (default: 5000)",
    )
    sweep.add_argument(
        "--no-eval", action="store_true", help="train only; no scores per trial"
    )
    sweep.add_argument(
        "--address", help="a Ray cluster's address (default: a local Ray)"
    )
    sweep.add_argument(
        "--num-cpus",
        type=options.positive_int,
        help="CPUs of the local Ray (default: all of this machine's)",
    )
    sweep.add_argument(
        "--cpus-per-trial",
        type=options.positive_int,
        default=1,
        help="CPUs (and threads) per trial (default: 1)",
    )
    sweep.add_argument(
        "--reuse-workers",
        action="store_true",
        help="run trials in warm worker processes (faster for short trials; "
        "scores may then differ in the last digits from a fresh process's)",
    )
    sweep.add_argument(
        "--delete-models",
        action="store_true",
        help="delete each trial's model.keras once its row is written",
    )


def run(args) -> int:
    """Runs `ebgan-keras sweep`; see `ebgan-keras sweep --help`."""
    from ebgan_keras.run import sweeps

    spec = sweeps.read_grid_file(args.grid_file)
    overrides = dict(spec["overrides"])
    if args.steps is not None:
        overrides["training"] = {
            **overrides.get("training", {}),
            "epochs": 1,
            "steps_per_epoch": args.steps,
        }
    evaluation = spec["evaluation"]
    if args.no_eval:
        evaluation = False
    elif args.eval_samples is not None:
        evaluation = {**evaluation, "num_samples": args.eval_samples}
    rows = sweeps.sweep(
        spec["base"],
        args.out,
        grid=spec["grid"],
        trials=spec["trials"],
        num_samples=(
            args.num_samples if args.num_samples is not None else spec["num_samples"]
        ),
        seed=args.seed if args.seed is not None else spec["seed"],
        overrides=overrides,
        evaluation=evaluation,
        address=args.address,
        num_cpus=args.num_cpus,
        cpus_per_trial=args.cpus_per_trial,
        keep_models=not args.delete_models,
        reuse_workers=args.reuse_workers,
    )
    total = len(_sweep_trials(args.out))
    failed = sum(row["error"] is not None for row in rows)
    print(
        f"{len(rows)} of {total} trials finished ({failed} failed, "
        f"{sum(bool(row['diverged']) for row in rows)} diverged) -> "
        f"{os.path.join(args.out, sweeps.RESULTS_FILE)}"
    )
    return 0 if len(rows) == total and not failed else 2


def _sweep_trials(out_dir: str) -> list:
    """The trials of a sweep folder's `sweep.json`."""
    from ebgan_keras import files
    from ebgan_keras.run import sweeps

    spec = files.read_json(os.path.join(out_dir, sweeps.SWEEP_FILE)) or {}
    return spec.get("trials", [])
