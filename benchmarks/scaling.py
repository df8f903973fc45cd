"""How training cost grows: throughput against batch size and image size.

Two sweeps of `model.fit` on one backend (by default the fastest backend of
config A in `results/train_throughput.json`, else JAX), each point in its own
subprocess through `train_throughput.py`'s worker:

- batch size 16 to 1024 for config A (the MNIST MLP EBGAN-PT);
- image size 32, 64, 128 for the conv EBGAN-PT of config C (1 channel,
  filters 32 / (32, 64, 128), batch 64).

- `multi_worker`: images/s of config A (global batch 64) trained by one
  process without a strategy, by one worker process under the distributed
  strategy, and by two worker processes on localhost (TensorFlow:
  `MultiWorkerMirroredStrategy` through `TF_CONFIG`; JAX: `jax.distributed`
  with gloo and `keras.distribution.DataParallel`). The processes share this
  machine's cores, so two are not expected to be faster: the row's
  `ratio_to_one_worker` (two workers' images/s over one worker's) shows the
  cost of the collectives and of sharing the cores.

Writes `results/scaling.json` (rows as in `train_throughput.json`),
`results/scaling.png` (matplotlib, Agg) and regenerates `RESULTS.md`.

Usage:
    python benchmarks/scaling.py --quick
    python benchmarks/scaling.py --backend tensorflow --batch-sizes 16,64,256
    python benchmarks/scaling.py --sweeps multi_worker --backend tensorflow
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402
import train_throughput  # noqa: E402

KEY_FIELDS = ("sweep", "backend", "batch_size", "image_shape", "processes", "quick")
SWEEPS = ("batch_size", "image_size", "multi_worker")
#: The distributed mode of each backend (`ek.run.distribute.MODES`).
MULTI_MODES = {"tensorflow": "multi-worker", "jax": "multi-process"}


def fastest_backend() -> str:
    """The Keras backend with the highest config-A median so far (JAX if none).

    Returns:
        str. `"tensorflow"`, `"jax"` or `"torch"`.
    """
    path = _common.RESULTS_DIR / "train_throughput.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    rows = [
        r
        for r in rows
        if r.get("config") == "A"
        and r.get("implementation", "").startswith("ek.")
        and "steps_per_s" in r
    ]
    if not rows:
        return "jax"
    return max(rows, key=lambda r: r["steps_per_s"]["median"])["backend"]


def sweep_points(args) -> list[tuple[str, str, dict]]:
    """`(sweep, config, overrides)` for every point of both sweeps.

    The overrides are merged into `train_throughput.CONFIGS[config]`.
    """
    points = [
        ("batch_size", "A", {"training": {"batch_size": int(b)}})
        for b in args.batch_sizes.split(",")
        if b
    ]
    points += [
        ("image_size", "C", {"image_shape": [int(s), int(s), 1]})
        for s in args.image_sizes.split(",")
        if s
    ]
    return points


def multi_worker_process(mode: str, steps: int, warmup: int, *coordinator) -> None:
    """One process of the `multi_worker` sweep: times config A's `fit`.

    Prints `ROWS <json>` (process 0 only) with the images/s of the steps
    after `warmup` (compilation left out).
    """
    import keras
    import numpy as np

    import ebgan_keras as ek
    from ebgan_keras.run import builder

    settings = {}
    if coordinator:
        settings = dict(
            coordinator=coordinator[0],
            num_processes=int(coordinator[1]),
            process_id=int(coordinator[2]),
        )
    cluster = ek.run.distribute.setup(mode, **settings)
    config = train_throughput.CONFIGS["A"]
    batch = config["training"]["batch_size"]
    keras.utils.set_random_seed(0)
    with cluster.scope():
        model = builder.build_model(config, tuple(config["image_shape"]))
        builder.compile_model(model, config, steps_per_execution=1)
    images = np.random.default_rng(0).uniform(-1, 1, (batch * 8, 28, 28, 1))

    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices(images.astype("float32"))
    data = data.batch(batch, drop_remainder=True).repeat()
    times = {}

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch_index, logs=None):
            if batch_index in (warmup - 1, steps - 1):
                times[batch_index] = time.perf_counter()

    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[Clock()])
    seconds = times[steps - 1] - times[warmup - 1]
    if cluster.is_chief:
        row = {
            "sweep": "multi_worker",
            "config": "A",
            "distribute": mode,
            "processes": cluster.num_processes,
            "batch_size": batch,
            "image_shape": config["image_shape"],
            "steps_per_s": round((steps - warmup) / seconds, 3),
            "images_per_s": round((steps - warmup) * batch / seconds, 1),
        }
        print("ROWS " + json.dumps([row]), flush=True)


def multi_worker_rows(backend: str, quick: bool) -> list[dict]:
    """Images/s of 1 process, 1 worker and 2 workers; the overhead ratio."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from test_multi_process import process_envs  # noqa: PLC0415

    steps, warmup = (30, 10) if quick else (120, 20)
    rows = []
    for mode, count in (
        ("none", 1),
        (MULTI_MODES[backend], 1),
        (MULTI_MODES[backend], 2),
    ):
        envs = process_envs(backend, count)
        processes = []
        for env, extra in envs:
            env = dict(env)
            env["PYTHONPATH"] = os.pathsep.join([str(HERE), env["PYTHONPATH"]])
            if mode == "none":
                env.pop("TF_CONFIG", None)
                extra = []
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--multi-worker-process",
                mode,
                str(steps),
                str(warmup),
                *extra,
            ]
            processes.append(
                subprocess.Popen(
                    command,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        outputs = [p.communicate(timeout=900) for p in processes]
        for process, (_, err) in zip(processes, outputs):
            if process.returncode:
                raise RuntimeError(f"{mode} x{count} failed: {err[-3000:]}")
        line = next(
            line for line in outputs[0][0].splitlines() if line.startswith("ROWS ")
        )
        (row,) = json.loads(line[len("ROWS ") :])
        row.update(backend=backend, quick=quick, **_common.machine_info())
        if mode == "none":
            row["processes"] = 0  # one process, no strategy
        rows.append(row)
        print(f"multi_worker {mode} x{count}: {row['images_per_s']} images/s")
    one_worker, two_workers = rows[1]["images_per_s"], rows[2]["images_per_s"]
    rows[2]["ratio_to_one_worker"] = round(two_workers / one_worker, 3)
    rows[2]["ratio_to_one_process"] = round(two_workers / rows[0]["images_per_s"], 3)
    return rows


def plot(rows: list[dict], path: Path) -> None:
    """Images/s against batch size and image size, two panels, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for axis, sweep, label in (
        (axes[0], "batch_size", "batch size (config A, MLP)"),
        (axes[1], "image_size", "image size (conv EBGAN-PT, config C)"),
    ):
        ticks = set()
        for backend in sorted({r["backend"] for r in rows if r.get("backend")}):
            by_x = {
                (r["batch_size"] if sweep == "batch_size" else r["image_shape"][0]): r
                for r in sorted(rows, key=lambda r: r.get("date", ""))
                if r.get("sweep") == sweep
                and "images_per_s" in r
                and r.get("backend") == backend
            }  # the latest row of each point
            xs = sorted(by_x)
            if not xs:
                continue
            ticks.update(xs)
            dates = sorted({by_x[x].get("date", "")[:10] for x in xs})
            line_label = f"{backend} ({', '.join(dates)})"
            axis.plot(xs, [by_x[x]["images_per_s"] for x in xs], "o-", label=line_label)
        if ticks:
            axis.set_xscale("log", base=2)
            axis.set_yscale("log")
            axis.set_xticks(sorted(ticks), [str(x) for x in sorted(ticks)])
            axis.legend()
        axis.set_xlabel(label)
        axis.set_ylabel("images/s")
        axis.grid(True, alpha=0.3)
    backends = sorted({r["backend"] for r in rows if "backend" in r})
    figure.suptitle(f"ebgan-keras training throughput ({', '.join(backends)})")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv=None) -> list[dict]:
    """Entry point; returns the rows (also written unless `--no-save`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backend", default=None, help="default: the fastest on A")
    parser.add_argument("--batch-sizes", default="16,32,64,128,256,512,1024")
    parser.add_argument("--image-sizes", default="32,64,128")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torch-threads", type=int, default=0)
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument(
        "--sweeps",
        default="batch_size,image_size",
        help=f"comma-separated, of {', '.join(SWEEPS)} (default: batch_size,"
        "image_size; multi_worker starts process pairs, so it is asked for)",
    )
    parser.add_argument("--multi-worker-process", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.multi_worker_process:
        multi_worker_process(
            args.multi_worker_process[0],
            *(int(value) for value in args.multi_worker_process[1:3]),
            *args.multi_worker_process[3:],
        )
        return []
    sweeps = [sweep for sweep in args.sweeps.split(",") if sweep]
    unknown = sorted(set(sweeps) - set(SWEEPS))
    if unknown:
        raise ValueError(
            f"`--sweeps` must name some of {', '.join(SWEEPS)}. Received: {unknown}"
        )
    backend = args.backend or fastest_backend()
    if backend not in ("tensorflow", "jax", "torch"):
        raise ValueError(
            "`--backend` must be 'tensorflow', 'jax' or 'torch'. "
            f"Received: backend={backend!r}"
        )
    worker_args = train_throughput.parse_args(
        ["--repeats", str(args.repeats), "--torch-threads", str(args.torch_threads)]
        + (["--quick"] if args.quick else [])
    )
    variant = [{"jit_compile": backend != "torch", "steps_per_execution": 1}]
    rows = []
    if "multi_worker" in sweeps:
        if backend not in MULTI_MODES:
            raise ValueError(
                "the multi_worker sweep runs on 'tensorflow' or 'jax'. Received: "
                f"backend={backend!r}"
            )
        rows += multi_worker_rows(backend, args.quick)
    points = [point for point in sweep_points(args) if point[0] in sweeps]
    peak = None
    if points:
        peak = _common.peak(**(_common.QUICK_PEAK if args.quick else {}))
    for sweep, config, overrides in points:
        run_config = _common.with_overrides(train_throughput.CONFIGS[config], overrides)
        batch_size = run_config["training"]["batch_size"]
        for row in train_throughput.run_worker(
            f"keras:{backend}", config, worker_args, overrides, variant
        ):
            row.update(
                sweep=sweep,
                config=config,
                batch_size=batch_size,
                image_shape=run_config["image_shape"],
                quick=args.quick,
                **_common.machine_info(),
            )
            rows.append(row)
            if "steps_per_s" in row:
                median = row["steps_per_s"]["median"]
                row["images_per_s"] = round(median * batch_size, 1)
                row.update(
                    _common.mfu_fields(median * row["flops_per_step"] / 1e9, peak)
                )
                print(f"{sweep} {overrides}: {row['images_per_s']} images/s")
    if not args.no_save:
        _common.write_rows("scaling", rows, KEY_FIELDS)
        plot(
            json.loads((_common.RESULTS_DIR / "scaling.json").read_text()),
            _common.RESULTS_DIR / "scaling.png",
        )
        from _report import write_report  # noqa: PLC0415

        write_report()
    return rows


if __name__ == "__main__":
    main()
