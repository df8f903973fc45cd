"""Representation quality: a linear probe and 1-nearest-neighbour accuracy.

Both fit on a train split and score a test split of frozen features (an
encoder's `E(x)`, a discriminator's code, raw pixels), in numpy and scipy
only: no backend, no randomness, so a number does not depend on the Keras
backend it was computed under. The BiGAN paper's MNIST table (Donahue et al.,
2017, Table 1) reports 1-NN accuracy: 97.39% for its encoder, 97.44% for the
latent regressor, about 96.9% for raw pixels; its official code
(`jeffdonahue/bigan`, `train_gan.py`) scores them with the Euclidean distance
on the encoder's last hidden layer (`NNC_e-`), not on `E(x)` itself
(`ek.inversion.encoder_features(..., "hidden")`).
"""

from __future__ import annotations

import numpy as np
import scipy.optimize

#: Distances `nearest_neighbor_accuracy` accepts.
NEIGHBOR_METRICS = ("cosine", "euclidean")


def _check_split(features, labels, name: str) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features)
    labels = np.asarray(labels)
    if features.ndim < 2 or len(features) < 1:
        raise ValueError(
            f"`{name}_features` must be an array (N, ...) of N >= 1 feature "
            f"vectors. Received: {name}_features with shape {features.shape}"
        )
    if labels.shape != (len(features),):
        raise ValueError(
            f"`{name}_labels` must hold one label per row of `{name}_features`, "
            f"shape ({len(features)},). Received: {name}_labels with shape "
            f"{labels.shape}"
        )
    features = features.reshape(len(features), -1).astype("float64")
    if not np.all(np.isfinite(features)):
        raise ValueError(
            f"`{name}_features` contains NaN or infinite values. Received: "
            f"{int(np.size(features) - np.isfinite(features).sum())} of them"
        )
    return features, labels


def _check_pair(train, test) -> None:
    if train[0].shape[1] != test[0].shape[1]:
        raise ValueError(
            "`train_features` and `test_features` must have the same size per "
            f"sample. Received: {train[0].shape[1]} and {test[0].shape[1]}"
        )


def nearest_neighbor_accuracy(
    train_features,
    train_labels,
    test_features,
    test_labels,
    metric: str = "cosine",
    batch_size: int = 1024,
) -> float:
    """Accuracy of the 1-nearest-neighbour classifier on frozen features.

    Each test sample takes the label of its nearest train sample (ties: the
    first in train order).

    Args:
        train_features: array `(N, ...)`. Features of the train split
            (flattened per sample).
        train_labels: array `(N,)`. Their labels.
        test_features: array `(M, ...)`. Features of the test split.
        test_labels: array `(M,)`. Their labels.
        metric: str. `"cosine"` or `"euclidean"` (the official BiGAN
            code's). Defaults to `"cosine"`.
        batch_size: int. Test samples per distance block (memory:
            `batch_size * N` floats). Defaults to `1024`.

    Returns:
        The accuracy, a float in `[0, 1]`.

    Raises:
        ValueError: for an unknown `metric`, or features and labels whose
            shapes do not match.

    Example:

    >>> import numpy as np
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> nearest_neighbor_accuracy(x, [0, 1], x * 3, [0, 1])
    1.0
    """
    if metric not in NEIGHBOR_METRICS:
        raise ValueError(
            f"`metric` must be one of {NEIGHBOR_METRICS}. Received: metric={metric!r}"
        )
    train = _check_split(train_features, train_labels, "train")
    test = _check_split(test_features, test_labels, "test")
    _check_pair(train, test)
    (reference, reference_labels), (queries, query_labels) = train, test
    if metric == "cosine":
        # A zero vector has no direction: it is left at zero (distance 1 to all).
        reference = reference / np.maximum(
            np.linalg.norm(reference, axis=1, keepdims=True), 1e-12
        )
        queries = queries / np.maximum(
            np.linalg.norm(queries, axis=1, keepdims=True), 1e-12
        )
    squared_norms = np.sum(reference**2, axis=1)
    correct = 0
    for start in range(0, len(queries), int(batch_size)):
        block = queries[start : start + batch_size]
        # argmin ||q - r||^2 = argmin ||r||^2 - 2 q.r (||q||^2 is constant per
        # row); for unit vectors this is the cosine distance's argmin too.
        nearest = np.argmin(squared_norms[None, :] - 2.0 * block @ reference.T, axis=1)
        correct += int(
            np.sum(
                reference_labels[nearest] == query_labels[start : start + batch_size]
            )
        )
    return correct / len(queries)


def linear_probe(
    train_features,
    train_labels,
    test_features,
    test_labels,
    l2: float = 1e-4,
    max_iterations: int = 500,
    standardize: bool = True,
) -> float:
    """Test accuracy of a logistic regression trained on frozen features.

    Multinomial logistic regression (softmax, one weight vector and bias per
    class) fitted on the train split by L-BFGS to the mean cross-entropy plus
    `l2 / 2 * ||W||^2`; deterministic (the weights start at zero). Features
    are standardized with the train split's mean and standard deviation
    first, so the penalty weighs every feature alike.

    Args:
        train_features: array `(N, ...)`. Features of the train split.
        train_labels: array `(N,)`. Integer (or any hashable) labels.
        test_features: array `(M, ...)`. Features of the test split.
        test_labels: array `(M,)`. Their labels.
        l2: float. Weight penalty, `>= 0`. Defaults to `1e-4`.
        max_iterations: int. L-BFGS iterations. Defaults to `500`.
        standardize: bool. Standardize the features. Defaults to `True`.

    Returns:
        The test accuracy, a float in `[0, 1]`.

    Raises:
        ValueError: for fewer than two classes in the train labels, a
            negative `l2`, or shapes that do not match.

    Example:

    >>> import numpy as np
    >>> x = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    >>> linear_probe(x, [0, 0, 1, 1], np.array([[-3.0], [3.0]]), [0, 1])
    1.0
    """
    if not l2 >= 0:
        raise ValueError(f"`l2` must be >= 0. Received: l2={l2!r}")
    train = _check_split(train_features, train_labels, "train")
    test = _check_split(test_features, test_labels, "test")
    _check_pair(train, test)
    (features, labels), (test_x, test_y) = train, test
    classes, targets = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(
            "`train_labels` must hold at least two classes. Received: "
            f"only {classes.tolist()}"
        )
    if standardize:
        mean = features.mean(axis=0)
        scale = features.std(axis=0)
        scale[scale < 1e-8] = 1.0  # constant features (blank pixels) stay 0
        features = (features - mean) / scale
        test_x = (test_x - mean) / scale
    num, dim = features.shape
    num_classes = len(classes)
    one_hot = np.eye(num_classes)[targets]

    def loss_and_gradient(flat):
        weights = flat[: dim * num_classes].reshape(dim, num_classes)
        bias = flat[dim * num_classes :]
        logits = features @ weights + bias
        logits -= logits.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(logits).sum(axis=1, keepdims=True))
        log_probs = logits - log_norm
        loss = -np.sum(one_hot * log_probs) / num + 0.5 * l2 * np.sum(weights**2)
        delta = (np.exp(log_probs) - one_hot) / num
        gradient_w = features.T @ delta + l2 * weights
        return loss, np.concatenate([gradient_w.ravel(), delta.sum(axis=0)])

    result = scipy.optimize.minimize(
        loss_and_gradient,
        np.zeros(dim * num_classes + num_classes),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": int(max_iterations)},
    )
    weights = result.x[: dim * num_classes].reshape(dim, num_classes)
    bias = result.x[dim * num_classes :]
    predicted = classes[np.argmax(test_x @ weights + bias, axis=1)]
    return float(np.mean(predicted == test_y))


__all__ = ["NEIGHBOR_METRICS", "linear_probe", "nearest_neighbor_accuracy"]
