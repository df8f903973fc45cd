"""Build `ebgan_keras/assets/mnist_subset.npz` from the offline MNIST cache.

The subset is the first 2000 training and the first 500 test images of MNIST
(uint8, with labels), deflate-compressed with fixed zip dates so that the same
arrays always give the same file. It ships with the package for the README
quick start and the tests (`ek.data.load("mnist_subset")`), which need no
network and no cache.

Usage:
    python scripts/make_mnist_subset.py [--train 2000] [--test 500]

It prints the file's sha256; `ebgan_keras/data/__init__.py` records it as
`MNIST_SUBSET_SHA256` and checks it on every load.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ebgan_keras.data import offline

OUTPUT = Path(__file__).resolve().parents[1] / "ebgan_keras" / "assets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=2000, help="training images")
    parser.add_argument("--test", type=int, default=500, help="test images")
    parser.add_argument("--cache-dir", default=None, help="offline cache folder")
    parser.add_argument("--output", default=str(OUTPUT / "mnist_subset.npz"))
    args = parser.parse_args()

    mnist = offline.load_arrays("mnist", cache_dir=args.cache_dir)
    subset = {
        "x_train": mnist["x_train"][: args.train],
        "y_train": mnist["y_train"][: args.train],
        "x_test": mnist["x_test"][: args.test],
        "y_test": mnist["y_test"][: args.test],
    }
    offline.write_npz(args.output, subset, compress=True)
    size = Path(args.output).stat().st_size
    print(f"wrote {args.output} ({size / 1024:.0f} KiB)")
    print(f"sha256 {offline.sha256_file(args.output)}")


if __name__ == "__main__":
    main()
