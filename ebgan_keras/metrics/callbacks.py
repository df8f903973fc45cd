"""A training callback that logs FID every few epochs."""

from __future__ import annotations

import keras
import numpy as np

from ebgan_keras.metrics import evaluation
from ebgan_keras.metrics import statistics
from ebgan_keras.metrics.results import MetricResult
from ebgan_keras.metrics.results import Protocol


class FIDMonitor(keras.callbacks.Callback):
    """Computes FID of the model's samples every `every_n_epochs` epochs.

    Writes `fid` into the epoch logs (so `History`, `ModelCheckpoint(monitor=
    "fid")` and `EarlyStopping` see it) and keeps every result, with its
    protocol, in `self.results`. The reference statistics are computed (or
    read from the disk cache) once, at the start of training. The same `seed`
    is used at every evaluation, so the curve follows the model, not the noise.

    Args:
        reference: real images `(N, H, W, C)` in `[-1, 1]`, a dataset, or a
            data set name (see `ebgan_keras.metrics.evaluate`).
        every_n_epochs: int. Evaluate after every this many epochs (and not
            on the others). Defaults to `5`.
        num_samples: int. Generated images per evaluation. Defaults to `2000`.
        features: str, `keras.Model` or `FeatureExtractor`. Defaults to
            `"auto"`: the offline domain classifier of the reference data set
            (named by `reference` or `reference_name`) when there is one,
            else `"inception_v3"` (see `ek.metrics.auto_features`).
        seed: int. Seed of the generated latents. Defaults to `0`.
        **kwargs: other arguments of `reference_statistics`
            (`num_reference`, `reference_name`, `reference_split`,
            `batch_size`, `cache`, `cache_dir`, `weights`).

    Example:
    ```python
    from ebgan_keras.metrics.callbacks import FIDMonitor

    monitor = FIDMonitor(reference="mnist", every_n_epochs=5)  # mnist_classifier
    model.fit(dataset, epochs=20, callbacks=[monitor])
    ```
    """

    def __init__(
        self,
        reference,
        every_n_epochs: int = 5,
        num_samples: int = 2000,
        features="auto",
        seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__()
        if int(every_n_epochs) < 1:
            raise ValueError(
                "`every_n_epochs` must be >= 1. "
                f"Received: every_n_epochs={every_n_epochs}"
            )
        if int(num_samples) < 2:
            raise ValueError(
                f"`num_samples` must be >= 2. Received: num_samples={num_samples}"
            )
        self.reference = reference
        self.every_n_epochs = int(every_n_epochs)
        self.num_samples = int(num_samples)
        self.features = features
        self.seed = seed
        self.reference_kwargs = kwargs
        self.results: list[tuple[int, MetricResult]] = []
        self._stats = None

    def on_train_begin(self, logs=None):
        if self._stats is None:
            self._stats = evaluation.reference_statistics(
                self.reference, self.features, **self.reference_kwargs
            )

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        if self._stats is None:
            self.on_train_begin()
        extractor = self._stats["extractor"]
        images = np.asarray(self.model.generate(self.num_samples, seed=self.seed))
        features, _ = extractor.extract(images, name="generated images")
        mu, sigma = statistics.feature_statistics(features)
        value = statistics.frechet_distance(
            self._stats["mu"], self._stats["sigma"], mu, sigma
        )
        protocol = Protocol(
            metric="fid",
            features=extractor.name,
            num_generated=len(images),
            num_reference=self._stats["num_reference"],
            reference=self._stats["reference"],
            reference_split=self._stats["reference_split"],
            image_size=tuple(int(d) for d in images.shape[1:]),
            resize=extractor.resize,
            seed=self.seed,
            details={"epoch": epoch + 1},
        )
        self.results.append((epoch + 1, MetricResult("fid", {"fid": value}, protocol)))
        if logs is not None:
            logs["fid"] = value
