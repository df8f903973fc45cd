"""Runs the test suite once per Keras backend: TensorFlow, JAX and PyTorch.

Usage: `python tests/run_all_backends.py [pytest arguments]`. Exits non-zero
if any backend fails.

Each backend's suite runs on `min(4, CPU count)` pytest-xdist workers, one test
file per worker (`--dist loadfile`, so module fixtures are built once); most
tests are single-threaded Python (tracing, compiling), so two workers on this
2-core machine took the suite from 433 / 552 s to 267 / 359 s on TensorFlow /
JAX. Pass `-n 0` (or your own `-n`) to choose otherwise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

BACKENDS = ("tensorflow", "jax", "torch")


def _worker_args(argv: list[str]) -> list[str]:
    """xdist arguments to add, unless the caller chose a worker count."""
    if any(arg.startswith(("-n", "--numprocesses")) for arg in argv):
        return []
    workers = min(4, os.cpu_count() or 1)
    return ["-n", str(workers), "--dist", "loadfile"] if workers > 1 else []


def main(argv: list[str]) -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    argv = [*_worker_args(argv), *argv]
    failed = []
    for backend in BACKENDS:
        start = time.time()
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        print(f"=== KERAS_BACKEND={backend}", flush=True)
        code = subprocess.call(
            [sys.executable, "-m", "pytest", "-q", "tests", *argv], cwd=root, env=env
        )
        print(f"=== {backend}: exit {code} in {time.time() - start:.0f} s", flush=True)
        if code != 0:
            failed.append(backend)
    if failed:
        print(f"FAILED on: {', '.join(failed)}")
        return 1
    print("All backends passed.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
