"""Images per second of the `ek.data` MNIST input pipeline alone.

Iterates `ek.data.load("mnist", batch_size=64)` (28x28x1, shuffled, scaled to
[-1, 1]) without any model, once as TensorFlow tensors (what Keras on
TensorFlow consumes) and once as numpy arrays (what Keras on JAX and PyTorch
consume), plus a variant with labels and random flips. The first pass (graph
tracing, cache loading) is left out of the timing. In the same run,
the training step of the MNIST MLP EBGAN-PT (G 64-1024-1024-784 with batch
norm, D 784-1024-512-784, batch 64) is timed on the current Keras backend, fed
by the same pipeline; the pipeline must be well above that.

Usage:
    python benchmarks/data_throughput.py [--quick] [--repeats 3]

Appends a JSON row to benchmarks/results/data_throughput.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ebgan_keras import data as ek_data
from ebgan_keras.run import builder
from ebgan_keras.run.config import load_config

RESULTS = Path(__file__).resolve().parent / "results" / "data_throughput.json"
BATCH_SIZE = 64


def images_per_second(dataset, as_numpy: bool, max_batches: int | None) -> float:
    """Time one pass over `dataset` (after a warm-up pass); images per second."""

    def one_pass():
        iterator = dataset.as_numpy_iterator() if as_numpy else iter(dataset)
        count = 0
        for index, batch in enumerate(iterator):
            images = batch[0] if isinstance(batch, tuple) else batch
            count += int(images.shape[0])
            if max_batches is not None and index + 1 >= max_batches:
                break
        return count

    one_pass()  # warm-up: tracing, first shuffle buffer
    start = time.perf_counter()
    count = one_pass()
    return count / (time.perf_counter() - start)


class _StepTimer(keras.callbacks.Callback):
    """Times the batches after the first `skip` (compilation) of one fit."""

    def __init__(self, skip: int) -> None:
        super().__init__()
        self.skip = skip
        self.start = None
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == self.skip:
            self.start = time.perf_counter()
        elif batch + 1 > self.skip:
            self.steps = batch + 1 - self.skip
            self.seconds = time.perf_counter() - self.start


def training_images_per_second(dataset, steps: int) -> float:
    """Images per second of `fit` of the MNIST MLP EBGAN-PT on `dataset`."""
    config = load_config("ebgan_pt")  # the EBGAN paper's MNIST MLPs
    model = builder.build_model(config, (28, 28, 1), seed=0)
    builder.compile_model(model, config)
    timer = _StepTimer(skip=20)
    model.fit(
        dataset, epochs=1, steps_per_epoch=steps + 20, callbacks=[timer], verbose=0
    )
    return timer.steps * BATCH_SIZE / timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="time 200 batches instead of an epoch"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (best)")
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    max_batches = 200 if args.quick else None

    start = time.perf_counter()
    plain = ek_data.load("mnist", batch_size=BATCH_SIZE, seed=0)
    load_seconds = time.perf_counter() - start
    labelled = ek_data.load(
        "mnist", batch_size=BATCH_SIZE, seed=0, with_labels=True, flip=True
    )
    results = {}
    for key, dataset, as_numpy in (
        ("tf_images_per_s", plain, False),
        ("numpy_images_per_s", plain, True),
        ("numpy_labels_flip_images_per_s", labelled, True),
    ):
        runs = [
            images_per_second(dataset, as_numpy, max_batches)
            for _ in range(args.repeats)
        ]
        results[key] = round(max(runs))
        results[key.replace("_per_s", "_per_s_runs")] = [round(r) for r in runs]
        print(f"{key}: {results[key]:,} (runs: {[round(r) for r in runs]})")

    step_images_per_s = training_images_per_second(plain, 100 if args.quick else 400)
    print(
        f"training step ({keras.backend.backend()}): {step_images_per_s:,.0f} images/s"
    )
    row = {
        "benchmark": "data_throughput",
        "pipeline": 'ek.data.load("mnist", batch_size=64, seed=0)',
        "image_shape": [28, 28, 1],
        "batch_size": BATCH_SIZE,
        "quick": args.quick,
        "batches_timed": max_batches or "one epoch (937)",
        **results,
        "load_seconds": round(load_seconds, 2),
        "training_backend": keras.backend.backend(),
        "training_step_images_per_s": round(step_images_per_s),
        # Other jobs share this CPU, so single runs vary; the best is reported.
        "headroom_vs_training": round(
            results["numpy_images_per_s"] / step_images_per_s, 1
        ),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "date": datetime.date.today().isoformat(),
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    rows = json.loads(output.read_text()) if output.exists() else []
    rows.append(row)
    output.write_text(json.dumps(rows, indent=2) + "\n")
    print(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
