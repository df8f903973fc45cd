"""The EBGAN paper's stability claim, re-run: GAN vs EBGAN vs EBGAN-PT over its grid.

The paper (Zhao, Mathieu, LeCun 2017, section 4.1) trains fully connected
GANs, EBGANs and EBGAN-PTs on MNIST over a grid of depths, widths, dropout,
optimizers and learning rates (`grids/ebgan_mnist_paper.json`, 6144 settings
per model) and shows histograms of an MNIST-classifier inception score over
the grid (its Figure 2): EBGANs reach good scores in more of the grid.

This script draws the same N settings (seeded) for the three models, trains
each for the same number of steps through `ek.sweep` (Ray Tune; one trial =
one run of the training driver), scores each with the inception score and
FID on the offline MNIST classifier, and writes:

- `results/ebgan_grid_study.jsonl`: one row per trial (settings, seed, steps,
  wall time, IS, FID, diverged);
- `results/ebgan_grid_study.json`: the protocol and the summary table;
- `results/ebgan_grid_study.png`: the histograms, drawn like Figure 2 (all
  settings; settings with nLayerG, nLayerD <= 4; <= 3);
- `results/ebgan_grid_study.md`: the table.

The sweep folder (`--out`, default `runs/ebgan_grid_study`) is resumable:
rerun the same command after an interruption and only unfinished trials run.

Usage:
    python benchmarks/ebgan_grid_study.py                 # N = 32, 300 steps
    python benchmarks/ebgan_grid_study.py --quick         # 4 settings, 50 steps
    python benchmarks/ebgan_grid_study.py --report-only   # tables from a sweep
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402

GRID_FILE = HERE / "grids" / "ebgan_mnist_paper.json"
MODELS = ("GAN", "EBGAN", "EBGANPT")
#: The zoo entries whose score levels the table counts trials above.
LEVEL_ENTRIES = {
    "gan_mnist": "GAN",
    "ebgan_mnist": "EBGAN",
    "ebgan_pt_mnist": "EBGANPT",
}
NAME = "ebgan_grid_study"


def read_grid(path: Path = GRID_FILE) -> dict:
    """The paper's grid file: `axes`, `fixed` settings and `notes`."""
    return json.loads(Path(path).read_text())


def draw_settings(grid: dict, num_settings: int, seed: int) -> list[dict]:
    """`num_settings` distinct points of the paper's grid, seeded.

    Args:
        grid: dict. The grid file's dict.
        num_settings: int. How many settings.
        seed: int. Seed of the draw.

    Returns:
        A list of `{axis: value}`, in grid order.
    """
    from ebgan_keras.run import sweeps

    return sweeps.expand(grid["axes"], num_settings, seed)


def trial_overrides(model: str, setting: dict, fixed: dict, seed: int) -> dict:
    """The `ek.sweep` trial (`{dotted path: value}`) of one model and setting.

    Args:
        model: str. `"GAN"`, `"EBGAN"` or `"EBGANPT"`.
        setting: dict. A point of the paper's grid.
        fixed: dict. The grid file's fixed settings.
        seed: int. The trial's training seed (shared by the three models).

    Returns:
        dict of dotted config paths.
    """
    dropout = fixed["dropout_rate"] if setting["dropoutD"] else 0.0
    trunk = [setting["sizeD"]] * (setting["nLayerD"] - 1)
    if model == "GAN":
        discriminator = {
            "builder": "gan_mlp_discriminator",
            "kwargs": {"hidden_units": trunk, "dropout": dropout},
        }
        arguments = {}
    else:
        discriminator = {
            "builder": "ebgan_mlp_discriminator",
            "kwargs": {"encoder_units": trunk, "dropout": dropout},
        }
        arguments = {"margin": fixed["margin"]}
        if model == "EBGANPT":
            arguments["pt_weight"] = fixed["pt_weight"]
    return {
        "class": model,
        "model": arguments,
        "generator.kwargs.hidden_units": [setting["sizeG"]] * (setting["nLayerG"] - 1),
        "generator.kwargs.latent_dim": fixed["latent_dim"],
        "discriminator": discriminator,
        "training.optimizer": {
            "discriminator": setting["optimD"],
            "generator": setting["optimG"],
        },
        "training.learning_rate": setting["lr"],
        "training.seed": seed,
    }


def plan_study(num_settings: int, seed: int, steps: int, grid: dict) -> dict:
    """The study's sweep: base, overrides and trials (settings x models)."""
    settings = draw_settings(grid, num_settings, seed)
    trials = []
    for number, setting in enumerate(settings):
        for model in MODELS:
            trials.append(trial_overrides(model, setting, grid["fixed"], seed + number))
    return {
        "settings": settings,
        "trials": trials,
        "overrides": {
            "training": {
                "data": "mnist",
                "batch_size": grid["fixed"]["batch_size"],
                "epochs": 1,
                "steps_per_epoch": steps,
            }
        },
    }


def entry_levels(num_samples: int, seed: int) -> dict:
    """IS and FID of the shipped MNIST entries, with the study's protocol."""
    import numpy as np

    import ebgan_keras as ek
    from ebgan_keras.metrics import evaluate

    levels = {}
    for entry, model_class in LEVEL_ENTRIES.items():
        model = ek.zoo.load(entry)
        images = np.asarray(model.generate(num_samples, seed=seed))
        report = evaluate(
            images,
            reference="mnist",
            metrics=("fid", "is"),
            features="mnist_classifier",
            reference_name="mnist",
            reference_split="test",
            seed=seed,
        ).to_dict()
        levels[entry] = {
            "class": model_class,
            "is": report["is"]["values"]["is"],
            "fid": report["fid"]["values"]["fid"],
        }
    return levels


def summarize(rows: list[dict], settings: list[dict], levels: dict) -> dict:
    """The table: per model, median IS/FID, fractions above levels, diverged."""
    table = {}
    for model in MODELS:
        mine = [row for row in rows if row["class"] == model]
        scores = [row["is"] for row in mine if row.get("is") is not None]
        fids = [row["fid"] for row in mine if row.get("fid") is not None]
        entry = {
            "trials": len(mine),
            "median_is": statistics.median(scores) if scores else None,
            "median_fid": statistics.median(fids) if fids else None,
            "best_is": max(scores) if scores else None,
            "diverged": sum(bool(row["diverged"]) for row in mine) / max(1, len(mine)),
            "failed": sum(row["error"] is not None for row in mine),
            "median_wall_time_s": (
                statistics.median(row["wall_time_s"] for row in mine) if mine else None
            ),
        }
        count = max(1, len(mine))
        for name, level in levels.items():
            above = sum(score >= level["is"] for score in scores)
            entry[f"above_{name}_is"] = above / count
        for threshold in (2.0, 5.0, 8.0):
            above = sum(score >= threshold for score in scores)
            entry[f"is_above_{threshold:g}"] = above / count
        entry["best_fid"] = min(fids) if fids else None
        table[model] = entry
    # Paired: per shared setting, does the model beat the GAN?
    by_setting = {}
    for row in rows:
        by_setting.setdefault(row["index"] // len(MODELS), {})[row["class"]] = row
    for model in MODELS[1:]:
        pairs = [
            (group[model], group["GAN"])
            for group in by_setting.values()
            if model in group and "GAN" in group
        ]
        scored = [
            (mine, gan)
            for mine, gan in pairs
            if mine.get("fid") is not None and gan.get("fid") is not None
        ]
        table[model]["settings_paired_with_gan"] = len(scored)
        table[model]["lower_fid_than_gan"] = sum(
            mine["fid"] < gan["fid"] for mine, gan in scored
        ) / max(1, len(scored))
        table[model]["higher_is_than_gan"] = sum(
            mine["is"] > gan["is"] for mine, gan in scored
        ) / max(1, len(scored))
    return table


def _setting_of(row: dict, settings: list[dict]) -> dict:
    return settings[row["index"] // len(MODELS)]


def plot(rows: list[dict], settings: list[dict], path: Path) -> None:
    """Histograms per model like the paper's Figure 2: IS (top) and FID (bottom).

    Three columns as in the paper: all settings, settings with nLayerG and
    nLayerD <= 4, and <= 3. A diverged or failed trial counts in the worst
    bin (IS 1, FID at the axis' end).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    panels = (("all settings", 5), ("nLayerG, nLayerD <= 4", 4), ("<= 3", 3))
    metrics = (
        ("is", "inception score (MNIST classifier; higher is better)", 1.0, 10.0),
        ("fid", "FID (MNIST classifier features; lower is better)", 0.0, 700.0),
    )
    figure, axes = plt.subplots(2, 3, figsize=(14, 7.5), sharey="row")
    colours = {"GAN": "tab:red", "EBGAN": "tab:blue", "EBGANPT": "tab:green"}
    for row_axes, (metric, label, low, high) in zip(axes, metrics):
        bins = np.linspace(low, high, 19)
        worst = low if metric == "is" else high
        for axis, (title, depth) in zip(row_axes, panels):
            for model in MODELS:
                mine = [
                    row
                    for row in rows
                    if row["class"] == model
                    and _setting_of(row, settings)["nLayerG"] <= depth
                    and _setting_of(row, settings)["nLayerD"] <= depth
                ]
                values = [
                    row[metric] if row.get(metric) is not None else worst
                    for row in mine
                ]
                if not values:
                    continue
                axis.hist(
                    np.clip(values, low, high),
                    bins=bins,
                    weights=np.full(len(values), 100.0 / len(values)),
                    histtype="step",
                    linewidth=2,
                    color=colours[model],
                    label=f"{model} (n={len(values)})",
                )
            axis.set_title(title)
            axis.set_xlabel(label, fontsize=8)
            axis.legend(loc="upper right", fontsize=8)
        row_axes[0].set_ylabel("% of trials")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def markdown(table: dict, levels: dict, protocol: dict) -> str:
    """The summary table as markdown."""
    names = list(levels)
    head = (
        "| model | trials | median IS | best IS | median FID | best FID | "
        + " | ".join(f"IS >= {n} ({levels[n]['is']:.2f})" for n in names)
        + " | IS >= 5 | lower FID than GAN (same setting) | diverged | "
        "median wall s |"
    )
    lines = [head, "|" + "---|" * (11 + len(names) - 1)]

    def fmt(value, digits=2):
        return "-" if value is None else f"{value:.{digits}f}"

    for model, entry in table.items():
        lines.append(
            f"| {model} | {entry['trials']} | {fmt(entry['median_is'])} | "
            f"{fmt(entry['best_is'])} | {fmt(entry['median_fid'], 1)} | "
            f"{fmt(entry['best_fid'], 1)} | "
            + " | ".join(f"{entry[f'above_{n}_is']:.0%}" for n in names)
            + f" | {entry['is_above_5']:.0%} | "
            + (
                f"{entry['lower_fid_than_gan']:.0%} of "
                f"{entry['settings_paired_with_gan']}"
                if "lower_fid_than_gan" in entry
                else "-"
            )
            + f" | {entry['diverged']:.0%} | {fmt(entry['median_wall_time_s'], 0)} |"
        )
    lines.append("")
    lines.append(
        f"{protocol['num_settings']} settings drawn with seed {protocol['seed']} from "
        f"the paper's grid, each trained {protocol['steps']} steps (batch "
        f"{protocol['batch_size']}) per model; IS and FID on "
        f"{protocol['eval_samples']} samples with the offline MNIST classifier, FID "
        "against the MNIST test split. "
        f"{protocol['trials_finished']} of {3 * protocol['num_settings']} trials "
        "finished."
    )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    """Runs (or resumes) the study and writes its results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", type=int, default=32, help="N settings")
    parser.add_argument("--steps", type=int, default=300, help="steps per trial")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-samples", type=int, default=5000)
    parser.add_argument("--out", default="runs/ebgan_grid_study", help="sweep folder")
    parser.add_argument("--num-cpus", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="4 settings, 50 steps")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--no-save", action="store_true", help="do not write results/ files"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.settings, args.steps, args.eval_samples = 4, 50, 1000
    import ebgan_keras as ek

    grid = read_grid()
    study = plan_study(args.settings, args.seed, args.steps, grid)
    start = time.time()
    if args.report_only:
        rows = ek.run.sweeps.collect(args.out)
    else:
        rows = ek.sweep(
            "ebgan",
            args.out,
            trials=study["trials"],
            overrides=study["overrides"],
            evaluation={
                "num_samples": args.eval_samples,
                "features": "mnist_classifier",
                "reference": "mnist",
            },
            num_cpus=args.num_cpus,
            keep_models=False,
            reuse_workers=True,  # 96 short trials: warm processes
            verbose=1,
        )
    wall = time.time() - start
    levels = entry_levels(args.eval_samples, 0)
    protocol = {
        "num_settings": args.settings,
        "seed": args.seed,
        "steps": args.steps,
        "batch_size": grid["fixed"]["batch_size"],
        "eval_samples": args.eval_samples,
        "grid": grid,
        "quick": args.quick,
        "sweep_wall_time_s": None if args.report_only else round(wall, 1),
        "command": " ".join(
            ["python benchmarks/ebgan_grid_study.py", *(argv or sys.argv[1:])]
        ),
        "machine": _common.machine_info(),
    }
    protocol["trials_finished"] = len(rows)
    previous = _common.RESULTS_DIR / f"{NAME}{'_quick' if args.quick else ''}.json"
    if args.report_only and previous.is_file():
        # The sweep's measured wall time stays with its results.
        old = json.loads(previous.read_text())["protocol"]
        for key in ("sweep_wall_time_s", "sweep_wall_time_note"):
            if old.get(key) is not None:
                protocol[key] = old[key]
    table = summarize(rows, study["settings"], levels)
    text = markdown(table, levels, protocol)
    print(text)
    print(f"{len(rows)} of {len(study['trials'])} trials finished.")
    if args.no_save:
        return 0
    results = _common.RESULTS_DIR
    results.mkdir(parents=True, exist_ok=True)
    prefix = NAME + ("_quick" if args.quick else "")
    with open(results / f"{prefix}.jsonl", "w") as handle:
        for row in rows:
            setting = _setting_of(row, study["settings"])
            handle.write(json.dumps({**row, "setting": setting}, sort_keys=True) + "\n")
    (results / f"{prefix}.json").write_text(
        json.dumps({"protocol": protocol, "levels": levels, "table": table}, indent=1)
        + "\n"
    )
    (results / f"{prefix}.md").write_text(text)
    plot(rows, study["settings"], results / f"{prefix}.png")
    return 0 if len(rows) == len(study["trials"]) else 2


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
