"""Exported DDLS against `ek.samplers.DDLS` in Python: samples per second.

The same untrained EBGAN of the built-in config `ebgan` (the MNIST MLPs of
the EBGAN paper; timing does not depend on the weights) samples `--batch`
images with `--num-steps` DDLS steps, both on the TensorFlow backend (the
SavedModel runs on TensorFlow):

- `ek.samplers.DDLS(...).sample(model, batch)` in Python (numpy noise, the
  compiled chain, the final forward pass to images);
- the SavedModel written by `ek.export(model, path, sampler="ddls")`,
  loaded with `tf.saved_model.load` and called as `served.sample(batch,
  seed)` (prior draw, chain and images inside one graph).

Compilation is left out (one warm-up call each); each timed run is a full
call. The table's `ratio_to_python` is the SavedModel's samples per second
over Python's (target: at least 0.9). Rows are merged into
`benchmarks/results/export_throughput.json` and `benchmarks/RESULTS.md` is
regenerated.

Usage:
    python benchmarks/export_throughput.py --quick
    python benchmarks/export_throughput.py --batch 256 --num-steps 100
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ["KERAS_BACKEND"] = "tensorflow"  # the SavedModel runs on TensorFlow

import _common  # noqa: E402

KEY_FIELDS = ("implementation", "batch_size", "num_steps", "quick")
STEP_SIZE = 1e-2


def timed(fn, repeats: int) -> list[float]:
    """Seconds of `repeats` calls of `fn` after one untimed warm-up call."""
    fn()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return seconds


def measure(batch: int, num_steps: int, repeats: int, quick: bool) -> list[dict]:
    """Times Python's DDLS and the exported one on the same model; two rows."""
    import numpy as np
    import tensorflow as tf
    from sampler_throughput import build_model

    import ebgan_keras as ek

    model = build_model(seed=0)
    sampler = ek.samplers.DDLS(
        step_size=STEP_SIZE, num_steps=num_steps, seed=0, batch_size=batch
    )
    python_seconds = timed(lambda: sampler.sample(model, batch), repeats)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "ddls")
        ek.export(
            model,
            path,
            sampler="ddls",
            sampler_settings={"step_size": STEP_SIZE, "num_steps": num_steps},
        )
        served = tf.saved_model.load(path)
        count = tf.constant(batch)
        seed = tf.constant(0, tf.int64)

        def call():
            return np.asarray(served.sample(count, seed)["images"])

        exported_seconds = timed(call, repeats)
    rows = []
    for implementation, seconds in (
        ("ek.samplers.DDLS (Python, tensorflow)", python_seconds),
        ("exported SavedModel sample()", exported_seconds),
    ):
        median = statistics.median(seconds)
        rows.append(
            {
                "benchmark": "export_ddls",
                "implementation": implementation,
                "batch_size": batch,
                "num_steps": num_steps,
                "repeats": repeats,
                "seconds_median": round(median, 4),
                "seconds_min": round(min(seconds), 4),
                "samples_per_s": round(batch / median, 1),
                "quick": quick,
                **_common.machine_info(),
            }
        )
    rows[1]["ratio_to_python"] = round(
        rows[1]["samples_per_s"] / rows[0]["samples_per_s"], 3
    )
    return rows


def main(argv=None) -> list[dict]:
    """Entry point; returns the rows (also written unless `--no-save`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--num-steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = min(args.repeats, 3)
    rows = measure(args.batch, args.num_steps, args.repeats, args.quick)
    for row in rows:
        print(f"{row['implementation']}: {row['samples_per_s']} samples/s")
    print(f"exported / Python: {rows[1]['ratio_to_python']}")
    if not args.no_save:
        _common.write_rows("export_throughput", rows, KEY_FIELDS)
    return rows


if __name__ == "__main__":
    main()
