"""Small domain classifiers (MNIST, Fashion-MNIST) whose features score 28x28 images."""

from __future__ import annotations

import json
import os

import keras

# `classifiers.file_sha256` stays importable (the training script uses it).
from ebgan_keras.files import file_sha256

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")
REGISTRY_FILE = os.path.join(WEIGHTS_DIR, "classifiers.json")
FEATURE_LAYER = "features"
DOMAIN_CLASSIFIERS = ("mnist_classifier", "fashion_mnist_classifier")


def build_domain_classifier(
    num_classes: int = 10, name: str = "domain_classifier"
) -> keras.Model:
    """Builds the small convnet used as a feature extractor for 28x28 images.

    Three 3x3 convolutions (32, 64, 64 filters, each followed by batch norm,
    ReLU and 2x2 max pooling), a 128-unit dense layer named `"features"`
    (the penultimate layer, whose activations are the FID features) and a
    softmax over the classes.

    Args:
        num_classes: int. Number of classes. Defaults to `10`.
        name: str. Name of the model. Defaults to `"domain_classifier"`.

    Returns:
        An uncompiled `keras.Model` mapping `(N, 28, 28, 1)` images in
        `[-1, 1]` to class probabilities `(N, num_classes)`.

    Example:
    ```python
    from ebgan_keras.metrics.classifiers import build_domain_classifier

    model = build_domain_classifier()
    model.summary()
    ```
    """
    inputs = keras.Input((28, 28, 1), name="images")
    x = inputs
    for filters in (32, 64, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu", name=FEATURE_LAYER)(x)
    x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name=name)


def classifier_registry() -> dict:
    """Reads the record of the shipped classifiers (file, sha256, accuracy).

    Returns:
        A dict from classifier name (`"mnist_classifier"`,
        `"fashion_mnist_classifier"`) to its record.

    Example:
    ```python
    from ebgan_keras.metrics.classifiers import classifier_registry

    print(classifier_registry()["mnist_classifier"]["test_accuracy"])
    ```
    """
    if not os.path.exists(REGISTRY_FILE):
        return {}
    with open(REGISTRY_FILE, encoding="utf-8") as handle:
        return json.load(handle)


def load_domain_classifier(
    name: str, weights_path: str | None = None, file_hash: str | None = "registry"
) -> keras.Model:
    """Loads a shipped domain classifier after checking its file's sha256.

    Args:
        name: str. `"mnist_classifier"` or `"fashion_mnist_classifier"`.
        weights_path: str. A `.weights.h5` file to load instead of the shipped
            one. Defaults to the file shipped in `ebgan_keras/metrics/weights/`.
        file_hash: str or None. Expected sha256 of the file; `"registry"` uses
            the one recorded for `name`, `None` skips the check (for a
            classifier you trained yourself). Defaults to `"registry"`.

    Returns:
        The classifier (`keras.Model`), outputs class probabilities; its layer
        `"features"` gives the penultimate-layer features.

    Example:
    ```python
    from ebgan_keras.metrics.classifiers import load_domain_classifier

    model = load_domain_classifier("mnist_classifier")
    ```
    """
    if name not in DOMAIN_CLASSIFIERS:
        raise ValueError(
            f"Unknown domain classifier. Expected one of {DOMAIN_CLASSIFIERS}. "
            f"Received: name={name!r}"
        )
    record = classifier_registry().get(name)
    if weights_path is None:
        if record is None:
            raise FileNotFoundError(
                f"No weights are recorded for {name!r} in {REGISTRY_FILE}. "
                "Train them with scripts/train_feature_classifiers.py."
            )
        weights_path = os.path.join(WEIGHTS_DIR, record["file"])
    if not os.path.exists(weights_path):
        raise FileNotFoundError(
            f"Weights of {name!r} not found at {weights_path}. The package "
            "ships them in ebgan_keras/metrics/weights/; reinstall ebgan-keras "
            "or train them with scripts/train_feature_classifiers.py. "
            f"Received: weights_path={weights_path!r}"
        )
    if file_hash == "registry":
        file_hash = None if record is None else record["sha256"]
        if file_hash is None:
            raise ValueError(
                f"No sha256 is recorded for {name!r}; pass `file_hash=` "
                "explicitly (or `file_hash=None` to skip the check)."
            )
    if file_hash is not None:
        actual = file_sha256(weights_path)
        if actual != file_hash:
            raise ValueError(
                f"The weights file of {name!r} at {weights_path} has sha256 "
                f"{actual}, but {file_hash} was expected: the file is damaged "
                "or was changed. Reinstall ebgan-keras, or retrain it with "
                "scripts/train_feature_classifiers.py (which records the new "
                "hash)."
            )
    model = build_domain_classifier(name=name)
    model.load_weights(weights_path)
    return model
