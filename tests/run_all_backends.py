"""Runs the test suite once per Keras backend: TensorFlow, JAX and PyTorch.

Usage: `python tests/run_all_backends.py [pytest arguments]`. Exits non-zero
if any backend fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

BACKENDS = ("tensorflow", "jax", "torch")


def main(argv: list[str]) -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
