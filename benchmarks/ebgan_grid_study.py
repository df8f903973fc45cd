"""The EBGAN paper's robustness claim, re-run on its own MNIST grid (issue 38).

Zhao, Mathieu and LeCun (ICLR 2017, section 4.1) train fully connected GANs
and EBGANs on MNIST over a grid of architectures (`grids/ebgan_paper_ebgan.json`:
512 settings, Adam 0.001, margin 10) and, for the GAN, also optimizers and
learning rates (`grids/ebgan_paper_gan.json`: 6144), and show histograms of a
modified inception score `I' = E_x KL(p(y) || p(y|x))` (Figure 2: all
settings and the subsets nLayer[GD] <= 4 and <= 3; Figure 3: the GAN split by
its 12 optimizer rows; Figure 9: the margin swept at one setting,
`grids/ebgan_paper_margin.json`).

The study, run as one resumable `ek.sweep` (Ray Tune; one trial = one run of
the training driver, scored on the offline MNIST classifier with FID, IS and
`I'`):

- `--architectures` (48) architectures drawn by seed from the 512, stratified
  by depth (max(nLayerG, nLayerD) <= 3, = 4, = 5: a third each, so the <= 3
  and <= 4 panels are well filled; shares over "all settings" are weighted
  back to the grid's 128 / 160 / 224 architectures), each trained as GAN
  (Adam, 0.001: the EBGAN's optimizer, so only the loss differs), EBGAN and
  EBGAN-PT with one training seed per architecture;
- the GAN's other 11 optimizer / learning-rate rows on the first
  `--gan-row-architectures` (16) of them (Figure 3);
- the margin sweep over `--margin-seeds` (3) seeds (Figure 9).

`--probe` trains a few settings instead and scores them after every epoch,
to choose the epoch count with a convergence argument; it also times an
epoch of each, and the probe report estimates the full study's CPU time.

Results (`benchmarks/results/`): `ebgan_grid_study.{md,json,jsonl}` (table,
protocol, per-trial rows), `ebgan_grid_study_fig2.png`, `_fig3.png`,
`_fig9.png`; the probe's `ebgan_grid_probe.{md,json,png}`.

Usage:
    python benchmarks/ebgan_grid_study.py --probe --out runs/grid_probe
    python benchmarks/ebgan_grid_study.py --epochs 10 --out runs/ebgan_grid_study
    python benchmarks/ebgan_grid_study.py --report-only --out runs/ebgan_grid_study
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402

GRIDS = HERE / "grids"
EBGAN_GRID = GRIDS / "ebgan_paper_ebgan.json"
GAN_GRID = GRIDS / "ebgan_paper_gan.json"
MARGIN_GRID = GRIDS / "ebgan_paper_margin.json"
NAME = "ebgan_grid_study"
PROBE_NAME = "ebgan_grid_probe"
MODELS = ("GAN", "EBGAN", "EBGANPT")
ARCHITECTURE_AXES = ("nLayerG", "nLayerD", "sizeG", "sizeD", "dropoutD")
#: The GAN row trained on every architecture: the EBGAN's own optimizer.
PAPER_ROW = ("adam", "adam", 0.001)
#: Depth strata: max(nLayerG, nLayerD) <= 3, == 4, == 5 (Figure 2's panels).
STRATA = (3, 4, 5)
#: A trial "learned" when its IS (offline MNIST classifier) reaches this.
LEARNED_IS = 5.0
STUDY_FILE = "study.json"
PROBE_SCORES = "probe_scores.jsonl"
#: Probe settings: small, the paper's Figure 9 setting, the largest.
PROBE_SETTINGS = (
    {"nLayerG": 3, "nLayerD": 3, "sizeG": 800, "sizeD": 256, "dropoutD": False},
    {"nLayerG": 5, "nLayerD": 2, "sizeG": 1600, "sizeD": 1024, "dropoutD": False},
    {"nLayerG": 5, "nLayerD": 5, "sizeG": 3200, "sizeD": 1024, "dropoutD": True},
)


# ----------------------------------------------------------------------
# Grids and the plan
# ----------------------------------------------------------------------
def read_grid(path: Path) -> dict:
    """A grid file of `benchmarks/grids/` (paper's axes, fixed settings, notes).

    Args:
        path: Path. The JSON file.

    Returns:
        The grid file's dict.
    """
    return json.loads(Path(path).read_text())


def grid_settings(grid: dict) -> list[dict]:
    """Every setting of a grid file, in grid order (its `setting` merged in).

    Args:
        grid: dict. A grid file's dict.

    Returns:
        A list of `{axis: value}`.
    """
    from ebgan_keras.run import sweeps

    fixed = dict(grid.get("setting", {}))
    return [{**fixed, **point} for point in sweeps.expand(grid["axes"])]


def optimizer_rows(grid: dict) -> list[tuple]:
    """The `(optimD, optimG, lr)` rows of a grid, in grid order."""
    axes = grid["axes"]
    return [
        (d, g, lr) for d in axes["optimD"] for g in axes["optimG"] for lr in axes["lr"]
    ]


def stratum(setting: dict) -> int:
    """The depth stratum of a setting: max(nLayerG, nLayerD), 3 for <= 3."""
    return max(3, setting["nLayerG"], setting["nLayerD"])


def draw_architectures(grid: dict, count: int, seed: int) -> list[dict]:
    """`count` distinct architectures of the EBGAN grid, stratified by depth.

    The strata (max depth <= 3, 4, 5) get `count // 3` each, the shallow ones
    first taking the remainder; each stratum is drawn without replacement
    (seeded) and the draws interleave, so that the first `k` architectures
    are themselves spread over the strata.

    Args:
        grid: dict. The EBGAN grid file's dict.
        count: int. How many; at least 3, at most 512.
        seed: int. Seed of the draw.

    Returns:
        A list of `{nLayerG, nLayerD, sizeG, sizeD, dropoutD}`.
    """
    settings = [
        {axis: s[axis] for axis in ARCHITECTURE_AXES} for s in grid_settings(grid)
    ]
    by_stratum = {k: [s for s in settings if stratum(s) == k] for k in STRATA}
    if not 3 <= count <= len(settings):
        raise ValueError(
            f"`count` must be in [3, {len(settings)}] (one per depth stratum at "
            f"least). Received: count={count}"
        )
    rng = random.Random(seed)
    drawn = {}
    for position, k in enumerate(STRATA):
        size = count // 3 + (1 if position < count % 3 else 0)
        drawn[k] = rng.sample(by_stratum[k], size)
    ordered = []
    for number in range(max(len(v) for v in drawn.values())):
        ordered.extend(drawn[k][number] for k in STRATA if number < len(drawn[k]))
    return ordered


def stratum_weights(architectures: list[dict], grid: dict) -> dict:
    """Weight of one drawn architecture of each stratum: grid share / draws."""
    settings = grid_settings(grid)
    total = {k: sum(stratum(s) == k for s in settings) for k in STRATA}
    drawn = {k: sum(stratum(s) == k for s in architectures) for k in STRATA}
    return {k: (total[k] / drawn[k] if drawn[k] else 0.0) for k in STRATA}


def _width(units: int, divisor: int) -> int:
    return max(1, int(units) // int(divisor))


def trial_overrides(
    model: str,
    setting: dict,
    fixed: dict,
    seed: int,
    row: tuple = PAPER_ROW,
    margin: float | None = None,
    width_divisor: int = 1,
) -> dict:
    """The `ek.sweep` trial (`{dotted path: value}`) of one model and setting.

    G: nLayerG - 1 hidden layers of sizeG and the pixel layer. D: nLayerD - 1
    layers of sizeD and, for EBGAN / EBGAN-PT, a one-layer decoder; for the
    GAN a one-logit layer (nLayerD counts encoder and decoder together).

    Args:
        model: str. `"GAN"`, `"EBGAN"` or `"EBGANPT"`.
        setting: dict. `nLayerG`, `nLayerD`, `sizeG`, `sizeD`, `dropoutD`.
        fixed: dict. The grid file's fixed settings.
        seed: int. The trial's training seed.
        row: tuple. `(optimD, optimG, lr)`. Defaults to Adam, Adam, 0.001.
        margin: float. EBGAN's margin. Defaults to `fixed["margin"]`.
        width_divisor: int. Divide every width (smoke runs only). Defaults
            to `1`.

    Returns:
        dict of dotted config paths.
    """
    if model not in MODELS:
        raise ValueError(f"`model` must be one of {MODELS}. Received: {model!r}")
    dropout = fixed["dropout_rate"] if setting["dropoutD"] else 0.0
    trunk = [_width(setting["sizeD"], width_divisor)] * (setting["nLayerD"] - 1)
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
        arguments = {"margin": float(fixed["margin"] if margin is None else margin)}
        if model == "EBGANPT":
            arguments["pt_weight"] = fixed["pt_weight"]
    hidden = [_width(setting["sizeG"], width_divisor)] * (setting["nLayerG"] - 1)
    return {
        "class": model,
        "model": arguments,
        "generator": {
            "builder": "ebgan_mlp_generator",
            "kwargs": {"hidden_units": hidden, "latent_dim": fixed["latent_dim"]},
        },
        "discriminator": discriminator,
        "training.optimizer": {"discriminator": row[0], "generator": row[1]},
        "training.learning_rate": row[2],
        "training.seed": seed,
    }


def plan_study(
    architectures: int = 48,
    gan_row_architectures: int = 16,
    margin_seeds: int = 3,
    seed: int = 0,
    width_divisor: int = 1,
) -> dict:
    """The study's trials and what each one is.

    Args:
        architectures: int. Architectures drawn from the 512. Defaults to 48.
        gan_row_architectures: int. The first this many also train the GAN's
            other 11 optimizer rows. Defaults to 16.
        margin_seeds: int. Seeds of the margin sweep. Defaults to 3.
        seed: int. Seed of the draw; architecture `i` trains with seed
            `seed + i`, margin seed `s` with `seed + 1000 + s`. Defaults to 0.
        width_divisor: int. Divide every width (smoke runs only).

    Returns:
        dict: `trials` (sweep overrides), `meta` (one dict per trial: `part`
        `"main"`, `"gan_rows"` or `"margin"`, `architecture`, `model`, `row`,
        `margin`, `setting`, `stratum`, `weight`), `architectures`.
    """
    ebgan, gan, margin = (
        read_grid(EBGAN_GRID),
        read_grid(GAN_GRID),
        read_grid(MARGIN_GRID),
    )
    if not 0 <= gan_row_architectures <= architectures:
        raise ValueError(
            "`gan_row_architectures` must be in [0, architectures]. Received: "
            f"{gan_row_architectures} of {architectures}"
        )
    drawn = draw_architectures(ebgan, architectures, seed)
    weights = stratum_weights(drawn, ebgan)
    fixed = ebgan["fixed"]
    trials, meta = [], []

    def add(part, number, model, setting, trial_seed, row=PAPER_ROW, m=None):
        trials.append(
            trial_overrides(model, setting, fixed, trial_seed, row, m, width_divisor)
        )
        meta.append(
            {
                "part": part,
                "architecture": number,
                "model": model,
                "row": list(row),
                "margin": float(fixed["margin"] if m is None else m),
                "setting": {axis: setting[axis] for axis in ARCHITECTURE_AXES},
                "stratum": stratum(setting),
                "weight": weights.get(stratum(setting), 1.0)
                if part != "margin"
                else 1.0,
                "seed": trial_seed,
            }
        )

    for number, setting in enumerate(drawn):
        for model in MODELS:
            add("main", number, model, setting, seed + number)
    figure9 = margin["setting"]
    for s in range(margin_seeds):
        for m in margin["axes"]["margin"]:
            add("margin", None, "EBGAN", figure9, seed + 1000 + s, m=m)
    for number, setting in enumerate(drawn[:gan_row_architectures]):
        for row in optimizer_rows(gan):
            if tuple(row) != PAPER_ROW:
                add("gan_rows", number, "GAN", setting, seed + number, row)
    return {"trials": trials, "meta": meta, "architectures": drawn}


def dense_layers(model) -> list[int]:
    """The widths of a Keras model's Dense layers, in order."""
    import keras

    return [
        layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)
    ]


# ----------------------------------------------------------------------
# Probe: scores over epochs, and time per epoch
# ----------------------------------------------------------------------
def _score(model, data: str, num_samples: int) -> dict:
    import numpy as np

    from ebgan_keras.metrics import evaluate

    images = np.asarray(model.generate(num_samples, seed=0), dtype="float32")
    if not np.all(np.isfinite(images)):
        return {"is": None, "ebgan_is": None, "fid": None, "diverged": True}
    report = evaluate(
        images,
        reference=data,
        metrics=("fid", "is", "ebgan_is"),
        features="mnist_classifier",
        reference_name=data,
        reference_split="test",
        seed=0,
    ).to_dict()
    return {
        "is": report["is"]["values"]["is"],
        "ebgan_is": report["ebgan_is"]["values"]["ebgan_is"],
        "fid": report["fid"]["values"]["fid"],
        "diverged": False,
    }


def _epoch_scores_callback(path: Path, probe: dict, data: str, num_samples: int):
    import keras

    class EpochScores(keras.callbacks.Callback):
        """Times each epoch, then scores the model; one JSON row per epoch."""

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.start
            begin = time.perf_counter()
            steps = int(self.params.get("steps") or 1)
            row = {
                **probe,
                "epoch": epoch + 1,
                "steps": steps,
                "epoch_seconds": round(seconds, 2),
                "step_seconds": seconds / steps,
                **_score(self.model, data, num_samples),
            }
            row["eval_seconds"] = round(time.perf_counter() - begin, 2)
            with open(path, "a") as handle:
                handle.write(json.dumps(row, sort_keys=True) + "\n")

    return EpochScores()


def parameter_count(setting: dict, model: str, latent_dim: int = 64) -> int:
    """Weights of G and D of a setting (dense layers only; the cost model)."""
    g = [latent_dim] + [setting["sizeG"]] * (setting["nLayerG"] - 1) + [784]
    d = [784] + [setting["sizeD"]] * (setting["nLayerD"] - 1)
    d.append(1 if model == "GAN" else 784)
    return sum(a * b + b for layers in (g, d) for a, b in zip(layers, layers[1:]))


def run_probe(args) -> list[dict]:
    """Trains the probe settings for `args.probe_epochs`, scoring every epoch."""
    import keras

    from ebgan_keras.run import config as config_lib
    from ebgan_keras.run import sweeps
    from ebgan_keras.run import training

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scores = out / PROBE_SCORES
    fixed = read_grid(EBGAN_GRID)["fixed"]
    done = {(r["probe"], r["epoch"]) for r in read_jsonl(scores)}
    for number in (int(i) for i in args.probe_settings.split(",")):
        setting = PROBE_SETTINGS[number]
        for model in args.probe_models.split(","):
            probe_id = f"{number}_{model}"
            if (probe_id, args.probe_epochs) in done:
                continue
            overrides = trial_overrides(
                model, setting, fixed, args.seed, width_divisor=args.width_divisor
            )
            config = config_lib.load_config("ebgan")
            config = sweeps.set_path(
                config, "training", _training(args, args.probe_epochs)
            )
            for path, value in overrides.items():
                config = sweeps.set_path(config, path, value)
            config = config_lib.validate(config)
            probe = {
                "probe": probe_id,
                "model": model,
                "setting": setting,
                "parameters": parameter_count(setting, model, fixed["latent_dim"]),
            }
            callback = _epoch_scores_callback(
                scores, probe, args.data, args.eval_samples
            )
            keras.backend.clear_session()
            print(f"probe {probe_id}: {setting}", flush=True)
            training.train(
                config, str(out / "probe" / probe_id), verbose=0, callbacks=[callback]
            )
    return read_jsonl(scores)


def _training(args, epochs: int) -> dict:
    return {
        "data": args.data,
        "batch_size": args.batch_size,
        "epochs": epochs,
        "steps_per_epoch": args.steps_per_epoch,
        "seed": args.seed,
    }


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines file (none if it is missing)."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plateau_epoch(scores: list[float], tolerance: float) -> int:
    """First epoch from which every later score stays within `tolerance` of the last.

    Args:
        scores: list of float. A score per epoch (epoch 1 first).
        tolerance: float. Allowed distance from the final score.

    Returns:
        int. The epoch (1-based); `len(scores)` when only the last is flat.
    """
    final = scores[-1]
    epoch = len(scores)
    for index in range(len(scores) - 1, -1, -1):
        if abs(scores[index] - final) > tolerance:
            break
        epoch = index + 1
    return epoch


def probe_summary(
    rows: list[dict], tolerance: float, plan: dict, epochs_hint: int, steps_hint: int
) -> dict:
    """Curves, plateau epochs, seconds per step and the study's CPU estimate.

    Seconds per step: the median over the epochs after the first (which
    compiles), the first alone when there is no other. The estimate fits
    `seconds per step = a + b * parameters` over the probes and sums it over
    the plan's trials, `steps_hint` steps per epoch and `epochs_hint` epochs.
    """
    import numpy as np

    curves = {}
    for row in sorted(rows, key=lambda r: (r["probe"], r["epoch"])):
        curves.setdefault(row["probe"], []).append(row)
    probes = {}
    for probe_id, curve in curves.items():
        scores = [r["is"] if r["is"] is not None else 1.0 for r in curve]
        probes[probe_id] = {
            "model": curve[0]["model"],
            "setting": curve[0]["setting"],
            "parameters": curve[0]["parameters"],
            "epochs": len(curve),
            "is": [round(s, 3) for s in scores],
            "ebgan_is": [r["ebgan_is"] for r in curve],
            "fid": [r["fid"] for r in curve],
            "epoch_seconds": statistics.median(r["epoch_seconds"] for r in curve),
            "step_seconds": statistics.median(
                r["step_seconds"] for r in (curve[1:] or curve)
            ),
            "eval_seconds": statistics.median(r["eval_seconds"] for r in curve),
            "plateau_epoch": plateau_epoch(scores, tolerance),
            "learned": scores[-1] >= LEARNED_IS,
        }
    summary = {"tolerance_is": tolerance, "probes": probes}
    if len({p["parameters"] for p in probes.values()}) >= 2:
        x = np.array([p["parameters"] for p in probes.values()], float)
        y = np.array([p["step_seconds"] for p in probes.values()], float)
        slope, intercept = np.polyfit(x, y, 1)
        intercept = max(float(intercept), 0.0)
        per_trial = [
            (intercept + slope * parameter_count(m["setting"], m["model"])) * steps_hint
            for m in plan["meta"]
        ]
        summary["cost_model"] = {
            "step_seconds": f"{intercept:.3g} + {slope:.3g} * parameters",
            "steps_per_epoch": steps_hint,
            "intercept": intercept,
            "slope": float(slope),
        }
        summary["estimate"] = {
            "trials": len(per_trial),
            "epochs": epochs_hint,
            "cpu_hours_training": round(sum(per_trial) * epochs_hint / 3600, 1),
            "eval_hours": round(
                len(per_trial)
                * statistics.median(p["eval_seconds"] for p in probes.values())
                / 3600,
                2,
            ),
            "median_trial_epoch_seconds": round(statistics.median(per_trial), 1),
            "largest_trial_epoch_seconds": round(max(per_trial), 1),
        }
    learned = [p for p in probes.values() if p["learned"]]
    if learned:
        summary["suggested_epochs"] = max(p["plateau_epoch"] for p in learned)
    return summary


def write_probe_report(
    summary: dict, protocol: dict, rows: list[dict], results: Path
) -> str:
    """The probe's markdown, JSON and curve figure."""
    lines = [
        "| probe | model | setting | parameters | ms / step | IS per epoch "
        "| I' per epoch | plateau epoch (IS within tolerance of the last) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for probe_id, p in summary["probes"].items():
        s = p["setting"]
        setting = (
            f"G {s['nLayerG']}x{s['sizeG']}, D {s['nLayerD']}x{s['sizeD']}"
            f"{', dropout' if s['dropoutD'] else ''}"
        )
        ebgan_is = ", ".join("-" if v is None else f"{v:.2f}" for v in p["ebgan_is"])
        lines.append(
            f"| {probe_id} | {p['model']} | {setting} | {p['parameters']:,} | "
            f"{1000 * p['step_seconds']:.1f} | "
            f"{', '.join(f'{v:.2f}' for v in p['is'])} | "
            f"{ebgan_is} | {p['plateau_epoch']} of {p['epochs']} |"
        )
    lines.append("")
    if "estimate" in summary:
        e = summary["estimate"]
        lines.append(
            f"Cost model (least squares over the probes): seconds per step = "
            f"{summary['cost_model']['step_seconds']}, "
            f"{summary['cost_model']['steps_per_epoch']} steps per epoch. The full "
            f"study ({e['trials']} "
            f"trials) at {e['epochs']} epochs: about {e['cpu_hours_training']} "
            "hours of training on this machine's CPUs (median trial "
            f"{e['median_trial_epoch_seconds']} s per epoch, largest "
            f"{e['largest_trial_epoch_seconds']} s), plus {e['eval_hours']} h of "
            "scoring."
        )
    if "suggested_epochs" in summary:
        lines.append(
            f"Suggested epoch count: {summary['suggested_epochs']} (the latest plateau "
            f"epoch of the probes that learned, IS >= {LEARNED_IS:g}; tolerance "
            f"{summary['tolerance_is']} IS)."
        )
    else:
        lines.append(
            "No probe learned (IS >= 5) within the probe's epochs: no epoch count can "
            "be argued from these curves; probe longer."
        )
    lines.append("")
    lines.append(
        f"Protocol: {protocol['probe_epochs']} epochs of "
        f"{protocol['steps_per_epoch'] or 'one pass over the data'} steps, batch "
        f"{protocol['batch_size']}, data {protocol['data']}, width divisor "
        f"{protocol['width_divisor']}, {protocol['eval_samples']} samples scored after "
        f"every epoch (offline MNIST classifier, FID against the test split), backend "
        f"{protocol['backend']}; command `{protocol['command']}`."
    )
    text = "\n".join(lines) + "\n"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{PROBE_NAME}.md").write_text(text)
    (results / f"{PROBE_NAME}.json").write_text(
        json.dumps({"protocol": protocol, "summary": summary, "rows": rows}, indent=1)
        + "\n"
    )
    _plot_probe(summary, results / f"{PROBE_NAME}.png")
    return text


def _plot_probe(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for probe_id, p in summary["probes"].items():
        epochs = range(1, p["epochs"] + 1)
        axes[0].plot(epochs, p["is"], marker="o", label=probe_id)
        axes[1].plot(
            epochs, [0.0 if v is None else v for v in p["ebgan_is"]], marker="o"
        )
    axes[0].set_ylabel("IS (offline MNIST classifier)")
    axes[1].set_ylabel("I' = E KL(p(y) || p(y|x))")
    for axis in axes:
        axis.set_xlabel("epoch")
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


# ----------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------
def _value(row: dict | None, metric: str) -> float:
    """A trial's score; a failed or diverged trial scores the worst value."""
    worst = {"is": 1.0, "ebgan_is": 0.0, "fid": math.inf}[metric]
    if row is None or row.get("error") or row.get("diverged"):
        return worst
    value = row.get(metric)
    return worst if value is None else float(value)


def weighted_median(values: list[float], weights: list[float]) -> float | None:
    """The weighted median (lower one on a tie)."""
    if not values:
        return None
    pairs = sorted(zip(values, weights))
    total = sum(weights)
    running = 0.0
    for value, weight in pairs:
        running += weight
        if running >= total / 2:
            return value
    return pairs[-1][0]


def join_rows(rows: list[dict], meta: list[dict]) -> list[dict]:
    """The sweep's rows with what each trial is (`meta`), by trial index."""
    return [{**meta[row["index"]], **row} for row in rows]


def _panel(trials: list[dict], depth: int) -> list[dict]:
    return [t for t in trials if t["stratum"] <= depth]


def summarize(trials: list[dict]) -> dict:
    """The table: per model and panel, learned share, medians, best, paired wins."""
    from scipy import stats

    main = [t for t in trials if t["part"] == "main"]
    table = {}
    for model in MODELS:
        mine = [t for t in main if t["model"] == model]
        entry = {"trials": len(mine)}
        for depth, panel in ((5, "all"), (4, "le4"), (3, "le3")):
            sub = _panel(mine, depth)
            weights = [t["weight"] for t in sub]
            total = sum(weights) or 1.0
            entry[f"learned_{panel}"] = (
                sum(w for t, w in zip(sub, weights) if _value(t, "is") >= LEARNED_IS)
                / total
                if sub
                else None
            )
            entry[f"n_{panel}"] = len(sub)
        weights = [t["weight"] for t in mine]
        for metric in ("is", "ebgan_is", "fid"):
            values = [_value(t, metric) for t in mine]
            entry[f"median_{metric}"] = weighted_median(values, weights)
            finite = [v for v in values if math.isfinite(v)]
            best = (min if metric == "fid" else max)(finite) if finite else None
            entry[f"best_{metric}"] = best
        entry["failed"] = sum(bool(t.get("error")) for t in mine)
        entry["diverged"] = sum(bool(t.get("diverged")) for t in mine)
        entry["wall_time_s"] = sum(t.get("wall_time_s") or 0.0 for t in mine)
        table[model] = entry
    by_arch = {}
    for t in main:
        by_arch.setdefault(t["architecture"], {})[t["model"]] = t
    for model in MODELS[1:]:
        pairs = [
            (g[model], g["GAN"]) for g in by_arch.values() if model in g and "GAN" in g
        ]
        wins = sum(_value(a, "is") > _value(b, "is") for a, b in pairs)
        losses = sum(_value(a, "is") < _value(b, "is") for a, b in pairs)
        entry = table[model]
        entry["paired"] = len(pairs)
        entry["beats_gan_is"] = wins
        entry["loses_to_gan_is"] = losses
        entry["beats_gan_ebgan_is"] = sum(
            _value(a, "ebgan_is") > _value(b, "ebgan_is") for a, b in pairs
        )
        entry["lower_fid_than_gan"] = sum(
            _value(a, "fid") < _value(b, "fid") for a, b in pairs
        )
        entry["sign_test_p"] = (
            float(
                stats.binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue
            )
            if wins + losses
            else None
        )
    # The GAN over all 12 optimizer rows, on the architectures that have them.
    rows_archs = {t["architecture"] for t in trials if t["part"] == "gan_rows"}
    gan_all = [
        t
        for t in trials
        if t["model"] == "GAN"
        and t["architecture"] in rows_archs
        and t["part"] != "margin"
    ]
    ebgan_same = [
        t for t in main if t["model"] == "EBGAN" and t["architecture"] in rows_archs
    ]
    table["gan_all_rows"] = {
        "architectures": len(rows_archs),
        "trials": len(gan_all),
        "learned": (
            sum(_value(t, "is") >= LEARNED_IS for t in gan_all) / len(gan_all)
            if gan_all
            else None
        ),
        "ebgan_learned_same_architectures": (
            sum(_value(t, "is") >= LEARNED_IS for t in ebgan_same) / len(ebgan_same)
            if ebgan_same
            else None
        ),
        "by_row": {},
    }
    for t in gan_all:
        key = "/".join(str(v) for v in t["row"])
        table["gan_all_rows"]["by_row"].setdefault(key, []).append(_value(t, "is"))
    table["gan_all_rows"]["by_row"] = {
        key: {
            "trials": len(v),
            "learned": sum(x >= LEARNED_IS for x in v) / len(v),
            "median_is": statistics.median(v),
        }
        for key, v in table["gan_all_rows"]["by_row"].items()
    }
    margins = {}
    for t in trials:
        if t["part"] == "margin":
            margins.setdefault(t["margin"], []).append(t)
    table["margin"] = {
        f"{m:g}": {
            "seeds": len(v),
            "median_is": statistics.median(_value(t, "is") for t in v),
            "median_ebgan_is": statistics.median(_value(t, "ebgan_is") for t in v),
            "learned": sum(_value(t, "is") >= LEARNED_IS for t in v),
        }
        for m, v in sorted(margins.items())
    }
    table["verdict"] = verdict(table)
    return table


def verdict(table: dict) -> dict:
    """The robustness claim, supported or not, by an explicit rule.

    Supported when both EBGAN and EBGAN-PT learn (IS >= 5) in a larger share
    of the architectures than the GAN with the same optimizer, and beat the
    GAN of the same architecture more often than not with a one-sided sign
    test p < 0.05.
    """
    gan = table["GAN"].get("learned_all")
    reasons, supported = [], gan is not None
    for model in MODELS[1:]:
        entry = table[model]
        share, p = entry.get("learned_all"), entry.get("sign_test_p")
        better = share is not None and gan is not None and share > gan
        wins = (
            p is not None
            and p < 0.05
            and entry["beats_gan_is"] > entry["loses_to_gan_is"]
        )
        supported = supported and better and wins
        reasons.append(
            f"{model}: learned in {_pct(share)} vs the GAN's {_pct(gan)}; higher "
            f"IS than the GAN of the same architecture in "
            f"{entry.get('beats_gan_is', 0)} of {entry.get('paired', 0)} (lower in "
            f"{entry.get('loses_to_gan_is', 0)}; sign test p = "
            f"{'-' if p is None else f'{p:.3g}'})"
        )
    return {"supported": bool(supported), "reasons": reasons}


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _fmt(value, digits=2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return "inf"
    return f"{value:.{digits}f}"


def markdown(table: dict, protocol: dict) -> str:
    """The study's table, verdict and protocol as markdown."""
    lines = [
        "| model | trials | learned (IS >= 5): all | <= 4 | <= 3 | median IS | best IS "
        "| median I' | best I' | median FID | best FID | higher IS than the GAN "
        "(same architecture) | lower FID than the GAN | failed / diverged |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model in MODELS:
        e = table[model]
        paired = (
            f"{e['beats_gan_is']} of {e['paired']} (p = {_fmt(e['sign_test_p'], 3)})"
            if "paired" in e
            else "-"
        )
        fid_pairs = (
            f"{e['lower_fid_than_gan']} of {e['paired']}" if "paired" in e else "-"
        )
        lines.append(
            f"| {model} | {e['trials']} | {_pct(e['learned_all'])} | "
            f"{_pct(e['learned_le4'])} | {_pct(e['learned_le3'])} | "
            f"{_fmt(e['median_is'])} | {_fmt(e['best_is'])} | "
            f"{_fmt(e['median_ebgan_is'])} | "
            f"{_fmt(e['best_ebgan_is'])} | {_fmt(e['median_fid'], 1)} | "
            f"{_fmt(e['best_fid'], 1)} | {paired} | {fid_pairs} | "
            f"{e['failed']} / {e['diverged']} |"
        )
    rows = table["gan_all_rows"]
    lines += [
        "",
        f"GAN over all 12 optimizer rows (Figure 3), on {rows['architectures']} of "
        f"the architectures: learned in {_pct(rows['learned'])} of {rows['trials']} "
        "trials; EBGAN on the same architectures: "
        f"{_pct(rows['ebgan_learned_same_architectures'])}.",
        "",
        "| optimD / optimG / lr | trials | learned | median IS |",
        "|---|---|---|---|",
    ]
    for key, r in rows["by_row"].items():
        lines.append(
            f"| {key} | {r['trials']} | {_pct(r['learned'])} | {_fmt(r['median_is'])} |"
        )
    lines += ["", "| margin (Figure 9) | seeds | learned | median IS | median I' |"]
    lines.append("|---|---|---|---|---|")
    for m, r in table["margin"].items():
        lines.append(
            f"| {m} | {r['seeds']} | {r['learned']} | {_fmt(r['median_is'])} | "
            f"{_fmt(r['median_ebgan_is'])} |"
        )
    v = table["verdict"]
    steps = (
        f"{protocol['steps_per_epoch']} steps"
        if protocol["steps_per_epoch"]
        else "one pass over the data"
    )
    smoke = (
        f"; width divisor {protocol['width_divisor']} (a smoke run, not the "
        "paper's widths)"
        if protocol["width_divisor"] != 1
        else ""
    )
    lines += [
        "",
        f'**The claim "EBGAN is more robust to hyperparameters than GAN" is '
        f"{'supported' if v['supported'] else 'not supported'} by these numbers** "
        "(rule: both EBGAN and EBGAN-PT learn in a larger share of the architectures "
        "than the GAN with the same optimizer, and beat it on the same architecture "
        "with a one-sided sign test p < 0.05): " + "; ".join(v["reasons"]) + ".",
        "",
        f"Protocol: {protocol['architectures']} architectures drawn with seed "
        f"{protocol['seed']} from the EBGAN grid's 512, stratified by depth "
        "(max(nLayerG, nLayerD) <= 3 / 4 / 5; 'all' shares and medians weighted "
        "back to the grid's 128 / 160 / 224), each trained "
        f"{protocol['epochs']} epochs of {steps} (batch "
        f"{protocol['batch_size']}, data {protocol['data']}) per model; IS, I' and "
        "FID on "
        f"{protocol['eval_samples']} samples with the offline MNIST classifier (FID "
        "against the test split; a failed or diverged trial counts as IS 1, I' 0). "
        f"{protocol['trials_finished']} of {protocol['trials_planned']} trials "
        f"finished{smoke}.",
    ]
    return "\n".join(lines) + "\n"


def _hist(axis, values, weights, bins, **style) -> None:
    import numpy as np

    if not values:
        return
    weights = np.asarray(weights, float)
    axis.hist(
        np.clip(values, bins[0], bins[-1]),
        bins=bins,
        weights=100.0 * weights / weights.sum(),
        histtype="step",
        linewidth=2,
        **style,
    )


COLOURS = {"GAN": "tab:red", "EBGAN": "tab:blue", "EBGANPT": "tab:green"}


def plot_figure2(trials: list[dict], path: Path) -> None:
    """Figure 2's layout: I' (top) and IS (bottom), all / <= 4 / <= 3."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    main = [t for t in trials if t["part"] == "main"]
    gan_rows = [t for t in trials if t["model"] == "GAN" and t["part"] != "margin"]
    rows_archs = {t["architecture"] for t in trials if t["part"] == "gan_rows"}
    gan_rows = [t for t in gan_rows if t["architecture"] in rows_archs]
    figure, axes = plt.subplots(2, 3, figsize=(14, 7.5), sharey="row")
    panels = ((5, "all settings"), (4, "nLayer[GD] <= 4"), (3, "nLayer[GD] <= 3"))
    metrics = (
        ("ebgan_is", "I' (EBGAN paper's score)", 0.0, 12.5),
        ("is", "IS", 1.0, 10.0),
    )
    for row_axes, (metric, label, low, high) in zip(axes, metrics):
        bins = np.linspace(low, high, 26)
        for axis, (depth, title) in zip(row_axes, panels):
            for model in MODELS:
                sub = _panel([t for t in main if t["model"] == model], depth)
                _hist(
                    axis,
                    [_value(t, metric) for t in sub],
                    [t["weight"] for t in sub],
                    bins,
                    color=COLOURS[model],
                    label=f"{model} (n={len(sub)})",
                )
            sub = _panel(gan_rows, depth)
            _hist(
                axis,
                [_value(t, metric) for t in sub],
                [t["weight"] for t in sub],
                bins,
                color="grey",
                linestyle="--",
                label=f"GAN, all 12 optimizer rows (n={len(sub)})",
            )
            axis.set_title(title)
            axis.set_xlabel(label)
            axis.legend(fontsize=7, loc="upper left")
        row_axes[0].set_ylabel("% of trials (weighted to the grid)")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def plot_figure3(trials: list[dict], path: Path) -> None:
    """Figure 3's layout: the GAN's I' per optimizer row, EBGAN as reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows_archs = {t["architecture"] for t in trials if t["part"] == "gan_rows"}
    gan = [
        t
        for t in trials
        if t["model"] == "GAN"
        and t["part"] != "margin"
        and t["architecture"] in rows_archs
    ]
    ebgan = [
        t
        for t in trials
        if t["part"] == "main"
        and t["model"] == "EBGAN"
        and t["architecture"] in rows_archs
    ]
    pairs = [("adam", "adam"), ("adam", "sgd"), ("sgd", "adam"), ("sgd", "sgd")]
    rates = (0.01, 0.001, 0.0001)
    figure, axes = plt.subplots(4, 3, figsize=(13, 12), sharex=True, sharey=True)
    bins = np.linspace(0.0, 12.5, 26)
    for i, (d, g) in enumerate(pairs):
        for j, lr in enumerate(rates):
            axis = axes[i][j]
            sub = [t for t in gan if t["row"] == [d, g, lr]]
            _hist(
                axis,
                [_value(t, "ebgan_is") for t in sub],
                [1.0] * len(sub),
                bins,
                color="tab:red",
                label=f"GAN (n={len(sub)})",
            )
            _hist(
                axis,
                [_value(t, "ebgan_is") for t in ebgan],
                [1.0] * len(ebgan),
                bins,
                color="tab:blue",
                label=f"EBGAN (n={len(ebgan)})",
            )
            axis.set_title(f"optimD={d}, optimG={g}, lr={lr:g}", fontsize=9)
            axis.legend(fontsize=7)
        axes[i][0].set_ylabel("% of trials")
    for axis in axes[-1]:
        axis.set_xlabel("I'")
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def plot_figure9(trials: list[dict], path: Path) -> None:
    """Figure 9's sweep as a curve: I' and IS against the margin, per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sub = [t for t in trials if t["part"] == "margin"]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, metric, label in ((axes[0], "ebgan_is", "I'"), (axes[1], "is", "IS")):
        margins = sorted({t["margin"] for t in sub})
        axis.scatter(
            [t["margin"] for t in sub],
            [_value(t, metric) for t in sub],
            color="tab:blue",
            alpha=0.5,
            label="one seed",
        )
        if margins:
            medians = [
                statistics.median(_value(t, metric) for t in sub if t["margin"] == m)
                for m in margins
            ]
            axis.plot(margins, medians, color="tab:blue", label="median over seeds")
        axis.set_xscale("log", base=2)
        axis.set_xlabel("margin m (nLayerG 5, nLayerD 2, sizeG 1600, sizeD 1024)")
        axis.set_ylabel(label)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


# ----------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------
def _protocol(args, argv) -> dict:
    import keras

    return {
        "architectures": args.architectures,
        "gan_row_architectures": args.gan_row_architectures,
        "margin_seeds": args.margin_seeds,
        "seed": args.seed,
        "epochs": args.epochs,
        "probe_epochs": args.probe_epochs,
        "steps_per_epoch": args.steps_per_epoch,
        "batch_size": args.batch_size,
        "data": args.data,
        "eval_samples": args.eval_samples,
        "width_divisor": args.width_divisor,
        "backend": keras.backend.backend(),
        "command": " ".join(["python benchmarks/ebgan_grid_study.py", *argv]),
        "machine": _common.machine_info(),
    }


def _write_study_file(out: Path, study: dict, args) -> None:
    spec = {
        "arguments": {
            key: getattr(args, key)
            for key in (
                "architectures",
                "gan_row_architectures",
                "margin_seeds",
                "seed",
                "width_divisor",
                "epochs",
                "steps_per_epoch",
                "batch_size",
                "data",
                "eval_samples",
            )
        },
        "meta": study["meta"],
    }
    path = out / STUDY_FILE
    if path.is_file():
        old = json.loads(path.read_text())
        if old["arguments"] != spec["arguments"]:
            raise SystemExit(
                f"error: {out} holds a study with other arguments "
                f"({old['arguments']}); use another --out or the same arguments."
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec, indent=1) + "\n")


def main(argv=None) -> int:
    """Runs (or resumes) the study, the probe, or the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/ebgan_grid_study", help="sweep folder")
    parser.add_argument("--architectures", type=int, default=48)
    parser.add_argument("--gan-row-architectures", type=int, default=16)
    parser.add_argument("--margin-seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10, help="epochs per trial")
    parser.add_argument(
        "--steps-per-epoch",
        type=int,
        default=None,
        help="default: one pass over the data (937 steps on MNIST)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data", default="mnist")
    parser.add_argument("--eval-samples", type=int, default=5000)
    parser.add_argument(
        "--width-divisor",
        type=int,
        default=1,
        help="divide every width (smoke runs only)",
    )
    parser.add_argument("--num-cpus", type=int, default=None)
    parser.add_argument("--cpus-per-trial", type=float, default=1)
    parser.add_argument("--reuse-workers", action="store_true")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument(
        "--probe", action="store_true", help="score a few settings over epochs instead"
    )
    parser.add_argument("--probe-epochs", type=int, default=5)
    parser.add_argument(
        "--probe-settings",
        default=",".join(str(i) for i in range(len(PROBE_SETTINGS))),
        help="indices into PROBE_SETTINGS (small, Figure 9's, the largest)",
    )
    parser.add_argument("--probe-models", default=",".join(MODELS))
    parser.add_argument(
        "--probe-tolerance",
        type=float,
        default=0.25,
        help="IS distance from the last epoch that counts as flat",
    )
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    out = Path(args.out)
    results = _common.RESULTS_DIR
    study = plan_study(
        args.architectures,
        args.gan_row_architectures,
        args.margin_seeds,
        args.seed,
        args.width_divisor,
    )
    if args.probe:
        rows = run_probe(args)
        # The estimate is for the study: full MNIST epochs, `--epochs` of them.
        steps = 60000 // args.batch_size
        summary = probe_summary(rows, args.probe_tolerance, study, args.epochs, steps)
        print(write_probe_report(summary, _protocol(args, argv), rows, results))
        return 0
    import ebgan_keras as ek

    if args.report_only:
        spec = json.loads((out / STUDY_FILE).read_text())
        study["meta"] = spec["meta"]
        for key, value in spec["arguments"].items():
            setattr(args, key, value)
        rows = ek.run.sweeps.collect(str(out))
    else:
        _write_study_file(out, study, args)
        rows = ek.sweep(
            "ebgan",
            str(out),
            trials=study["trials"],
            overrides={"training": _training(args, args.epochs)},
            evaluation={
                "num_samples": args.eval_samples,
                "features": "mnist_classifier",
                "reference": args.data,
                "metrics": ["fid", "is", "ebgan_is"],
            },
            num_cpus=args.num_cpus,
            cpus_per_trial=args.cpus_per_trial,
            keep_models=False,
            reuse_workers=args.reuse_workers,
            verbose=1,
        )
    trials = join_rows(rows, study["meta"])
    protocol = _protocol(args, argv)
    protocol["trials_planned"] = len(study["meta"])
    protocol["trials_finished"] = len(rows)
    protocol["cpu_seconds_training"] = round(
        sum(t.get("wall_time_s") or 0 for t in trials)
    )
    table = summarize(trials)
    text = markdown(table, protocol)
    print(text)
    results.mkdir(parents=True, exist_ok=True)
    with open(results / f"{NAME}.jsonl", "w") as handle:
        for trial in trials:
            handle.write(json.dumps(trial, sort_keys=True) + "\n")
    (results / f"{NAME}.json").write_text(
        json.dumps({"protocol": protocol, "table": table}, indent=1, default=str) + "\n"
    )
    (results / f"{NAME}.md").write_text(text)
    plot_figure2(trials, results / f"{NAME}_fig2.png")
    plot_figure3(trials, results / f"{NAME}_fig3.png")
    plot_figure9(trials, results / f"{NAME}_fig9.png")
    return 0 if len(rows) == len(study["meta"]) else 2


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
