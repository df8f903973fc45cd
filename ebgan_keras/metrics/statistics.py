"""The metrics' maths on features: Frechet distance, KID, IS, precision/recall."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import scipy.special


def _as_matrix(features, name: str) -> np.ndarray:
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 1:
        raise ValueError(
            f"`{name}` must be a 2D array of features (num_samples, num_features). "
            f"Received: {name}.shape={array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"`{name}` contains NaN or Inf values ({int(np.sum(~np.isfinite(array)))} "
            "entries): the images or the feature extractor produced non-finite "
            "numbers, so no metric can be computed from them."
        )
    return array


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of features, the Gaussian fit that FID compares.

    Warns when there are fewer samples than feature dimensions: the
    covariance is then singular and the FID estimate is strongly biased.

    Args:
        features: array `(N, D)`. One feature vector per image.

    Returns:
        `(mu, sigma)`: float64 mean `(D,)` and covariance `(D, D)` (with the
        unbiased `N - 1` normalisation, as the standard FID tools use).

    Example:
    ```python
    import numpy as np
    from ebgan_keras.metrics import feature_statistics

    mu, sigma = feature_statistics(np.random.default_rng(0).normal(size=(500, 8)))
    ```
    """
    features = _as_matrix(features, "features")
    num_samples, num_features = features.shape
    if num_samples < 2:
        raise ValueError(
            "At least 2 samples are needed for a covariance. "
            f"Received: features.shape={features.shape}"
        )
    if num_samples < num_features:
        warnings.warn(
            f"Only {num_samples} samples for {num_features} feature dimensions: "
            "the covariance is singular and the Frechet distance is strongly "
            "biased (upwards). Use at least as many samples as features "
            "(10000 is the usual protocol).",
            stacklevel=2,
        )
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(
        num_features, num_features
    )


class RunningStatistics:
    """Mean and covariance of features that arrive in batches, in float64.

    Batches are merged with Chan et al.'s parallel update (mean and sum of
    squared deviations), so memory stays `O(D^2)` however many samples pass,
    and the result equals `feature_statistics` of all features at once up to
    float64 rounding.

    Example:
    ```python
    import numpy as np
    from ebgan_keras.metrics.statistics import RunningStatistics

    running = RunningStatistics()
    for batch in np.array_split(np.random.default_rng(0).normal(size=(500, 8)), 4):
        running.update(batch)
    mu, sigma = running.statistics()
    ```
    """

    def __init__(self) -> None:
        self.count = 0
        self.mean = None
        self.squares = None

    def update(self, features) -> None:
        """Adds a batch of features `(N, D)`."""
        features = _as_matrix(features, "features")
        count = len(features)
        mean = features.mean(axis=0)
        centred = features - mean
        squares = centred.T @ centred
        if self.count == 0:
            self.count, self.mean, self.squares = count, mean, squares
            return
        if features.shape[1] != len(self.mean):
            raise ValueError(
                f"Every batch must have {len(self.mean)} features. Received: "
                f"features.shape={features.shape}"
            )
        total = self.count + count
        delta = mean - self.mean
        self.squares = (
            self.squares + squares + np.outer(delta, delta) * self.count * count / total
        )
        self.mean = self.mean + delta * count / total
        self.count = total

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """`(mu, sigma)` as `feature_statistics` gives them (`N - 1` covariance)."""
        if self.count < 2:
            raise ValueError(
                "At least 2 samples are needed for a covariance. "
                f"Received: {self.count}"
            )
        if self.count < len(self.mean):
            warnings.warn(
                f"Only {self.count} samples for {len(self.mean)} feature dimensions: "
                "the covariance is singular and the Frechet distance is strongly "
                "biased (upwards).",
                stacklevel=2,
            )
        return self.mean.copy(), self.squares / (self.count - 1)


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray, eps: float) -> float:
    """Trace of sqrtm(sigma1 @ sigma2), the standard way with a stable fallback."""
    # Singular products are expected (dead ReLU features, few samples) and
    # handled below, so scipy's "matrix is singular" warning is only noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.all(np.isfinite(covmean)):
            # pytorch-fid / TTUR: a singular product gets a small offset on the
            # diagonal of both covariances.
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if np.all(np.isfinite(covmean)) and np.allclose(
            np.diagonal(covmean).imag, 0, atol=1e-3
        ):
            covmean = covmean.real
        else:
            covmean = None
    if covmean is None or not np.all(np.isfinite(covmean)):
        # Last resort, exact for PSD matrices: tr sqrtm(s1 s2) equals the sum of
        # the square roots of the eigenvalues of the symmetric PSD matrix
        # sqrt(s1) s2 sqrt(s1), which eigvalsh computes stably.
        root1 = _psd_sqrt(sigma1)
        eigenvalues = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
        return float(np.sum(np.sqrt(np.clip(eigenvalues, 0.0, None))))
    return float(np.trace(covmean))


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Frechet distance between two Gaussians, the quantity FID reports.

    `d^2 = |mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2))`,
    computed as the standard tools do (pytorch-fid, TTUR): `scipy.linalg.sqrtm`
    of the product, with `eps` added to both diagonals when the product is
    singular, and the real part kept. If that still fails (few samples, many
    features), the trace is taken from the eigenvalues of the symmetric matrix
    `sqrt(sigma1) sigma2 sqrt(sigma1)`, which is exact and stable.

    Args:
        mu1: array `(D,)`. Mean of the first Gaussian.
        sigma1: array `(D, D)`. Covariance of the first Gaussian.
        mu2: array `(D,)`. Mean of the second Gaussian.
        sigma2: array `(D, D)`. Covariance of the second Gaussian.
        eps: float. Diagonal offset for singular products. Defaults to `1e-6`.

    Returns:
        The distance as a Python float (>= 0 up to rounding).

    Example:
    ```python
    import numpy as np
    from ebgan_keras.metrics import frechet_distance

    d = frechet_distance(np.zeros(2), np.eye(2), np.ones(2), np.eye(2))  # 2.0
    ```
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    dim = mu1.shape[0]
    for name, value, shape in (
        ("mu1", mu1, (dim,)),
        ("mu2", mu2, (dim,)),
        ("sigma1", sigma1, (dim, dim)),
        ("sigma2", sigma2, (dim, dim)),
    ):
        if value.shape != shape:
            raise ValueError(
                f"`{name}` must have shape {shape} to match mu1 {mu1.shape}. "
                f"Received: {name}.shape={value.shape}"
            )
        if not np.all(np.isfinite(value)):
            raise ValueError(f"`{name}` contains NaN or Inf values.")
    diff = mu1 - mu2
    trace_covmean = _trace_sqrt_product(sigma1, sigma2, eps)
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_covmean
    return float(distance)


def kid_from_features(
    features_real,
    features_fake,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int | None = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance: unbiased MMD^2 with a cubic polynomial kernel.

    `k(x, y) = (x . y / d + 1)^3`; on each of `num_subsets` random subsets of
    `m = min(subset_size, N_real, N_fake)` samples from each set (drawn without
    replacement), the unbiased estimator
    `sum_{i!=j} k(x_i,x_j)/(m(m-1)) + sum_{i!=j} k(y_i,y_j)/(m(m-1))
    - 2 sum_{i,j} k(x_i,y_j)/m^2`, as in Binkowski et al. (2018) and
    torch-fidelity / clean-fid.

    Args:
        features_real: array `(N, D)`. Reference features.
        features_fake: array `(M, D)`. Generated features.
        num_subsets: int. Number of subsets. Defaults to `100`.
        subset_size: int. Samples per subset. Defaults to `1000`.
        seed: int. Seed of the subset draws. Defaults to `0`.

    Returns:
        `(mean, std)` of the estimates over the subsets.

    Example:
    ```python
    import numpy as np
    from ebgan_keras.metrics import kid_from_features

    rng = np.random.default_rng(0)
    mean, std = kid_from_features(rng.normal(size=(200, 8)), rng.normal(size=(200, 8)))
    ```
    """
    real = _as_matrix(features_real, "features_real")
    fake = _as_matrix(features_fake, "features_fake")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            "Both feature sets must have the same dimension. Received: "
            f"features_real.shape={real.shape}, features_fake.shape={fake.shape}"
        )
    if int(num_subsets) < 1 or int(subset_size) < 2:
        raise ValueError(
            "`num_subsets` must be >= 1 and `subset_size` >= 2. Received: "
            f"num_subsets={num_subsets}, subset_size={subset_size}"
        )
    size = min(int(subset_size), real.shape[0], fake.shape[0])
    if size < 2:
        raise ValueError(
            "KID needs at least 2 samples in each set. Received: "
            f"{real.shape[0]} reference and {fake.shape[0]} generated samples."
        )
    dim = real.shape[1]
    rng = np.random.default_rng(seed)
    estimates = np.empty(int(num_subsets))
    for index in range(int(num_subsets)):
        x = real[rng.choice(real.shape[0], size, replace=False)]
        y = fake[rng.choice(fake.shape[0], size, replace=False)]
        k_xx = (x @ x.T / dim + 1.0) ** 3
        k_yy = (y @ y.T / dim + 1.0) ** 3
        k_xy = (x @ y.T / dim + 1.0) ** 3
        off_diagonal = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (
            size * (size - 1)
        )
        estimates[index] = off_diagonal - 2.0 * k_xy.mean()
    return float(estimates.mean()), float(estimates.std())


def _class_probabilities(probabilities) -> np.ndarray:
    """`probabilities` as a matrix of rows of class probabilities, checked."""
    probabilities = _as_matrix(probabilities, "probabilities")
    if np.any(probabilities < 0) or not np.allclose(
        probabilities.sum(axis=1), 1.0, atol=1e-3
    ):
        raise ValueError(
            "`probabilities` must be non-negative with rows summing to 1 (softmax "
            "outputs); the feature extractor's outputs are not class "
            f"probabilities. Received: row sums in [{probabilities.sum(1).min():.4g}, "
            f"{probabilities.sum(1).max():.4g}]"
        )
    return probabilities


def inception_score_from_probabilities(
    probabilities, splits: int = 10
) -> tuple[float, float]:
    """Inception Score `exp(E_x KL(p(y|x) || p(y)))`, mean and std over splits.

    Args:
        probabilities: array `(N, K)`. Class probabilities per image (rows sum
            to 1).
        splits: int. The images are cut into this many consecutive equal
            parts; the score is computed on each. Defaults to `10`.

    Returns:
        `(mean, std)` of the per-split scores. One-hot predictions spread
        evenly over `k` classes give `k`; identical predictions give 1.

    Example:
    ```python
    import numpy as np
    from ebgan_keras.metrics import inception_score_from_probabilities

    mean, std = inception_score_from_probabilities(np.eye(10)[np.arange(100) % 10])
    ```
    """
    probabilities = _class_probabilities(probabilities)
    splits = int(splits)
    if splits < 1 or splits > probabilities.shape[0]:
        raise ValueError(
            f"`splits` must be between 1 and the number of images "
            f"({probabilities.shape[0]}). Received: splits={splits}"
        )
    scores = []
    for part in np.array_split(probabilities, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = scipy.special.rel_entr(part, marginal).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def ebgan_inception_score_from_probabilities(probabilities, eps: float = 1e-7) -> float:
    """The EBGAN paper's modified inception score `I' = E_x KL(p(y) || p(y|x))`.

    Zhao, Mathieu and LeCun (ICLR 2017, section 4.1) score their MNIST grid
    with the inception score changed in two ways: the pair
    of distributions swapped (`KL(p(y) || p(y|x))` instead of `KL(p(y|x) ||
    p(y))`) and no `exp`. `p(y|x)` is an MNIST classifier's prediction for a
    generated image `x`, `p(y)` its mean over the generated images. Higher is
    better: 0 when every image gets the same prediction; large when the
    predictions are confident and spread over the classes. Because
    `p(y) log p(y|x)` weighs the classes an image does *not* belong to, the
    score depends on how small the classifier's probabilities get: each
    `p(y|x)` is floored at `eps` and renormalized, which bounds the score by
    `-log K - (K - 1) / K * log(eps) + O(eps)` (12.20 for K = 10 classes and
    `eps = 1e-7`, Keras's float32 epsilon: smaller probabilities are not
    resolved by a float32 softmax next to the winning class).

    Args:
        probabilities: array `(N, K)`. Class probabilities per image (rows sum
            to 1).
        eps: float. Floor of each probability, in `(0, 1 / K)`. Defaults to
            `1e-7`.

    Returns:
        float. `I'` over all `N` images (one marginal `p(y)`, no splits).

    Example:
    ```python
    import numpy as np
    from ebgan_keras.metrics import ebgan_inception_score_from_probabilities

    score = ebgan_inception_score_from_probabilities(np.eye(10)[np.arange(100) % 10])
    ```
    """
    probabilities = _class_probabilities(probabilities)
    classes = probabilities.shape[1]
    if not 0 < eps < 1.0 / classes:
        raise ValueError(
            f"`eps` must be in (0, 1/K) = (0, {1.0 / classes:.4g}) for K = {classes} "
            f"classes. Received: eps={eps!r}"
        )
    floored = np.maximum(probabilities.astype(np.float64), eps)
    floored /= floored.sum(axis=1, keepdims=True)
    marginal = floored.mean(axis=0, keepdims=True)
    return float(scipy.special.rel_entr(marginal, floored).sum(axis=1).mean())


def _kth_neighbour_radii(features: np.ndarray, k: int, batch_size: int) -> np.ndarray:
    radii = np.empty(features.shape[0])
    for start in range(0, features.shape[0], batch_size):
        distances = _pairwise_distances(features[start : start + batch_size], features)
        # Column k of the sorted row: the k-th neighbour, the sample itself at 0.
        radii[start : start + batch_size] = np.partition(distances, k, axis=1)[:, k]
    return radii


def _pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    squared = (
        np.sum(a * a, axis=1)[:, None] + np.sum(b * b, axis=1)[None, :] - 2.0 * a @ b.T
    )
    return np.sqrt(np.clip(squared, 0.0, None))


def _coverage(manifold: np.ndarray, radii: np.ndarray, queries: np.ndarray, batch_size):
    inside = np.zeros(queries.shape[0], dtype=bool)
    for start in range(0, queries.shape[0], batch_size):
        distances = _pairwise_distances(queries[start : start + batch_size], manifold)
        # A tiny relative slack so a point at exactly a radius counts as inside.
        inside[start : start + batch_size] = np.any(
            distances <= radii[None, :] * (1 + 1e-9) + 1e-12, axis=1
        )
    return float(inside.mean())


def precision_recall_from_features(
    features_real, features_fake, k: int = 3, batch_size: int = 1000
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al., NeurIPS 2019).

    Each set's manifold is the union of balls around its samples with radius
    the distance to the sample's `k`-th nearest neighbour in the same set.
    Precision is the fraction of generated samples inside the reference
    manifold; recall the fraction of reference samples inside the generated
    manifold.

    Args:
        features_real: array `(N, D)`. Reference features.
        features_fake: array `(M, D)`. Generated features.
        k: int. Neighbour that sets the radii. Defaults to `3` (the paper's).
        batch_size: int. Rows per block of the distance computation. Defaults
            to `1000`.

    Returns:
        `(precision, recall)`, both in `[0, 1]`.

    Example:
    ```python
    import numpy as np
    from ebgan_keras.metrics import precision_recall_from_features

    x = np.random.default_rng(0).normal(size=(100, 4))
    precision, recall = precision_recall_from_features(x, x)  # (1.0, 1.0)
    ```
    """
    real = _as_matrix(features_real, "features_real")
    fake = _as_matrix(features_fake, "features_fake")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            "Both feature sets must have the same dimension. Received: "
            f"features_real.shape={real.shape}, features_fake.shape={fake.shape}"
        )
    k = int(k)
    if k < 1 or k >= min(real.shape[0], fake.shape[0]):
        raise ValueError(
            "`k` must be >= 1 and smaller than the number of samples in each set "
            f"({real.shape[0]} reference, {fake.shape[0]} generated). Received: k={k}"
        )
    real_radii = _kth_neighbour_radii(real, k, batch_size)
    fake_radii = _kth_neighbour_radii(fake, k, batch_size)
    precision = _coverage(real, real_radii, fake, batch_size)
    recall = _coverage(fake, fake_radii, real, batch_size)
    return precision, recall
