"""How training cost grows: throughput against batch size and image size.

Two sweeps of `model.fit` on one backend (by default the fastest backend of
config A in `results/train_throughput.json`, else JAX), each point in its own
subprocess through `train_throughput.py`'s worker:

- batch size 16 to 1024 for config A (the MNIST MLP EBGAN-PT);
- image size 32, 64, 128 for the conv EBGAN-PT of config C (1 channel,
  filters 32 / (32, 64, 128), batch 64).

Writes `results/scaling.json` (rows as in `train_throughput.json`),
`results/scaling.png` (matplotlib, Agg) and regenerates `RESULTS.md`.

Usage:
    python benchmarks/scaling.py --quick
    python benchmarks/scaling.py --backend tensorflow --batch-sizes 16,64,256
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402
import train_throughput  # noqa: E402

KEY_FIELDS = ("sweep", "backend", "batch_size", "image_shape", "quick")


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
    args = parser.parse_args(argv)
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
    peak = _common.matmul_peak_gflops()
    variant = [{"jit_compile": backend != "torch", "steps_per_execution": 1}]
    rows = []
    for sweep, config, overrides in sweep_points(args):
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
                row["mfu"] = round(median * row["flops_per_step"] / 1e9 / peak, 4)
                row["peak_gflops"] = round(peak, 1)
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
