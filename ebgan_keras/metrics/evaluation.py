"""FID, KID, IS and precision/recall of a model or of images, with their protocol."""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings

import numpy as np

from ebgan_keras import memory
from ebgan_keras.files import file_sha256
from ebgan_keras.metrics import extractors as extractors_lib
from ebgan_keras.metrics import statistics
from ebgan_keras.metrics.results import EvaluationReport
from ebgan_keras.metrics.results import MetricResult
from ebgan_keras.metrics.results import Protocol

METRICS = ("fid", "kid", "is", "precision_recall")
#: Metrics computed only when asked for: `"ebgan_is"`, the EBGAN paper's
#: modified inception score (`statistics.ebgan_inception_score_from_probabilities`).
OPTIONAL_METRICS = ("ebgan_is",)
_CLASSIFIER_METRICS = ("is", "ebgan_is")
_STRING_REFERENCE_SPLIT = "test"


def default_cache_dir() -> str:
    """Folder of cached reference statistics, under the Keras cache dir.

    `$KERAS_HOME/ebgan_keras/metrics` (`~/.keras/...` by default), or the
    same under the temp folder when that is not writable.

    Returns:
        The folder's path (created if needed).

    Example:
    ```python
    from ebgan_keras.metrics import default_cache_dir

    print(default_cache_dir())
    ```
    """
    base = os.path.expanduser(os.environ.get("KERAS_HOME", "~/.keras"))
    if not os.access(base if os.path.exists(base) else os.path.dirname(base), os.W_OK):
        base = os.path.join(tempfile.gettempdir(), ".keras")
    path = os.path.join(base, "ebgan_keras", "metrics")
    os.makedirs(path, exist_ok=True)
    return path


def _collect_images(source, limit: int | None, name: str) -> np.ndarray:
    """Reads images from an array, a tf.data.Dataset or an iterable of batches."""
    if isinstance(source, np.ndarray) or hasattr(source, "__array__"):
        images = np.asarray(source)
        if images.ndim == 3:
            images = images[..., None]
        return images if limit is None else images[:limit]
    accepts = (
        "an array of images (N, H, W, C), a tf.data.Dataset or an iterable of "
        "image batches (or (images, labels) batches)"
    )
    chunks = list(_iterated_batches(source, limit, name, accepts))
    if not chunks:
        raise ValueError(f"`{name}` yielded no images.")
    return np.concatenate(chunks)


def _resolve_reference(reference, reference_name, reference_split, num_reference):
    if isinstance(reference, str):
        try:
            from ebgan_keras import data as data_lib
        except ImportError:
            raise ValueError(
                "A reference given by name needs `ebgan_keras.data`, which this "
                "installation lacks; pass the reference images (array or "
                f"dataset) instead. Received: reference={reference!r}"
            ) from None
        split = reference_split or _STRING_REFERENCE_SPLIT
        name = reference
        # The whole split, in file order: a named reference must score the
        # same images on every call (and hit the same cache file).
        reference = data_lib.load(
            name, split=split, batch_size=1000, shuffle=False, drop_remainder=False
        )
        reference_name, reference_split = name, split
    images = _collect_images(reference, num_reference, "reference")
    return images, reference_name or "custom", reference_split or "unspecified"


def _generated_images(model_or_images, num_samples, seed):
    if hasattr(model_or_images, "generate"):
        if num_samples is None:
            num_samples = 10_000
        if int(num_samples) < 2:
            raise ValueError(
                f"`num_samples` must be at least 2. Received: num_samples={num_samples}"
            )
        return np.asarray(model_or_images.generate(int(num_samples), seed=seed))
    images = _collect_images(model_or_images, None, "model_or_images")
    if num_samples is not None:
        if int(num_samples) > len(images):
            raise ValueError(
                f"`num_samples`={num_samples} is more than the {len(images)} "
                "images given."
            )
        images = images[: int(num_samples)]
    return images


#: Bytes of generated images held at once while a model's samples stream
#: through the extractor (10,000 MNIST images are one chunk).
STREAM_CHUNK_BYTES = 256 * 2**20


def _chunk_seed(seed, index: int):
    """The seed of a model's `index`-th chunk: the call's own seed first."""
    if seed is None or index == 0:
        return seed
    return int(np.random.SeedSequence([int(seed), index]).generate_state(1)[0] >> 1)


def _generated_batches(model_or_images, num_samples, seed, chunk_bytes):
    """`(batches, total)`: the generated images as an iterator of batches, and
    their number when it is known up front (else None)."""
    if hasattr(model_or_images, "generate"):
        if num_samples is None:
            num_samples = 10_000
        if int(num_samples) < 2:
            raise ValueError(
                f"`num_samples` must be at least 2. Received: num_samples={num_samples}"
            )
        total = int(num_samples)
        image_bytes = 4 * int(np.prod(getattr(model_or_images, "image_shape", (1,))))
        chunk = max(2, min(total, int(chunk_bytes) // max(image_bytes, 1)))

        def model_batches():
            for index, start in enumerate(range(0, total, chunk)):
                count = min(chunk, total - start)
                yield np.asarray(
                    model_or_images.generate(count, seed=_chunk_seed(seed, index))
                )

        return model_batches(), total
    if isinstance(model_or_images, np.ndarray) or hasattr(model_or_images, "__array__"):
        images = _generated_images(model_or_images, num_samples, seed)
        return iter([images]), len(images)
    accepts = (
        "a model, an array of images (N, H, W, C), a tf.data.Dataset or an "
        "iterable of image batches"
    )
    batches = _iterated_batches(
        model_or_images, num_samples, "model_or_images", accepts
    )
    return batches, num_samples


def _iterated_batches(source, limit, name: str, accepts: str):
    """The image batches of a dataset or an iterable, up to `limit` images.

    An element may be a batch, `(images, labels)`, a dict with `"image"` or
    `"images"`, or one unbatched image; `accepts` describes what `name` may
    be, for the error on something that cannot be iterated.
    """
    if hasattr(source, "as_numpy_iterator"):
        source = source.as_numpy_iterator()
    try:
        iterator = iter(source)
    except TypeError:
        raise TypeError(
            f"`{name}` must be {accepts}. Received: {name}={type(source).__name__}"
        ) from None
    count = 0
    for element in iterator:
        if isinstance(element, dict):
            element = element.get("image", element.get("images"))
        elif isinstance(element, (tuple, list)):
            element = element[0]
        batch = np.asarray(element)
        if batch.ndim == 3 and batch.shape[-1] in (1, 3):
            batch = batch[None]  # an unbatched dataset: one image per element
        elif batch.ndim == 3:
            batch = batch[..., None]
        if limit is not None:
            batch = batch[: int(limit) - count]
        count += len(batch)
        yield batch
        if limit is not None and count >= int(limit):
            return


def _digest(images: np.ndarray) -> str:
    digest = hashlib.sha256(str(images.shape).encode())
    digest.update(np.ascontiguousarray(images, dtype=np.float32).tobytes())
    return digest.hexdigest()


def reference_statistics(
    reference,
    features="auto",
    num_reference: int | None = None,
    reference_name: str | None = None,
    reference_split: str | None = None,
    batch_size: int = 256,
    verbose: bool = False,
    cache: bool = True,
    cache_dir: str | None = None,
    weights: str | None = "default",
) -> dict:
    """Features, mean and covariance of reference images, cached on disk.

    The cache key is (reference name, split, extractor and its weights,
    number of images, a digest of the images' pixels), so a changed reference
    is never served stale. Each cache file has a sha256 sidecar; a file whose
    hash does not match is recomputed.

    Args:
        reference: array `(N, H, W, C)` in `[-1, 1]`, a tf.data.Dataset or an
            iterable of batches, or a data set name for `ebgan_keras.data.load`.
        features: str, `keras.Model` or `FeatureExtractor`. The extractor
            (see `evaluate`). Defaults to `"auto"`: the offline classifier of
            the reference data set when there is one, else `"inception_v3"`.
        num_reference: int or None. Use the first this many images. Defaults
            to all.
        reference_name: str. Name recorded in the protocol. Defaults to the
            data set name, or `"custom"`.
        reference_split: str. Split recorded in the protocol. Defaults to
            `"test"` for a name, else `"unspecified"`.
        batch_size: int. Images per batch. Defaults to `256`.
        verbose: bool. Show a progress bar. Defaults to `False`.
        cache: bool. Read and write the disk cache. Defaults to `True`.
        cache_dir: str. Cache folder. Defaults to `default_cache_dir()`.
        weights: str or None. Weights of a named extractor. Defaults to its
            standard weights.

    Returns:
        A dict with `features`, `mu`, `sigma`, `num_reference`, `reference`,
        `reference_split`, `image_shape`, `extractor` and `from_cache`.

    Example:
    ```python
    from ebgan_keras.metrics import reference_statistics

    stats = reference_statistics(real_images, features="mnist_classifier",
                                 reference_name="mnist", reference_split="test")
    ```
    """
    features = extractors_lib.resolve_features(features, reference, reference_name)
    images, name, split = _resolve_reference(
        reference, reference_name, reference_split, num_reference
    )
    if len(images) < 2:
        raise ValueError(
            f"The reference needs at least 2 images. Received: {len(images)}"
        )
    extractor = extractors_lib.get_extractor(features, images.shape[1:], weights)
    images = extractor.check_images(images, "reference")
    path = None
    if cache and extractor.cache_id is not None:
        safe = "".join(
            c if c.isalnum() or c in "-_." else "_" for c in f"{name}-{split}"
        )
        path = os.path.join(
            cache_dir or default_cache_dir(),
            f"{safe}-{extractor.cache_id}-{len(images)}-{_digest(images)[:16]}.npz",
        )
        loaded = _load_cache(path)
        if loaded is not None:
            return _stats_dict(loaded, name, split, images, extractor, True)
    reference_features, _ = extractor.extract(images, batch_size, verbose, "reference")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the caller warns when it uses sigma
        mu, sigma = statistics.feature_statistics(reference_features)
    stats = {"features": reference_features, "mu": mu, "sigma": sigma}
    if path is not None:
        _save_cache(path, stats)
    return _stats_dict(stats, name, split, images, extractor, False)


def _stats_dict(stats, name, split, images, extractor, from_cache):
    return {
        "features": stats["features"],
        "mu": stats["mu"],
        "sigma": stats["sigma"],
        "num_reference": int(len(images)),
        "reference": name,
        "reference_split": split,
        "image_shape": tuple(images.shape[1:]),
        "extractor": extractor,
        "from_cache": from_cache,
    }


def _load_cache(path: str):
    sidecar = path + ".sha256"
    if not (os.path.exists(path) and os.path.exists(sidecar)):
        return None
    with open(sidecar, encoding="utf-8") as handle:
        expected = handle.read().strip()
    if file_sha256(path) != expected:
        warnings.warn(
            f"The cached reference statistics {path} do not match their sha256; "
            "recomputing them.",
            stacklevel=3,
        )
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            loaded = {key: data[key] for key in ("features", "mu", "sigma")}
        loaded["features"] = loaded["features"].astype(np.float64)
        return loaded
    except (OSError, KeyError, ValueError):
        return None


def _save_cache(path: str, stats: dict) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + ".tmp.npz"
    np.savez(
        temporary,
        features=stats["features"].astype(np.float32),
        mu=stats["mu"],
        sigma=stats["sigma"],
    )
    os.replace(temporary, path)
    with open(path + ".sha256", "w", encoding="utf-8") as handle:
        handle.write(file_sha256(path))


def evaluate(
    model_or_images,
    reference=None,
    metrics=METRICS,
    num_samples: int | None = None,
    features="auto",
    seed: int | None = 0,
    num_reference: int | None = None,
    reference_name: str | None = None,
    reference_split: str | None = None,
    batch_size: int = 256,
    verbose: bool = False,
    cache: bool = True,
    cache_dir: str | None = None,
    weights: str | None = "default",
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    is_splits: int = 10,
    k: int = 3,
    dataset=None,
    chunk_bytes: int = STREAM_CHUNK_BYTES,
) -> EvaluationReport:
    """Measures several sample-quality metrics of a model in one pass.

    Generated images come from `model.generate(num_samples, seed=seed)`;
    their features are computed once and shared by all metrics, and the
    reference statistics come from the disk cache when possible.

    Args:
        model_or_images: a model with `generate(n, seed=)` (any `ek` GAN), or
            generated images `(N, H, W, C)` in `[-1, 1]`.
        reference: array, tf.data.Dataset, iterable of batches, or data set
            name. Real images in `[-1, 1]`. Needed by all metrics but IS.
        metrics: tuple of str. Any of `"fid"`, `"kid"`, `"is"`,
            `"precision_recall"`. Defaults to all four.
        num_samples: int. Generated images. Defaults to 10000 for a model,
            to all given images otherwise.
        features: str, `keras.Model` or `FeatureExtractor`.
            `"mnist_classifier"`, `"fashion_mnist_classifier"` (offline, 28x28
            grey images), `"inception_v3"` (the standard; needs its weights)
            or `"auto"`: the offline classifier of the reference data set
            named by `reference` (a string) or `reference_name` (`mnist`,
            `mnist_subset`: `"mnist_classifier"`; `fashion_mnist`:
            `"fashion_mnist_classifier"`), `"inception_v3"` for any other or
            an unnamed reference (`auto_features`, the rule of
            `ebgan-keras eval`). Defaults to `"auto"`.
        seed: int or None. Seed of the generated latents and KID subsets.
            Defaults to `0`.
        num_reference: int or None. Reference images used. Defaults to all.
        reference_name: str. Reference name for the protocol.
        reference_split: str. Reference split for the protocol.
        batch_size: int. Images per batch of features. Defaults to `256`.
        verbose: bool. Show progress bars. Defaults to `False`.
        cache: bool. Cache the reference statistics on disk. Defaults to `True`.
        cache_dir: str. Cache folder. Defaults to `default_cache_dir()`.
        weights: str or None. Weights of a named extractor (e.g. a path to the
            InceptionV3 `.h5`). Defaults to its standard weights.
        kid_subsets: int. KID subsets. Defaults to `100`.
        kid_subset_size: int. KID subset size. Defaults to `1000`.
        is_splits: int. Inception Score splits. Defaults to `10`.
        k: int. Neighbour of precision/recall. Defaults to `3`.
        dataset: alias of `reference`.
        chunk_bytes: int. Bytes of a model's generated images held at once:
            its samples are generated in chunks (the first with `seed`, the
            others with seeds derived from it) that stream through the
            extractor. An iterable of batches streams as it is. FID keeps
            only running statistics; KID and precision/recall keep the
            features, IS the probabilities (refused up front, with the
            estimate, when they do not fit in the free memory). Defaults to
            256 MiB (10,000 MNIST images are one chunk).

    Returns:
        An `EvaluationReport`: metric name to `MetricResult`.

    Example:
    ```python
    import ebgan_keras as ek
    from ebgan_keras.metrics import evaluate

    # features="auto": the offline mnist_classifier for reference "mnist".
    report = evaluate(model, reference=real_images, num_samples=10000,
                      reference_name="mnist", reference_split="test")
    print(report)
    ```
    """
    if dataset is not None:
        if reference is not None:
            raise ValueError(
                "Pass the reference as `reference=` or `dataset=`, not both."
            )
        reference = dataset
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS + OPTIONAL_METRICS]
    if unknown or not metrics:
        raise ValueError(
            f"`metrics` must be a non-empty tuple of {METRICS + OPTIONAL_METRICS}. "
            f"Received: metrics={metrics!r}"
        )
    if reference is None and any(m not in _CLASSIFIER_METRICS for m in metrics):
        raise ValueError(
            f"Metrics {[m for m in metrics if m not in _CLASSIFIER_METRICS]} compare "
            "with real images: "
            "pass `reference=` (real images in [-1, 1], a dataset or a name)."
        )
    features = extractors_lib.resolve_features(features, reference, reference_name)
    batches, total = _generated_batches(model_or_images, num_samples, seed, chunk_bytes)
    # The generated side streams: features go into running statistics, and
    # only what a metric needs whole (KID and precision/recall: features; IS:
    # probabilities) is kept, after checking that it fits in memory.
    keep_features = "kid" in metrics or "precision_recall" in metrics
    wants_probabilities = bool(set(metrics) & set(_CLASSIFIER_METRICS))
    running = statistics.RunningStatistics()
    kept_features, kept_probabilities = [], []
    extractor, image_shape, count = None, None, 0
    for batch in batches:
        other_shape = image_shape is not None and batch.shape[1:] != image_shape
        if batch.ndim != 4 or other_shape:
            raise ValueError(
                "Generated images must be batches (N, H, W, C) of one shape. "
                f"Received: a batch of shape {batch.shape}"
            )
        if len(batch) == 0:
            continue
        if extractor is None:
            image_shape = batch.shape[1:]
            extractor = extractors_lib.get_extractor(features, image_shape, weights)
            if wants_probabilities and not extractor.has_probabilities:
                raise ValueError(
                    f"The Inception Score needs class probabilities, which the "
                    f"{extractor.name!r} extractor does not give. Use a named "
                    "extractor or a FeatureExtractor whose model returns "
                    "[features, probabilities]."
                )
        batch_features, batch_probabilities = extractor.extract(
            batch, batch_size, verbose, "generated images"
        )
        if count == 0 and total is not None and (keep_features or wants_probabilities):
            per_image = batch_features.shape[1] * 8 * keep_features
            if wants_probabilities and batch_probabilities is not None:
                per_image += batch_probabilities.shape[1] * 8
            memory.check_fits(
                per_image * int(total),
                f"The metrics {list(metrics)} of {total} generated images (their "
                "features are needed whole: lower `num_samples`, or ask for "
                "`fid` only, which streams)",
            )
        count += len(batch)
        running.update(batch_features)
        if keep_features:
            kept_features.append(batch_features)
        if wants_probabilities:
            kept_probabilities.append(batch_probabilities)
    if total is not None and count < int(total):
        raise ValueError(
            f"`num_samples`={total} is more than the {count} images given."
        )
    if count < 2:
        raise ValueError(
            f"Need at least 2 generated images (N, H, W, C). Received: {count} image(s)"
        )
    fake_features = np.concatenate(kept_features) if keep_features else None
    probabilities = np.concatenate(kept_probabilities) if wants_probabilities else None
    if reference is not None and not set(metrics) <= set(_CLASSIFIER_METRICS):
        stats = reference_statistics(
            reference,
            extractor,
            num_reference=num_reference,
            reference_name=reference_name,
            reference_split=reference_split,
            batch_size=batch_size,
            verbose=verbose,
            cache=cache,
            cache_dir=cache_dir,
        )
        if stats["image_shape"] != tuple(image_shape):
            raise ValueError(
                "Generated and reference images must have the same shape. Received: "
                f"generated {tuple(image_shape)}, reference "
                f"{stats['image_shape']}"
            )
    else:
        stats = {"num_reference": 0, "reference": "none", "reference_split": "none"}

    def protocol(metric, **details):
        return Protocol(
            metric=metric,
            features=extractor.name,
            num_generated=int(count),
            num_reference=stats["num_reference"],
            reference=stats["reference"],
            reference_split=stats["reference_split"],
            image_size=tuple(int(d) for d in image_shape),
            resize=extractor.resize,
            seed=seed,
            details=details,
        )

    results = {}
    for metric in metrics:
        if metric == "fid":
            mu, sigma = running.statistics()
            if stats["num_reference"] < len(mu):
                warnings.warn(
                    f"Only {stats['num_reference']} reference images for "
                    f"{len(mu)} features: FID is strongly biased.",
                    stacklevel=2,
                )
            value = statistics.frechet_distance(stats["mu"], stats["sigma"], mu, sigma)
            results[metric] = MetricResult("fid", {"fid": value}, protocol("fid"))
        elif metric == "kid":
            mean, std = statistics.kid_from_features(
                stats["features"], fake_features, kid_subsets, kid_subset_size, seed
            )
            size = min(kid_subset_size, len(fake_features), stats["num_reference"])
            results[metric] = MetricResult(
                "kid",
                {"kid": mean, "kid_std": std},
                protocol("kid", subsets=int(kid_subsets), subset_size=int(size)),
            )
        elif metric == "is":
            mean, std = statistics.inception_score_from_probabilities(
                probabilities, is_splits
            )
            results[metric] = MetricResult(
                "is", {"is": mean, "is_std": std}, protocol("is", splits=int(is_splits))
            )
        elif metric == "ebgan_is":
            value = statistics.ebgan_inception_score_from_probabilities(probabilities)
            results[metric] = MetricResult(
                "ebgan_is", {"ebgan_is": value}, protocol("ebgan_is", eps=1e-7)
            )
        else:
            precision, recall = statistics.precision_recall_from_features(
                stats["features"], fake_features, k=k
            )
            results[metric] = MetricResult(
                "precision_recall",
                {"precision": precision, "recall": recall},
                protocol("precision_recall", k=int(k)),
            )
    return EvaluationReport(results)


def _single(metric: str, model_or_images, reference, dataset, kwargs) -> MetricResult:
    return evaluate(
        model_or_images,
        reference=reference,
        dataset=dataset,
        metrics=(metric,),
        **kwargs,
    )[metric]


def fid(model_or_images, reference=None, dataset=None, **kwargs) -> MetricResult:
    """Frechet Inception Distance (with any feature extractor) and its protocol.

    Args:
        model_or_images: a model with `generate(n, seed=)`, or images
            `(N, H, W, C)` in `[-1, 1]`.
        reference: real images, dataset or data set name (see `evaluate`).
        dataset: alias of `reference`.
        **kwargs: the other arguments of `evaluate` (`num_samples`,
            `features`, `seed`, `reference_name`, `reference_split`, ...).

    Returns:
        A `MetricResult`; `float(result)` is the FID.

    Example:
    ```python
    from ebgan_keras.metrics import fid

    result = fid(model, reference=real_images, num_samples=10000,
                 features="mnist_classifier", reference_name="mnist",
                 reference_split="test")
    print(result)
    ```
    """
    return _single("fid", model_or_images, reference, dataset, kwargs)


def kid(model_or_images, reference=None, dataset=None, **kwargs) -> MetricResult:
    """Kernel Inception Distance (mean and std over subsets) and its protocol.

    Args:
        model_or_images: a model with `generate(n, seed=)`, or images.
        reference: real images, dataset or data set name (see `evaluate`).
        dataset: alias of `reference`.
        **kwargs: the other arguments of `evaluate` (`kid_subsets`,
            `kid_subset_size`, `features`, ...).

    Returns:
        A `MetricResult` with `kid` and `kid_std`.

    Example:
    ```python
    from ebgan_keras.metrics import kid

    result = kid(model, reference=real_images, features="mnist_classifier")
    ```
    """
    return _single("kid", model_or_images, reference, dataset, kwargs)


def inception_score(model_or_images, **kwargs) -> MetricResult:
    """Inception Score (mean and std over splits) with the extractor's classifier.

    With `features="mnist_classifier"` this is the classifier-based score the
    EBGAN paper reports for MNIST.

    Args:
        model_or_images: a model with `generate(n, seed=)`, or images.
        **kwargs: the other arguments of `evaluate` (`is_splits`, `features`,
            `num_samples`, `seed`, ...).

    Returns:
        A `MetricResult` with `is` and `is_std`.

    Example:
    ```python
    from ebgan_keras.metrics import inception_score

    result = inception_score(model, features="mnist_classifier")
    ```
    """
    return evaluate(model_or_images, metrics=("is",), **kwargs)["is"]


def precision_recall(
    model_or_images, reference=None, dataset=None, **kwargs
) -> MetricResult:
    """Improved precision and recall (k-NN manifolds, k=3) and its protocol.

    Args:
        model_or_images: a model with `generate(n, seed=)`, or images.
        reference: real images, dataset or data set name (see `evaluate`).
        dataset: alias of `reference`.
        **kwargs: the other arguments of `evaluate` (`k`, `features`, ...).

    Returns:
        A `MetricResult` with `precision` and `recall`.

    Example:
    ```python
    from ebgan_keras.metrics import precision_recall

    result = precision_recall(model, reference=real_images,
                              features="mnist_classifier")
    ```
    """
    return _single("precision_recall", model_or_images, reference, dataset, kwargs)
