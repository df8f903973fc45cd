"""The EBGAN paper's Table 2 re-run: LN vs EBGAN-LN on PI-MNIST, by seed.

Usage (the full study; resumable: run the same command again after an
interruption):

    KERAS_BACKEND=jax python benchmarks/semi_supervised.py --epochs 150

Each run (model, labels, seed) has its own folder under `--out/runs/`, with
the model saved after every epoch (`model.keras`, `state.json`: epochs done,
wall time so far) and its epoch logs (`log.jsonl`); a finished run appends one
JSON line to `--out/semi_supervised.jsonl` and is skipped afterwards. The
summary (test error mean +- std over seeds, the seeds, wall time, the paper's
numbers beside) is rewritten to `semi_supervised.{json,md}` after every run.

`--epochs 1 --shrink 300` runs the whole pipeline on 300 unlabelled and 300
test images (a test does); `--time-steps N` only measures seconds per
training step of each model (after a warm-up epoch) and the epoch time that
implies, without touching the results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR  # noqa: E402
from _common import machine_info  # noqa: E402

#: The paper's Table 2 (PI-MNIST test error %, mean +- std over 15 seeds).
PAPER = {
    ("ln", 100): "1.36 +- 0.21 (LN bottom-layer-cost reproduced by the EBGAN authors)",
    ("ln", 1000): "1.04 +- 0.06",
    ("ebgan_ln", 100): "1.04 +- 0.12",
    ("ebgan_ln", 1000): "0.89 +- 0.04",
}
MODELS = ("ln", "ebgan_ln")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--seeds-1000", type=int, nargs="*", default=[0], help="seeds at 1000 labels"
    )
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument(
        "--shrink", type=int, default=0, help="use only N unlabelled and N test rows"
    )
    parser.add_argument("--margin", type=float, default=None)
    parser.add_argument("--margin-decay-epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--runs", type=Path, default=None, help="run folders")
    parser.add_argument("--time-steps", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.shrink < 0 or args.batch_size < 1:
        parser.error(
            "--epochs and --batch-size must be >= 1 and --shrink >= 0. Received: "
            f"--epochs {args.epochs} --batch-size {args.batch_size} "
            f"--shrink {args.shrink}"
        )
    return args


def plan(args) -> list[tuple[str, int, int]]:
    runs = [(m, 100, s) for s in args.seeds for m in args.models]
    runs += [(m, 1000, s) for s in args.seeds_1000 for m in args.models]
    return runs


def build(name: str, labels: int, seed: int, args, steps_per_epoch: int):
    import keras

    import ebgan_keras as ek

    ss = ek.semi_supervised
    if name == "ln":
        model = ss.ln(labels, seed=seed)
    else:
        model = ss.ebgan_ln(
            labels,
            seed=seed,
            margin=ss.DEFAULT_MARGIN if args.margin is None else args.margin,
            margin_decay_epochs=args.margin_decay_epochs or max(1, args.epochs // 2),
        )
    # The official ladder schedule: constant 2e-3, then a linear decay to 0
    # over the last third of training.
    decay_start = (2 * args.epochs // 3) * steps_per_epoch
    schedule = ss.LinearDecayAfter(
        2e-3, decay_start, args.epochs * steps_per_epoch - decay_start
    )
    model.compile(
        d_optimizer=keras.optimizers.Adam(schedule),
        g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5),
    )
    return model


def load_data(labels: int, seed: int, shrink: int) -> dict:
    import ebgan_keras as ek

    data = ek.data.semi_supervised.load_pi_mnist(labels, seed=seed)
    if shrink:
        for key in ("x_unlabelled", "x_test", "y_test"):
            data[key] = data[key][:shrink]
    return data


def run_one(name: str, labels: int, seed: int, args, runs_dir: Path) -> dict:
    import keras

    import ebgan_keras as ek

    shrunk = f"_shrink{args.shrink}" if args.shrink else ""
    folder = runs_dir / f"{name}_{labels}_seed{seed}_epochs{args.epochs}{shrunk}"
    folder.mkdir(parents=True, exist_ok=True)
    state_path, model_path = folder / "state.json", folder / "model.keras"
    data = load_data(labels, seed, args.shrink)
    batches = ek.data.semi_supervised.SemiSupervisedBatches(
        data, batch_size=args.batch_size, labelled_batch_size=100, seed=seed
    )
    state = {"epochs_done": 0, "wall_s": 0.0}
    if state_path.exists() and model_path.exists():
        state = json.loads(state_path.read_text())
        model = keras.saving.load_model(model_path)
        print(f"{folder.name}: resuming after epoch {state['epochs_done']}", flush=True)
    else:
        model = build(name, labels, seed, args, len(batches))
    batches.set_epoch(state["epochs_done"])
    started = [time.perf_counter()]

    def checkpoint(epoch, logs):
        now = time.perf_counter()
        state["wall_s"] += now - started[0]
        started[0] = now
        state["epochs_done"] = epoch + 1
        model.save(folder / "model.tmp.keras")
        os.replace(folder / "model.tmp.keras", model_path)
        state_path.write_text(json.dumps(state))
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
        with open(folder / "log.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{folder.name} {json.dumps(row)}", flush=True)

    if state["epochs_done"] < args.epochs:
        model.fit(
            batches,
            initial_epoch=state["epochs_done"],
            epochs=args.epochs,
            verbose=0,
            callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=checkpoint)],
        )
    error = model.error_rate(data["x_test"], data["y_test"])
    return {
        "model": name,
        "labels": labels,
        "seed": seed,
        "epochs": args.epochs,
        "shrink": args.shrink,
        "test_error": error,
        "test_images": len(data["y_test"]),
        "wall_s": round(state["wall_s"], 1),
        "backend": keras.backend.backend(),
    }


def summarize(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        key = (row["model"], row["labels"], row["epochs"], row["shrink"])
        groups.setdefault(key, []).append(row)
    table = []
    for (name, labels, epochs, shrink), members in sorted(groups.items()):
        errors = [r["test_error"] for r in members]
        table.append(
            {
                "model": name,
                "labels": labels,
                "epochs": epochs,
                "shrink": shrink,
                "seeds": [r["seed"] for r in members],
                "test_error_mean": round(statistics.mean(errors), 3),
                "test_error_std": round(statistics.stdev(errors), 3)
                if len(errors) > 1
                else None,
                "wall_s_total": round(sum(r["wall_s"] for r in members), 1),
                "paper": PAPER.get((name, labels)),
            }
        )
    return table


def write_summary(out: Path, rows: list[dict]) -> None:
    table = summarize(rows)
    (out / "semi_supervised.json").write_text(
        json.dumps({"machine": machine_info(), "rows": rows, "table": table}, indent=1)
    )
    lines = [
        "# Semi-supervised PI-MNIST: LN vs EBGAN-LN (test error %)",
        "",
        "Written by `benchmarks/semi_supervised.py`; mean +- std over seeds.",
        "",
        "| model | labels | epochs | shrink | seeds | test error % | wall time (s) "
        "| paper (15 seeds) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in table:
        std = "" if t["test_error_std"] is None else f" +- {t['test_error_std']:.2f}"
        lines.append(
            f"| {t['model']} | {t['labels']} | {t['epochs']} | {t['shrink'] or '-'} "
            f"| {','.join(map(str, t['seeds']))} | {t['test_error_mean']:.2f}{std} "
            f"| {t['wall_s_total']:.0f} | {t['paper'] or '-'} |"
        )
    (out / "semi_supervised.md").write_text("\n".join(lines) + "\n")


def time_steps(args) -> None:
    """Seconds per training step of each model after a warm-up epoch."""
    import keras

    import ebgan_keras as ek

    data = load_data(100, 0, 0)
    for name in args.models:
        batches = ek.data.semi_supervised.SemiSupervisedBatches(
            data, batch_size=args.batch_size, seed=0
        )
        model = build(name, 100, 0, args, len(batches))
        steps = args.time_steps
        model.fit(batches, epochs=1, steps_per_epoch=steps, verbose=0)  # compile
        start = time.perf_counter()
        model.fit(batches, epochs=2, initial_epoch=1, steps_per_epoch=steps, verbose=0)
        per_step = (time.perf_counter() - start) / steps
        print(
            json.dumps(
                {
                    "model": name,
                    "backend": keras.backend.backend(),
                    "s_per_step": round(per_step, 4),
                    "steps_per_epoch": len(batches),
                    "s_per_epoch": round(per_step * len(batches), 1),
                }
            ),
            flush=True,
        )


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.time_steps:
        time_steps(args)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    runs_dir = args.runs or args.out / "semi_supervised_runs"
    results = args.out / "semi_supervised.jsonl"
    rows = []
    if results.exists():
        rows = [json.loads(line) for line in results.read_text().splitlines() if line]
    done = {
        (r["model"], r["labels"], r["seed"], r["epochs"], r["shrink"]) for r in rows
    }
    for name, labels, seed in plan(args):
        if (name, labels, seed, args.epochs, args.shrink) in done:
            continue
        row = run_one(name, labels, seed, args, runs_dir)
        rows.append(row)
        with open(results, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
        write_summary(args.out, rows)
    if rows:
        write_summary(args.out, rows)


if __name__ == "__main__":
    main()
