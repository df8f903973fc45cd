"""Correctness of ebgan_keras.metrics: FID, KID, IS, precision/recall, extractors."""

from __future__ import annotations

import os
import shutil
import warnings

import keras
import numpy as np
import pytest
import scipy.linalg
from helpers import slow_off_tensorflow

import ebgan_keras as ek
from ebgan_keras import metrics as ek_metrics
from ebgan_keras.metrics import classifiers
from ebgan_keras.metrics import extractors

ASSET_SUBSET = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(ek.__file__))),
    "ebgan_keras",
    "assets",
    "mnist_subset.npz",
)


def pytorch_fid_formula(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """pytorch-fid's calculate_frechet_distance, written out independently."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        assert np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3)
        covmean = covmean.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def random_covariance(rng, dim, rank=None):
    factor = rng.normal(size=(dim, rank or dim))
    return factor @ factor.T / dim + (0 if rank else 0.1 * np.eye(dim))


def feature_net(image_shape=(28, 28, 1), dim=8, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input(image_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(dim, activation="tanh"),
        ],
        name="tiny_features",
    )


def images(rng, count, shape=(28, 28, 1), low=-1.0, high=1.0):
    return rng.uniform(low, high, size=(count, *shape)).astype("float32")


# --------------------------------------------------------------- Frechet distance


def test_frechet_distance_closed_form_for_diagonal_gaussians(rng):
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    var1, var2 = rng.uniform(0.5, 2, 5), rng.uniform(0.5, 2, 5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    value = ek_metrics.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert value == pytest.approx(expected, rel=1e-9)
    # One dimension: (m1 - m2)^2 + (s1 - s2)^2.
    assert ek_metrics.frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == (
        pytest.approx(9.0 + 1.0)
    )


def test_frechet_distance_of_sampled_gaussians_approaches_closed_form(rng):
    sigma = random_covariance(rng, 4)
    mu2 = np.array([1.0, 0.0, -1.0, 0.5])
    a = rng.multivariate_normal(np.zeros(4), sigma, size=20000)
    b = rng.multivariate_normal(mu2, sigma, size=20000)
    value = ek_metrics.frechet_distance(
        *ek_metrics.feature_statistics(a), *ek_metrics.feature_statistics(b)
    )
    # Same covariance: the closed form is |mu1 - mu2|^2 = 2.25.
    assert value == pytest.approx(2.25, abs=0.1)


def test_frechet_distance_matches_pytorch_fid_formula_and_is_symmetric(rng):
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    sigma1, sigma2 = random_covariance(rng, 16), random_covariance(rng, 16)
    value = ek_metrics.frechet_distance(mu1, sigma1, mu2, sigma2)
    reference = pytorch_fid_formula(mu1, sigma1, mu2, sigma2)
    assert value == pytest.approx(reference, rel=1e-6)
    assert ek_metrics.frechet_distance(mu2, sigma2, mu1, sigma1) == pytest.approx(
        value, rel=1e-6
    )


def test_frechet_distance_of_a_set_against_itself_is_zero(rng):
    features = rng.normal(size=(300, 12))
    stats = ek_metrics.feature_statistics(features)
    assert abs(ek_metrics.frechet_distance(*stats, *stats)) < 1e-6


def test_frechet_distance_is_stable_for_singular_covariances(rng):
    # 10 samples of 64 features: rank-9 covariances.
    with pytest.warns(UserWarning, match="biased"):
        mu1, sigma1 = ek_metrics.feature_statistics(rng.normal(size=(10, 64)))
    with pytest.warns(UserWarning, match="biased"):
        mu2, sigma2 = ek_metrics.feature_statistics(rng.normal(size=(10, 64)) + 0.5)
    value = ek_metrics.frechet_distance(mu1, sigma1, mu2, sigma2)
    assert np.isfinite(value)
    # Exact value from the eigenvalues of sqrt(s1) s2 sqrt(s1) (PSD).
    w, v = np.linalg.eigh(sigma1)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    trace = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root @ sigma2 @ root), 0, None)))
    exact = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * trace
    assert value == pytest.approx(exact, rel=1e-3)
    assert abs(ek_metrics.frechet_distance(mu1, sigma1, mu1, sigma1)) < 1e-3


def test_frechet_distance_rejects_bad_shapes_and_nan():
    with pytest.raises(ValueError, match="sigma2"):
        ek_metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(2))
    with pytest.raises(ValueError, match="NaN"):
        ek_metrics.frechet_distance(
            np.zeros(2), np.eye(2), np.array([0, np.nan]), np.eye(2)
        )
    with pytest.raises(ValueError, match="NaN"):
        ek_metrics.feature_statistics(np.array([[0.0, 1.0], [np.nan, 2.0]]))


# ---------------------------------------------------------- KID, IS, precision/recall


def test_kid_equals_a_direct_double_loop(rng):
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(30, 5)) + 0.3
    dim, m = x.shape[1], len(x)

    def kernel(a, b):
        return (np.dot(a, b) / dim + 1.0) ** 3

    total_xx = sum(kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    total_yy = sum(kernel(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    total_xy = sum(kernel(x[i], y[j]) for i in range(m) for j in range(m))
    expected = (total_xx + total_yy) / (m * (m - 1)) - 2 * total_xy / m**2
    mean, std = ek_metrics.kid_from_features(x, y, num_subsets=1, subset_size=m)
    assert mean == pytest.approx(expected, rel=1e-9)
    assert std == 0.0
    # Several subsets: the mean is over subsets of the smaller size, std > 0.
    mean, std = ek_metrics.kid_from_features(x, y, num_subsets=5, subset_size=10)
    assert std > 0


def test_inception_score_of_balanced_one_hot_is_number_of_classes():
    for k in (1, 4, 10):
        probabilities = np.eye(k)[np.arange(10 * k) % k]
        mean, std = ek_metrics.inception_score_from_probabilities(probabilities, 10)
        assert mean == pytest.approx(k)
        assert std == pytest.approx(0.0, abs=1e-9)
    uniform = np.full((20, 5), 0.2)
    assert ek_metrics.inception_score_from_probabilities(uniform, 2)[0] == (
        pytest.approx(1.0)
    )
    with pytest.raises(ValueError, match="probabilities"):
        ek_metrics.inception_score_from_probabilities(np.ones((4, 3)), 1)


def test_ebgan_modified_inception_score_known_answers():
    score = ek_metrics.ebgan_inception_score_from_probabilities
    # Two images, predictions (0.8, 0.2) and (0.2, 0.8): p(y) = (0.5, 0.5) and
    # each KL(p(y) || p(y|x)) = 0.5 log(0.5/0.8) + 0.5 log(0.5/0.2) = log(5/4).
    assert score(np.array([[0.8, 0.2], [0.2, 0.8]])) == pytest.approx(np.log(1.25))
    # The same prediction for every image: p(y) = p(y|x), I' = 0 (no exp: not 1).
    same = np.tile([0.1, 0.6, 0.3], (7, 1))
    assert score(same) == pytest.approx(0.0, abs=1e-12)
    # One-hot predictions spread evenly over K = 10 classes: floored at eps and
    # renormalized, p(y|x) = (a, b, ..., b) with a = 1 / (1 + 9 eps), b = eps a.
    eps = 1e-7
    a = 1.0 / (1.0 + 9 * eps)
    expected = -np.log(10) - 0.1 * np.log(a) - 0.9 * np.log(eps * a)
    one_hot = np.eye(10)[np.arange(100) % 10]
    assert score(one_hot, eps=eps) == pytest.approx(expected, rel=1e-9)
    assert score(one_hot) == pytest.approx(12.2037, abs=1e-4)
    # Collapse onto one class scores 0 however confident; the ordinary IS is 1.
    assert score(np.eye(10)[np.zeros(50, int)]) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="eps"):
        score(one_hot, eps=0.2)
    with pytest.raises(ValueError, match="probabilities"):
        score(np.ones((4, 3)))


def test_evaluate_gives_the_ebgan_score_beside_is_on_the_offline_classifier():
    real = np.load(ASSET_SUBSET)["x_test"].astype("float32") / 127.5 - 1.0
    real = real.reshape(-1, 28, 28, 1)
    report = ek.metrics.evaluate(
        real, metrics=("is", "ebgan_is"), features="mnist_classifier"
    )
    assert set(report) == {"is", "ebgan_is"}
    # Real digits: confident and spread over the ten classes.
    assert report["ebgan_is"]["ebgan_is"] > 8.0 and report["is"]["is"] > 8.0
    assert report["ebgan_is"].protocol.features == "mnist_classifier"
    blank = np.full((200, 28, 28, 1), -1.0, "float32")
    flat = ek.metrics.evaluate(
        blank, metrics=("ebgan_is",), features="mnist_classifier"
    )
    assert flat["ebgan_is"]["ebgan_is"] == pytest.approx(0.0, abs=1e-6)


def test_precision_recall_self_is_one_and_disjoint_is_zero(rng):
    x = rng.normal(size=(60, 4))
    assert ek_metrics.precision_recall_from_features(x, x, k=3) == (1.0, 1.0)
    far = rng.normal(size=(50, 4)) + 100.0
    assert ek_metrics.precision_recall_from_features(x, far, k=3) == (0.0, 0.0)
    # Half of the generated samples on the real manifold.
    half = np.concatenate([x[:25] + 1e-3, far[:25]])
    precision, recall = ek_metrics.precision_recall_from_features(x, half, k=3)
    assert precision == pytest.approx(0.5)
    assert 0.0 < recall < 1.0
    with pytest.raises(ValueError, match="k"):
        ek_metrics.precision_recall_from_features(x, x, k=60)


# ------------------------------------------------------------------------ results


def test_result_without_protocol_cannot_be_printed():
    result = ek_metrics.MetricResult("fid", {"fid": 1.5}, protocol=None)
    assert float(result) == 1.5
    with pytest.raises(ValueError, match="no protocol"):
        str(result)
    with pytest.raises(ValueError, match="no protocol"):
        result.to_dict()
    incomplete = ek_metrics.Protocol(
        "fid", "", 10, 10, "mnist", "test", (28, 28, 1), "none", 0
    )
    with pytest.raises(ValueError, match="features"):
        print(ek_metrics.MetricResult("fid", {"fid": 1.5}, incomplete))


# ----------------------------------------------------------- end to end on images


def test_fid_of_images_carries_protocol_and_uses_the_cache(rng, tmp_path):
    real = images(rng, 64)
    fake = images(rng, 40, low=-1.0, high=0.2)
    net = feature_net()
    extractor = ek_metrics.FeatureExtractor(net, name="tiny", cache_id="tiny-v1")
    kwargs = dict(
        features=extractor,
        reference_name="noise",
        reference_split="train",
        cache_dir=str(tmp_path),
        seed=3,
    )
    result = ek_metrics.fid(fake, reference=real, **kwargs)
    protocol = result.protocol
    assert (protocol.metric, protocol.features) == ("fid", "tiny")
    assert (protocol.num_generated, protocol.num_reference) == (40, 64)
    assert (protocol.reference, protocol.reference_split) == ("noise", "train")
    assert tuple(protocol.image_size) == (28, 28, 1)
    assert protocol.resize == "none" and protocol.seed == 3
    text = str(result)
    for word in (
        "fid=",
        "tiny",
        "40 generated",
        "64 reference",
        "noise/train",
        "seed 3",
    ):
        assert word in text
    # The same features by hand.
    real_features = np.asarray(net.predict(real, verbose=0), dtype=np.float64)
    fake_features = np.asarray(net.predict(fake, verbose=0), dtype=np.float64)
    expected = pytorch_fid_formula(
        real_features.mean(0),
        np.cov(real_features, rowvar=False),
        fake_features.mean(0),
        np.cov(fake_features, rowvar=False),
    )
    assert float(result) == pytest.approx(expected, rel=1e-4)
    # Cached: one file plus its hash; a second call reads it.
    files = sorted(os.listdir(tmp_path))
    assert len(files) == 2 and files[1].endswith(".sha256")
    stats = ek_metrics.reference_statistics(
        real,
        extractor,
        cache_dir=str(tmp_path),
        reference_name="noise",
        reference_split="train",
    )
    assert stats["from_cache"]
    # A damaged cache file is recomputed, not trusted.
    with open(tmp_path / files[0], "r+b") as handle:
        handle.seek(200)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.warns(UserWarning, match="sha256"):
        stats = ek_metrics.reference_statistics(
            real,
            extractor,
            cache_dir=str(tmp_path),
            reference_name="noise",
            reference_split="train",
        )
    assert not stats["from_cache"]
    assert float(ek_metrics.fid(fake, reference=real, **kwargs)) == pytest.approx(
        float(result), rel=1e-6
    )
    # Against itself: ~0.
    assert (
        abs(float(ek_metrics.fid(real, reference=real, features=net, cache=False)))
        < 1e-3
    )


def test_evaluate_a_model_with_all_metrics(rng, tmp_path):
    generator = ek.networks.ebgan_mlp_generator(latent_dim=4, hidden_units=(8,))
    discriminator = ek.networks.ebgan_mlp_discriminator(encoder_units=(8,))
    model = ek.EBGAN(generator, discriminator, seed=0)
    inputs = keras.Input((28, 28, 1))
    features = feature_net(dim=6)(inputs)
    two_outputs = keras.Model(
        inputs, [features, keras.layers.Softmax()(features)], name="tiny2"
    )
    extractor = ek_metrics.FeatureExtractor(two_outputs, name="tiny2")
    report = ek_metrics.evaluate(
        model,
        reference=images(rng, 50),
        num_samples=30,
        features=extractor,
        seed=1,
        kid_subsets=4,
        kid_subset_size=20,
        is_splits=3,
        cache_dir=str(tmp_path),
    )
    assert set(report) == {"fid", "kid", "is", "precision_recall"}
    assert report["kid"].protocol.details == {"subsets": 4, "subset_size": 20}
    assert 1.0 <= report["is"]["is"] <= 6.0
    assert 0.0 <= report["precision_recall"]["precision"] <= 1.0
    assert report["fid"].protocol.num_generated == 30
    assert "precision=" in str(report)
    again = ek_metrics.fid(
        model,
        reference=images(rng, 50),
        num_samples=30,
        features=extractor,
        seed=1,
        cache=False,
    )
    assert np.isfinite(float(again))


def test_bad_inputs_give_clear_errors(rng):
    real = images(rng, 20)
    with pytest.raises(ValueError, match="Unknown feature extractor"):
        ek_metrics.fid(real, reference=real, features="vgg16")
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        ek_metrics.fid(real * 3, reference=real, features=feature_net())
    with pytest.raises(ValueError, match="dtype"):
        ek_metrics.fid(
            (real * 100).astype("uint8"), reference=real, features=feature_net()
        )
    with pytest.raises(ValueError, match="NaN"):
        bad = real.copy()
        bad[0, 0, 0, 0] = np.nan
        ek_metrics.fid(bad, reference=real, features=feature_net())
    with pytest.raises(ValueError, match="reference"):
        ek_metrics.fid(real, features=feature_net())
    with pytest.raises(ValueError, match="probabilities"):
        ek_metrics.inception_score(real, features=feature_net())
    with pytest.raises(ValueError, match="metrics"):
        ek_metrics.evaluate(real, reference=real, metrics=("fid", "lpips"))


def test_auto_features_rule():
    assert ek_metrics.auto_features("mnist") == "mnist_classifier"
    assert ek_metrics.auto_features("mnist_subset") == "mnist_classifier"
    assert ek_metrics.auto_features("fashion_mnist") == "fashion_mnist_classifier"
    for other in ("cifar10", "celeb_a", "custom", None):
        assert ek_metrics.auto_features(other) == "inception_v3"
    resolve = ek_metrics.resolve_features
    # A data set named by `reference` wins over `reference_name`, as in the
    # protocol; anything but "auto" is left alone.
    assert resolve("auto", "fashion_mnist", "mnist") == "fashion_mnist_classifier"
    assert resolve("auto", np.zeros((2, 28, 28, 1)), "mnist") == "mnist_classifier"
    assert resolve("inception_v3", "mnist") == "inception_v3"
    net = feature_net()
    assert resolve(net, "mnist") is net
    with pytest.raises(ValueError, match="Received: reference_name=3"):
        ek_metrics.auto_features(3)


def test_metrics_default_to_the_auto_features(rng, monkeypatch):
    """`fid`, `evaluate`, `reference_statistics` and `FIDMonitor` default to
    "auto": the offline classifier of a named MNIST-like reference."""
    import inspect

    for function in (ek_metrics.evaluate, ek_metrics.reference_statistics):
        assert inspect.signature(function).parameters["features"].default == "auto"
    monitor_defaults = inspect.signature(ek_metrics.FIDMonitor).parameters
    assert monitor_defaults["features"].default == "auto"
    real, fake = images(rng, 30), images(rng, 20, high=0.0)
    kwargs = dict(reference=real, reference_split="test", cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few images for the features: biased
        result = ek_metrics.fid(fake, reference_name="fashion_mnist", **kwargs)
    assert result.protocol.features == "fashion_mnist_classifier"
    monitor = ek_metrics.FIDMonitor(
        reference=real, reference_name="mnist_subset", cache=False
    )
    monitor.on_train_begin()
    assert monitor._stats["extractor"].name == "mnist_classifier"

    # An unnamed reference: InceptionV3, the field's standard.
    def no_inception(*args, **kwargs):
        raise RuntimeError("inception_v3 requested")

    monkeypatch.setattr(extractors, "inception_v3_extractor", no_inception)
    with pytest.raises(RuntimeError, match="inception_v3 requested"):
        ek_metrics.fid(fake, reference=real, cache=False)


# ------------------------------------------------------------ shipped classifiers


def test_shipped_classifiers_load_with_hash_and_accuracy():
    registry = classifiers.classifier_registry()
    targets = {"mnist_classifier": 0.99, "fashion_mnist_classifier": 0.90}
    for name, target in targets.items():
        record = registry[name]
        assert record["test_accuracy"] >= target
        path = os.path.join(classifiers.WEIGHTS_DIR, record["file"])
        assert classifiers.file_sha256(path) == record["sha256"]
        assert os.path.getsize(path) < 2_000_000
    extractor = ek_metrics.domain_classifier_extractor("mnist_classifier")
    features, probabilities = extractor.extract(np.zeros((3, 28, 28, 1), "float32"))
    assert features.shape == (3, 128) and probabilities.shape == (3, 10)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match=r"\(28, 28, 1\)"):
        extractor.extract(np.zeros((2, 32, 32, 3), "float32"))


def test_tampered_classifier_file_is_refused(tmp_path):
    record = classifiers.classifier_registry()["mnist_classifier"]
    copy = tmp_path / record["file"]
    shutil.copy(os.path.join(classifiers.WEIGHTS_DIR, record["file"]), copy)
    with open(copy, "r+b") as handle:
        handle.seek(os.path.getsize(copy) // 2)
        handle.write(b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        ek_metrics.load_domain_classifier("mnist_classifier", weights_path=str(copy))
    with pytest.raises(ValueError, match="Unknown domain classifier"):
        ek_metrics.load_domain_classifier("cifar_classifier")


@pytest.mark.skipif(not os.path.exists(ASSET_SUBSET), reason="no shipped MNIST subset")
def test_mnist_classifier_classifies_shipped_real_images():
    with np.load(ASSET_SUBSET, allow_pickle=False) as data:
        keys = list(data.keys())
        image_key = next(k for k in keys if k in ("x", "images", "image", "x_test"))
        label_key = next(
            (k for k in keys if k in ("y", "labels", "label", "y_test")), None
        )
        subset, labels = data[image_key][:64], None
        if label_key is not None:
            labels = data[label_key][:64]
    if labels is None:
        pytest.skip("the subset has no labels")
    subset = np.asarray(subset)
    if subset.ndim == 3:
        subset = subset[..., None]
    if subset.dtype == np.uint8:
        subset = subset.astype("float32") / 127.5 - 1.0
    elif subset.min() >= 0:
        subset = subset.astype("float32") * 2.0 - 1.0
    model = ek_metrics.load_domain_classifier("mnist_classifier")
    predicted = np.argmax(model.predict(subset.astype("float32"), verbose=0), axis=1)
    assert np.mean(predicted == labels) >= 0.95


# -------------------------------------------------------------------- InceptionV3


@slow_off_tensorflow  # building InceptionV3 takes minutes on JAX on this CPU
def test_inception_v3_plumbing_with_random_weights():
    extractor = ek_metrics.get_extractor("inception_v3", (28, 28, 1), weights=None)
    assert extractor.name == "inception_v3(random weights)"
    assert extractor.resize == "bilinear to 299x299"
    assert extractor.cache_id is None  # random weights are never cached
    assert extractor.has_probabilities
    features, probabilities = extractor.model.outputs
    assert tuple(features.shape) == (None, 2048)
    assert tuple(probabilities.shape) == (None, 1000)
    with pytest.raises(ValueError, match=r"\(28, 28, 1\)"):
        extractor.check_images(np.zeros((2, 32, 32, 3), "float32"))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        ek_metrics.inception_v3_extractor((32, 32, 4), weights=None)


@pytest.mark.slow  # compiling InceptionV3 takes ~30 s on JAX on a CPU
def test_inception_v3_forward_with_random_weights(rng):
    extractor = ek_metrics.get_extractor("inception_v3", (28, 28, 1), weights=None)
    features, probabilities = extractor.extract(images(rng, 2), batch_size=2)
    assert features.shape == (2, 2048) and probabilities.shape == (2, 1000)
    assert np.all(np.isfinite(features))


def test_inception_v3_without_weights_fails_clearly(monkeypatch, tmp_path):
    with pytest.raises(FileNotFoundError, match="weights"):
        ek_metrics.inception_v3_extractor((32, 32, 3), weights=str(tmp_path / "no.h5"))

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(RuntimeError) as info:
        ek_metrics.inception_v3_extractor((32, 32, 3))
    message = str(info.value)
    assert extractors.INCEPTION_FILE in message and "weights=" in message
    assert "md5" in message and "mnist_classifier" in message


# ----------------------------------------------------------------------- callback


def test_fid_monitor_logs_fid_every_n_epochs(rng):
    generator = ek.networks.ebgan_mlp_generator(latent_dim=4, hidden_units=(8,))
    discriminator = ek.networks.ebgan_mlp_discriminator(encoder_units=(8,))
    model = ek.EBGAN(generator, discriminator, seed=0)
    model.compile()
    monitor = ek_metrics.FIDMonitor(
        reference=images(rng, 40),
        every_n_epochs=2,
        num_samples=20,
        features=feature_net(dim=4),
        cache=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        history = model.fit(
            images(rng, 32), epochs=4, batch_size=16, verbose=0, callbacks=[monitor]
        )
    assert [epoch for epoch, _ in monitor.results] == [2, 4]
    assert len(history.history["fid"]) == 2
    assert all(np.isfinite(value) for value in history.history["fid"])
    assert monitor.results[0][1].protocol.details == {"epoch": 2}
    with pytest.raises(ValueError, match="every_n_epochs"):
        ek_metrics.FIDMonitor(reference=images(rng, 4), every_n_epochs=0)


def test_named_reference_is_the_whole_split_in_order_and_cached_once(rng, tmp_path):
    # A reference given by name is its whole split, unshuffled, with no
    # dropped remainder: the same call twice scores the same images, reads
    # one statistics file, and equals the score against the split's array.
    fake = images(rng, 50, low=-1.0, high=0.5)
    net = feature_net()
    extractor = ek_metrics.FeatureExtractor(net, name="tiny", cache_id="tiny-v1")
    kwargs = dict(features=extractor, cache_dir=str(tmp_path), seed=0)
    first = ek_metrics.fid(fake, reference="mnist_subset", **kwargs)
    second = ek_metrics.fid(fake, reference="mnist_subset", **kwargs)
    assert first.protocol.num_reference == 500  # not 448 (7 batches of 64)
    assert float(first) == float(second)
    assert len([n for n in os.listdir(tmp_path) if n.endswith(".npz")]) == 1
    split = ek.data.load_arrays("mnist_subset")["x_test"]
    split = split.astype("float32")[..., None] / 127.5 - 1.0
    direct = ek_metrics.fid(fake, reference=split, features=extractor, cache=False)
    np.testing.assert_allclose(float(first), float(direct), rtol=1e-6)
