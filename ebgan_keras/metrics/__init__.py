"""Sample-quality metrics (FID, KID, IS, precision/recall) and representation probes.

`linear_probe` and `nearest_neighbor_accuracy` score frozen features (an
encoder's codes, a discriminator's) on a labelled train/test split.

Every result carries its protocol (feature extractor, sample counts,
reference split, image size, resize method, seed). Feature extractors:
`"inception_v3"` (the field's standard; needs its ImageNet weights) and the
shipped offline classifiers `"mnist_classifier"` and
`"fashion_mnist_classifier"` for 28x28 grey images. The default,
`features="auto"`, picks the offline classifier of the reference data set
when there is one (`auto_features`), InceptionV3 otherwise.
"""

from ebgan_keras.metrics.callbacks import FIDMonitor
from ebgan_keras.metrics.classifiers import build_domain_classifier
from ebgan_keras.metrics.classifiers import load_domain_classifier
from ebgan_keras.metrics.evaluation import METRICS
from ebgan_keras.metrics.evaluation import default_cache_dir
from ebgan_keras.metrics.evaluation import evaluate
from ebgan_keras.metrics.evaluation import fid
from ebgan_keras.metrics.evaluation import inception_score
from ebgan_keras.metrics.evaluation import kid
from ebgan_keras.metrics.evaluation import precision_recall
from ebgan_keras.metrics.evaluation import reference_statistics
from ebgan_keras.metrics.extractors import DOMAIN_FEATURES
from ebgan_keras.metrics.extractors import FeatureExtractor
from ebgan_keras.metrics.extractors import WeightsIntegrityError
from ebgan_keras.metrics.extractors import auto_features
from ebgan_keras.metrics.extractors import domain_classifier_extractor
from ebgan_keras.metrics.extractors import fetch_weights
from ebgan_keras.metrics.extractors import get_extractor
from ebgan_keras.metrics.extractors import inception_v3_extractor
from ebgan_keras.metrics.extractors import resolve_features
from ebgan_keras.metrics.representation import linear_probe
from ebgan_keras.metrics.representation import nearest_neighbor_accuracy
from ebgan_keras.metrics.results import EvaluationReport
from ebgan_keras.metrics.results import MetricResult
from ebgan_keras.metrics.results import Protocol
from ebgan_keras.metrics.statistics import ebgan_inception_score_from_probabilities
from ebgan_keras.metrics.statistics import feature_statistics
from ebgan_keras.metrics.statistics import frechet_distance
from ebgan_keras.metrics.statistics import inception_score_from_probabilities
from ebgan_keras.metrics.statistics import kid_from_features
from ebgan_keras.metrics.statistics import precision_recall_from_features

__all__ = [
    "DOMAIN_FEATURES",
    "METRICS",
    "EvaluationReport",
    "FIDMonitor",
    "FeatureExtractor",
    "MetricResult",
    "Protocol",
    "WeightsIntegrityError",
    "auto_features",
    "build_domain_classifier",
    "default_cache_dir",
    "domain_classifier_extractor",
    "ebgan_inception_score_from_probabilities",
    "evaluate",
    "feature_statistics",
    "fetch_weights",
    "fid",
    "frechet_distance",
    "get_extractor",
    "inception_score",
    "inception_score_from_probabilities",
    "inception_v3_extractor",
    "kid",
    "kid_from_features",
    "linear_probe",
    "load_domain_classifier",
    "nearest_neighbor_accuracy",
    "precision_recall",
    "precision_recall_from_features",
    "reference_statistics",
    "resolve_features",
]
