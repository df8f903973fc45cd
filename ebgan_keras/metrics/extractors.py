"""Pluggable feature extractors: InceptionV3, the shipped classifiers, any Model."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

import keras
import numpy as np

from ebgan_keras.files import file_sha256
from ebgan_keras.metrics import classifiers

INCEPTION_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/"
    "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
)
INCEPTION_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
INCEPTION_MD5 = "9a0d58056eeedaa3f26cb7ebd46da564"  # as in keras.applications
INCEPTION_SIZE = 299
NAMED_EXTRACTORS = ("mnist_classifier", "fashion_mnist_classifier", "inception_v3")
#: The offline domain classifier `features="auto"` picks, by reference data set.
DOMAIN_FEATURES = {
    "mnist": "mnist_classifier",
    "mnist_subset": "mnist_classifier",
    "fashion_mnist": "fashion_mnist_classifier",
}
_RANGE_TOLERANCE = 1e-3


class FeatureExtractor:
    """Maps images in `[-1, 1]` to feature vectors (and class probabilities).

    Wraps a Keras model whose outputs are `features` or `[features,
    probabilities]`; preprocessing (channel repeat, resize) is part of the
    wrapped model, so one compiled `predict` does everything in batches.

    Args:
        model: `keras.Model`. Takes `(N, H, W, C)` images in `[-1, 1]`,
            returns features `(N, D)` or `[features, probabilities]`.
        name: str. Name recorded in every result's protocol.
        resize: str. How the model resizes its input, for the protocol.
            Defaults to `"none"`.
        image_shape: tuple or None. The `(H, W, C)` the model accepts; `None`
            for any size. Defaults to the model's input shape.
        cache_id: str or None. Identifies the weights in the reference cache;
            `None` disables caching for this extractor. Defaults to `None`.

    Example:
    ```python
    import keras
    from ebgan_keras.metrics import FeatureExtractor

    net = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                            keras.layers.Dense(16)])
    extractor = FeatureExtractor(net, name="my_features")
    features, probabilities = extractor.extract(images)
    ```
    """

    def __init__(
        self,
        model: keras.Model,
        name: str,
        resize: str = "none",
        image_shape: tuple | None = "model",
        cache_id: str | None = None,
    ) -> None:
        if not isinstance(model, keras.Model):
            raise TypeError(
                "`model` must be a keras.Model mapping images to features. "
                f"Received: model={type(model).__name__}"
            )
        self.model = model
        self.name = str(name)
        self.resize = str(resize)
        if image_shape == "model":
            try:
                shape = tuple(model.inputs[0].shape[1:])
                image_shape = None if None in shape else shape
            except (AttributeError, IndexError, TypeError, ValueError):
                image_shape = None
        self.image_shape = None if image_shape is None else tuple(image_shape)
        self.cache_id = cache_id

    @property
    def has_probabilities(self) -> bool:
        """Whether the model also returns class probabilities (needed for IS)."""
        return len(self.model.outputs) >= 2 if hasattr(self.model, "outputs") else False

    def check_images(self, images, name: str = "images") -> np.ndarray:
        """Checks shape, dtype, range and finiteness of images for this extractor.

        Args:
            images: array `(N, H, W, C)`. Images in `[-1, 1]`.
            name: str. Argument name used in error messages. Defaults to
                `"images"`.

        Returns:
            The images as a float32 numpy array.
        """
        images = np.asarray(images)
        if images.ndim != 4:
            raise ValueError(
                f"`{name}` must be a batch of images (N, H, W, C). "
                f"Received: {name}.shape={images.shape}"
            )
        if not np.issubdtype(images.dtype, np.floating):
            raise ValueError(
                f"`{name}` must be float images in [-1, 1] (e.g. uint8 / 127.5 - 1). "
                f"Received: {name}.dtype={images.dtype}"
            )
        images = images.astype("float32", copy=False)
        if not np.all(np.isfinite(images)):
            raise ValueError(f"`{name}` contains NaN or Inf pixels.")
        low, high = float(images.min()), float(images.max())
        if low < -1 - _RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
            raise ValueError(
                f"`{name}` must have values in [-1, 1] (the generators' tanh range) "
                f"for the {self.name!r} extractor. Received: values in "
                f"[{low:.4g}, {high:.4g}]"
            )
        if self.image_shape is not None and tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"The {self.name!r} feature extractor takes images of shape "
                f"{self.image_shape}. Received: {name}.shape={images.shape}. "
                "Use features='inception_v3' (which resizes any image to "
                "299x299) or an extractor made for this image size."
            )
        return np.clip(images, -1.0, 1.0)

    def extract(
        self, images, batch_size: int = 256, verbose: bool = False, name: str = "images"
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Features (and probabilities) of images, in batches with compiled predict.

        Args:
            images: array `(N, H, W, C)`. Float images in `[-1, 1]`.
            batch_size: int. Images per batch. Defaults to `256`.
            verbose: bool. Show a progress bar. Defaults to `False`.
            name: str. Argument name for error messages. Defaults to `"images"`.

        Returns:
            `(features, probabilities)`: float64 `(N, D)` and `(N, K)` or None.
        """
        images = self.check_images(images, name)
        outputs = self.model.predict(
            images, batch_size=int(batch_size), verbose=1 if verbose else 0
        )
        if isinstance(outputs, (list, tuple)):
            features = outputs[0]
            probabilities = outputs[1] if len(outputs) > 1 else None
        else:
            features, probabilities = outputs, None
        features = np.asarray(features, dtype=np.float64).reshape(len(images), -1)
        if not np.all(np.isfinite(features)):
            raise ValueError(
                f"The {self.name!r} extractor returned NaN or Inf features for "
                f"`{name}`; no metric can be computed from them."
            )
        if probabilities is not None:
            probabilities = np.asarray(probabilities, dtype=np.float64)
        return features, probabilities

    def __repr__(self) -> str:
        return f"FeatureExtractor(name={self.name!r}, resize={self.resize!r})"


def domain_classifier_extractor(
    name: str, weights: str | None = None
) -> FeatureExtractor:
    """The extractor of a shipped domain classifier (28x28x1 images).

    Features are the 128 activations of the penultimate layer; probabilities
    the softmax over the 10 classes.

    Args:
        name: str. `"mnist_classifier"` or `"fashion_mnist_classifier"`.
        weights: str or None. Another `.weights.h5` of the same network
            (checked against the recorded sha256). Defaults to the shipped file.

    Returns:
        A `FeatureExtractor`.

    Example:
    ```python
    from ebgan_keras.metrics import domain_classifier_extractor

    extractor = domain_classifier_extractor("mnist_classifier")
    ```
    """
    classifier = classifiers.load_domain_classifier(name, weights_path=weights)
    model = keras.Model(
        classifier.inputs,
        [classifier.get_layer(classifiers.FEATURE_LAYER).output, classifier.outputs[0]],
        name=f"{name}_features",
    )
    record = classifiers.classifier_registry().get(name, {})
    return FeatureExtractor(
        model,
        name=name,
        resize="none",
        image_shape=(28, 28, 1),
        cache_id=f"{name}-{record.get('sha256', 'unknown')[:12]}",
    )


class WeightsIntegrityError(ValueError):
    """A downloaded weights file does not match its recorded hash."""


def _file_hash(path: str, expected: str) -> str:
    """md5 or sha256 of a file, by the length of the expected hex digest."""
    return file_sha256(path, "sha256" if len(expected) == 64 else "md5")


def fetch_weights(
    filename: str,
    origin: str,
    file_hash: str,
    cache_dir: str | None = None,
    cache_subdir: str = "models",
) -> str:
    """A hash-checked weights file from the Keras cache, downloaded if missing.

    The file is fetched with `keras.utils.get_file(..., file_hash=...)` into
    a staging folder beside the cache and enters the cache only once its hash
    matches, so a tampered or truncated download never replaces a file
    already in the cache, and none is left where the next call would find
    it. A cached file whose hash does not match is not deleted: a good
    download replaces it, a failed one leaves it as it was.

    Args:
        filename: str. The file's name in the cache.
        origin: str. Where to download it from: an `https://` URL, or a
            `file://` URL of a local copy.
        file_hash: str. Its md5 (32 hex digits) or sha256 (64).
        cache_dir: str. The Keras cache folder. Defaults to `$KERAS_HOME`
            (`~/.keras`).
        cache_subdir: str. Its subfolder. Defaults to `"models"`.

    Returns:
        str. The path of the verified file in the cache.

    Raises:
        WeightsIntegrityError: the downloaded file's hash does not match
            (naming the origin, the expected and the received hash).
        Exception: what `keras.utils.get_file` raises when the download
            fails.

    Example:

    ```python
    from ebgan_keras.metrics import extractors

    path = extractors.fetch_weights(
        extractors.INCEPTION_FILE, "file:///mnt/weights/" +
        extractors.INCEPTION_FILE, extractors.INCEPTION_MD5)
    ```
    """
    root = os.path.expanduser(
        cache_dir or os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))
    )
    folder = os.path.join(root, cache_subdir)
    final = os.path.join(folder, filename)
    if os.path.isfile(final) and _file_hash(final, file_hash) == file_hash:
        return final
    os.makedirs(folder, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".download-", dir=folder)
    try:
        try:
            downloaded = keras.utils.get_file(
                filename,
                origin,
                cache_dir=staging,
                cache_subdir=".",
                file_hash=file_hash,
            )
        except ValueError as error:
            staged = os.path.join(staging, filename)
            if not os.path.isfile(staged):
                raise
            received = _file_hash(staged, file_hash)
            kept = (
                f"; the cached {final} was left as it was"
                if os.path.isfile(final)
                else ""
            )
            raise WeightsIntegrityError(
                f"The weights file {filename} downloaded from {origin} does not "
                f"match its hash (tampered, truncated or another version); it "
                f"was not written to the cache{kept}. Expected "
                f"{'sha256' if len(file_hash) == 64 else 'md5'} {file_hash}, "
                f"received {received}"
            ) from error
        os.replace(downloaded, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _inception_weights_file(weights) -> str:
    if weights != "imagenet":
        path = os.path.expanduser(str(weights))
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"InceptionV3 weights file not found. Received: weights={weights!r}"
            )
        return path
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)  # fail within seconds offline, never hang
    try:
        # Module constants read at call time: a mirror (or a test) may point
        # them elsewhere.
        return fetch_weights(INCEPTION_FILE, INCEPTION_URL, INCEPTION_MD5)
    except WeightsIntegrityError:
        raise
    except Exception as error:
        cache = os.path.join(
            os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "models"
        )
        raise RuntimeError(
            "features='inception_v3' needs the ImageNet weights of InceptionV3 "
            f"({INCEPTION_FILE}, with top, md5 {INCEPTION_MD5}), which could not "
            f"be downloaded from {INCEPTION_URL} ({error}). On a machine "
            f"without internet, copy that file into {cache}/ (the hash is "
            "checked) or pass weights='/path/to/" + INCEPTION_FILE + "'; or use "
            "the offline features='mnist_classifier' / "
            "'fashion_mnist_classifier' for 28x28 images."
        ) from None
    finally:
        socket.setdefaulttimeout(previous)


def inception_v3_extractor(
    image_shape: tuple, weights: str | None = "imagenet"
) -> FeatureExtractor:
    """InceptionV3 pool features (2048) and ImageNet probabilities at 299x299.

    Images are resized bilinearly to 299x299 and grey images repeated to three
    channels, inside the compiled model; `[-1, 1]` is already InceptionV3's
    input range. The features are the global-average-pool output (the same as
    `InceptionV3(include_top=False, pooling="avg")`), the standard FID features
    of keras.applications' weights (not bit-identical to the TF-slim graph of
    the original FID code).

    Args:
        image_shape: tuple. `(H, W, C)` of the images, `C` 1 or 3.
        weights: str or None. `"imagenet"` (downloaded once with
            `keras.utils.get_file`, md5-checked), a path to that `.h5` file,
            or `None` for random weights (plumbing tests only). Defaults to
            `"imagenet"`.

    Returns:
        A `FeatureExtractor`.

    Example:
    ```python
    from ebgan_keras.metrics import inception_v3_extractor

    extractor = inception_v3_extractor((64, 64, 3))
    ```
    """
    image_shape = tuple(int(d) for d in image_shape)
    if len(image_shape) != 3 or image_shape[-1] not in (1, 3):
        raise ValueError(
            "InceptionV3 takes (H, W, C) images with 1 or 3 channels. "
            f"Received: image_shape={image_shape}"
        )
    weights_path = None if weights is None else _inception_weights_file(weights)
    inception = keras.applications.InceptionV3(include_top=True, weights=None)
    if weights_path is not None:
        inception.load_weights(weights_path)
    trunk = keras.Model(
        inception.inputs,
        [inception.get_layer("avg_pool").output, inception.outputs[0]],
        name="inception_v3_pool_and_predictions",
    )
    inputs = keras.Input(image_shape, name="images")
    x = inputs
    if image_shape[-1] == 1:
        x = keras.layers.Concatenate(axis=-1)([x, x, x])
    x = keras.layers.Resizing(INCEPTION_SIZE, INCEPTION_SIZE, interpolation="bilinear")(
        x
    )
    model = keras.Model(inputs, trunk(x), name="inception_v3_features")
    resize = (
        "none"
        if image_shape[:2] == (INCEPTION_SIZE, INCEPTION_SIZE)
        else f"bilinear to {INCEPTION_SIZE}x{INCEPTION_SIZE}"
    )
    name = "inception_v3" if weights is not None else "inception_v3(random weights)"
    return FeatureExtractor(
        model,
        name=name,
        resize=resize,
        image_shape=image_shape,
        cache_id=None if weights is None else f"inception_v3-{INCEPTION_MD5[:12]}",
    )


def auto_features(reference_name: str | None) -> str:
    """The extractor `features="auto"` picks for a reference data set.

    The offline domain classifier of the reference's data set when the
    package ships one (`mnist` and `mnist_subset`: `"mnist_classifier"`;
    `fashion_mnist`: `"fashion_mnist_classifier"`; 28x28 grey images), the
    field's standard `"inception_v3"` otherwise (its weights are downloaded
    once). `ebgan-keras eval --features auto` uses the same rule.

    Args:
        reference_name: str or None. The reference data set's name (as for
            `ek.data.load`); `None` for an unnamed reference.

    Returns:
        str. A name of `NAMED_EXTRACTORS`.

    Example:

    >>> auto_features("fashion_mnist")
    'fashion_mnist_classifier'
    >>> auto_features(None)
    'inception_v3'
    """
    if reference_name is not None and not isinstance(reference_name, str):
        raise ValueError(
            "`reference_name` must be a data set name or None. Received: "
            f"reference_name={reference_name!r}"
        )
    return DOMAIN_FEATURES.get(reference_name, "inception_v3")


def resolve_features(features, reference=None, reference_name: str | None = None):
    """Resolves `features="auto"` against the reference; anything else as is.

    Args:
        features: str, `keras.Model` or `FeatureExtractor`. The `features=`
            argument of the metrics.
        reference: the reference argument of the metrics; a string names the
            data set. Defaults to `None`.
        reference_name: str. The reference's name when `reference` is not a
            string. Defaults to `None`.

    Returns:
        `features`, with `"auto"` replaced by `auto_features(name)`.

    Example:

    >>> resolve_features("auto", reference_name="mnist")
    'mnist_classifier'
    """
    if not (isinstance(features, str) and features == "auto"):
        return features
    return auto_features(reference if isinstance(reference, str) else reference_name)


def get_extractor(
    features, image_shape: tuple, weights: str | None = "default"
) -> FeatureExtractor:
    """Resolves the `features=` argument of the metrics into an extractor.

    Args:
        features: str, `keras.Model` or `FeatureExtractor`. One of
            `"mnist_classifier"`, `"fashion_mnist_classifier"`,
            `"inception_v3"`, a Keras model mapping images to features, or an
            extractor.
        image_shape: tuple. `(H, W, C)` of the images to score.
        weights: str or None. Weights of a named extractor (see
            `inception_v3_extractor` and `domain_classifier_extractor`).
            Defaults to each extractor's standard weights.

    Returns:
        A `FeatureExtractor`.

    Example:
    ```python
    from ebgan_keras.metrics import get_extractor

    extractor = get_extractor("mnist_classifier", (28, 28, 1))
    ```
    """
    if isinstance(features, FeatureExtractor):
        return features
    if isinstance(features, keras.Model):
        return FeatureExtractor(features, name=features.name)
    if features in ("mnist_classifier", "fashion_mnist_classifier"):
        return domain_classifier_extractor(
            features, weights=None if weights == "default" else weights
        )
    if features == "inception_v3":
        return inception_v3_extractor(
            image_shape, weights="imagenet" if weights == "default" else weights
        )
    raise ValueError(
        f"Unknown feature extractor. Expected one of {NAMED_EXTRACTORS}, "
        '"auto" (resolved by the metrics against the reference), a '
        "keras.Model or a FeatureExtractor. Received: "
        f"features={features!r}"
    )
