"""The callback behind the zoo's convergence curve (`ebgan_keras.zoo.convergence`)."""

from __future__ import annotations

import os

import keras
import numpy as np

from ebgan_keras import files
from ebgan_keras.zoo.convergence import CONVERGENCE_FILE
from ebgan_keras.zoo.convergence import NUM_IMAGES
from ebgan_keras.zoo.convergence import every_epochs
from ebgan_keras.zoo.convergence import read_records


class ConvergenceMonitor(keras.callbacks.Callback):
    """Measures the held-out FID of plain samples every few epochs of `fit`.

    Args:
        path: str. The JSON file of records (written atomically after every
            measurement; records of the run before a resume are kept).
        reference: array `(N, H, W, C)` in `[-1, 1]`. The held-out real
            images, at the feature extractor's size.
        features: str, `keras.Model` or `ek.metrics.FeatureExtractor`. The
            feature extractor (as the entry's evaluation).
        every_epochs: int. Measure after every this many epochs (and after
            the last). Defaults to `1`.
        num_samples: int. Generated images per measurement. Defaults to
            `2000`.
        feature_size: (height, width) or None. Resize generated images to it
            before the extractor (as the entry's evaluation). Defaults to
            `None`.
        seed: int. Seed of the fixed latent batch. Defaults to `0`.
        write: bool. Write `path` (only the chief of a distributed run
            writes). Defaults to `True`.
        statistics: dict. `reference_statistics` of `reference`, computed
            already. Defaults to `None` (computed when training starts).
    """

    def __init__(
        self,
        path: str,
        reference: np.ndarray,
        features,
        every_epochs: int = 1,
        num_samples: int = NUM_IMAGES,
        feature_size=None,
        seed: int = 0,
        write: bool = True,
        statistics: dict | None = None,
    ) -> None:
        super().__init__()
        if int(every_epochs) < 1:
            raise ValueError(
                f"`every_epochs` must be >= 1. Received: every_epochs={every_epochs}"
            )
        self.path = path
        self.reference = reference
        self.features = features
        self.every_epochs = int(every_epochs)
        self.num_samples = int(num_samples)
        self.feature_size = feature_size
        self.seed = int(seed)
        self.write = write
        self._stats = statistics
        self._latents = None

    def on_train_begin(self, logs=None):
        from ebgan_keras.metrics import evaluation
        from ebgan_keras.utils import prior_latents

        if self._stats is None:
            self._stats = evaluation.reference_statistics(
                self.reference,
                self.features,
                reference_name="held-out training images",
                reference_split="train",
                cache=False,
            )
        if self._latents is None:
            self._latents = prior_latents(
                self.model.latent_distribution,
                self.num_samples,
                self.model.latent_dim,
                self.seed,
            )
        # `fit` gives its epochs and steps per epoch (the records give the
        # step of each measurement).
        params = self.params or {}
        self._epochs = params.get("epochs")
        self._steps = int(params.get("steps") or 0)

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        last = self._epochs is not None and done == self._epochs
        if done % self.every_epochs and not last:
            return
        fid = self.measure()
        if logs is not None:
            logs["heldout_fid"] = fid
        if self.write:
            records = {r["epoch"]: r for r in read_records(self.path)}
            records[done] = {
                "epoch": done,
                "step": done * self._steps,
                "fid": fid,
            }
            files.write_json(
                self.path,
                {
                    "num_samples": self.num_samples,
                    "reference": f"first {len(self.reference)} training images",
                    "seed": self.seed,
                    "records": [records[k] for k in sorted(records)],
                },
            )

    def measure(self) -> float:
        """The FID of the fixed latent batch's samples, now."""
        from ebgan_keras.metrics import statistics
        from ebgan_keras.zoo.evaluation import to_feature_size

        images = np.clip(np.asarray(self.model.generate(self._latents)), -1.0, 1.0)
        images = to_feature_size(images, self.feature_size)
        extractor = self._stats["extractor"]
        features, _ = extractor.extract(images, name="generated images")
        mu, sigma = statistics.feature_statistics(features)
        return float(
            statistics.frechet_distance(
                self._stats["mu"], self._stats["sigma"], mu, sigma
            )
        )


def monitor(config: dict, run_dir: str, chief: bool = True):
    """The `ConvergenceMonitor` of a zoo recipe, writing into its run folder.

    The held-out images are the first `NUM_IMAGES` of the run's training data
    (its split, size and crop, unshuffled). Where they or the recipe's feature
    extractor cannot be had (e.g. InceptionV3's weights offline), the run
    trains without a curve, with a warning, and its card says so.

    Args:
        config: dict. The run's validated config (overrides applied).
        run_dir: str. The run folder.
        chief: bool. Whether this process writes. Defaults to `True`.

    Returns:
        A `ConvergenceMonitor`, or `None`.
    """
    import warnings

    from ebgan_keras.metrics.evaluation import _collect_images
    from ebgan_keras.metrics.evaluation import reference_statistics
    from ebgan_keras.run.training import load_training_data
    from ebgan_keras.zoo.evaluation import to_feature_size

    evaluation = config["evaluation"] or {}
    feature_size = evaluation.get("feature_size")
    try:
        data = load_training_data(
            config, batch_size=500, shuffle=False, drop_remainder=False
        )
        real = to_feature_size(
            _collect_images(data, NUM_IMAGES, "training"), feature_size
        )
        stats = reference_statistics(
            real,
            evaluation.get("features", "auto"),
            reference_name="held-out training images",
            reference_split="train",
            cache=False,
        )
    except (RuntimeError, ValueError, OSError) as error:
        warnings.warn(f"No convergence curve for this run: {error}", stacklevel=2)
        return None
    return ConvergenceMonitor(
        os.path.join(run_dir, CONVERGENCE_FILE),
        real,
        evaluation.get("features", "auto"),
        every_epochs=every_epochs(config["training"]["epochs"]),
        feature_size=feature_size,
        seed=evaluation.get("seed", 0),
        write=chief,
        statistics=stats,
    )


__all__ = ["ConvergenceMonitor", "monitor"]
