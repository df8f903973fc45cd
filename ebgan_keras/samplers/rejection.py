"""Discriminator rejection sampling (Azadi et al., 2019) on a calibrated energy."""

from __future__ import annotations

import numpy as np

from ebgan_keras.samplers.calibration import as_calibration
from ebgan_keras.samplers.calibration import calibrate_model
from ebgan_keras.samplers.sampler import Sampler
from ebgan_keras.samplers.sampler import _check_float
from ebgan_keras.samplers.sampler import _check_positive_int
from ebgan_keras.samplers.sampler import check_model
from ebgan_keras.samplers.sampler import energies
from ebgan_keras.samplers.sampler import generate
from ebgan_keras.samplers.sampler import register_sampler
from ebgan_keras.utils import prior_latents


@register_sampler("rejection")
class RejectionSampler(Sampler):
    """Discriminator rejection sampling (DRS) with an energy discriminator.

    A generated image with calibrated logit `d(x) ~ log p_data / p_G` is
    accepted with probability `sigmoid(F(x))`,

    `F = d - d_max - log(1 - exp(d - d_max - epsilon)) - gamma`,

    where `d_max` is the largest logit seen (from a burn-in, then updated
    online with every batch) and `gamma` shifts the acceptance rate. With
    `gamma = 0` the acceptance probability is exactly `exp(d - d_max)`,
    classical rejection sampling of `p_data` from `p_G` (exact when
    `d_max` bounds `d`); a positive `gamma` rejects more. The energy is
    turned into `d` by a logistic fit (`EnergyCalibration`); build a usable
    sampler with `RejectionSampler.calibrate`.

    After `sample`, `acceptance_rate` holds the fraction of proposals kept.

    Args:
        calibration: `EnergyCalibration` or its config dict. The map from
            energy to logit. Defaults to `None` (set by `calibrate`).
        d_max: float. Largest logit seen. Defaults to `None` (set by
            `calibrate`; `sample` then starts from its first batch).
        gamma: float. The shift of `F`. Defaults to `None`: `calibrate`
            sets it to the `gamma_percentile`-th percentile of `F` over the
            burn-in.
        gamma_percentile: float in `[0, 100]`. Used when `gamma` is None.
            Defaults to `80.0`.
        epsilon: float. Keeps the log finite at `d = d_max`. Defaults to
            `1e-6`.
        max_proposals: int. Gives up (with an error) after this many
            proposals per requested sample. Defaults to `1000`.
        seed: int. Seed of the proposals and the acceptance draws. Defaults
            to `None`.
        batch_size: int. Proposals per forward pass. Defaults to `256`.

    Example:

    ```python
    import ebgan_keras.samplers as samplers

    drs = samplers.RejectionSampler.calibrate(model, held_out_images, seed=0)
    images, z = drs.sample(model, 64)
    ```

    Reference:
        - [Azadi et al., 2019](https://arxiv.org/abs/1810.06758)
    """

    def __init__(
        self,
        calibration=None,
        d_max: float | None = None,
        gamma: float | None = None,
        gamma_percentile: float = 80.0,
        epsilon: float = 1e-6,
        max_proposals: int = 1000,
        seed: int | None = None,
        batch_size: int = 256,
    ):
        super().__init__(seed=seed, batch_size=batch_size)
        # === Config ===
        self.calibration = as_calibration(calibration)
        self.d_max = None if d_max is None else float(d_max)
        self.gamma = None if gamma is None else float(gamma)
        self.gamma_percentile = _check_float(
            gamma_percentile, "gamma_percentile", strict=False
        )
        if self.gamma_percentile > 100:
            raise ValueError(
                "`gamma_percentile` must be in [0, 100]. Received: "
                f"gamma_percentile={gamma_percentile!r}"
            )
        self.epsilon = _check_float(epsilon, "epsilon")
        self.max_proposals = _check_positive_int(max_proposals, "max_proposals")
        self.acceptance_rate = None

    @classmethod
    def calibrate(
        cls,
        model,
        real_images,
        num_generated: int | None = None,
        burn_in: int = 10_000,
        gamma: float | None = None,
        gamma_percentile: float = 80.0,
        seed: int | None = None,
        batch_size: int = 256,
        **kwargs,
    ):
        """Fits the energy calibration, `d_max` and `gamma` of a model.

        Args:
            model: a model of the library (`ek.models.BaseGAN`).
            real_images: array `(N, H, W, C)`. Held-out real images (not
                used in training).
            num_generated: int. Generated images in the logistic fit.
                Defaults to `len(real_images)`.
            burn_in: int. Generated images whose logits give `d_max` (and
                `gamma`). Defaults to `10000`.
            gamma: float. Fixed `gamma`. Defaults to `None` (a percentile).
            gamma_percentile: float. Percentile of `F` over the burn-in used
                as `gamma` when `gamma` is None. Defaults to `80.0`.
            seed: int. Seed of the calibration and of the sampler. Defaults
                to `None`.
            batch_size: int. Images per forward pass. Defaults to `256`.
            **kwargs: other constructor arguments (`epsilon`,
                `max_proposals`).

        Returns:
            A calibrated `RejectionSampler`.
        """
        sampler = cls(
            gamma=gamma,
            gamma_percentile=gamma_percentile,
            seed=seed,
            batch_size=batch_size,
            **kwargs,
        )
        burn_in = _check_positive_int(burn_in, "burn_in")
        sampler.calibration = calibrate_model(
            model, real_images, num_generated, batch_size, sampler._call_seed(None)
        )
        rng = np.random.default_rng(sampler._call_seed(None))
        images = generate(
            model,
            prior_latents(model.latent_distribution, burn_in, model.latent_dim, rng),
            batch_size,
        )
        logits = sampler.calibration.logit(energies(model, images, batch_size))
        sampler.d_max = float(np.max(logits))
        if sampler.gamma is None:
            scores = sampler.scores(logits, gamma=0.0)
            sampler.gamma = float(np.percentile(scores, sampler.gamma_percentile))
        return sampler

    def scores(self, logits, gamma: float | None = None) -> np.ndarray:
        """`F(x)` of calibrated logits against the current `d_max`.

        Args:
            logits: array. Calibrated logits `d(x)`.
            gamma: float. Overrides the sampler's `gamma`. Defaults to `None`
                (the sampler's, or 0 when it has none).

        Returns:
            float64 numpy of the same shape; `sigmoid(F)` is the acceptance
            probability.
        """
        if gamma is None:
            gamma = 0.0 if self.gamma is None else self.gamma
        if self.d_max is None:
            raise RuntimeError(
                "`d_max` is not set: build the sampler with "
                "`RejectionSampler.calibrate` or pass `d_max=`."
            )
        # A logit above d_max (possible before the online update sees it)
        # counts as d_max: accepted with probability ~1 instead of a NaN.
        shifted = np.minimum(np.asarray(logits, dtype="float64") - self.d_max, 0.0)
        return shifted - np.log1p(-np.exp(shifted - self.epsilon)) - gamma

    def acceptance_probability(self, logits, gamma: float | None = None):
        """`sigmoid(F(x))` of calibrated logits, float64 numpy.

        Args:
            logits: array. Calibrated logits `d(x)`.
            gamma: float. Overrides the sampler's `gamma`. Defaults to `None`.

        Returns:
            float64 numpy of the same shape.
        """
        return 1.0 / (1.0 + np.exp(-self.scores(logits, gamma=gamma)))

    def sample(self, model, num_samples: int, seed: int | None = None):
        """Draws proposals from the generator and keeps the accepted ones.

        Args:
            model: a model of the library (`ek.models.BaseGAN`).
            num_samples: int. How many accepted samples to return.
            seed: int. Seed of this call only. Defaults to `None`.

        Returns:
            `(images, z)` as numpy arrays.
        """
        check_model(model)
        num_samples = _check_positive_int(num_samples, "num_samples")
        if self.calibration is None:
            raise RuntimeError(
                "This RejectionSampler has no energy calibration: build it with "
                "`RejectionSampler.calibrate(model, real_images)` or pass "
                "`calibration=`."
            )
        gamma = 0.0 if self.gamma is None else self.gamma
        rng = np.random.default_rng(self._call_seed(seed))
        kept_images, kept_z, kept, proposed = [], [], 0, 0
        while kept < num_samples:
            if proposed >= self.max_proposals * num_samples:
                raise RuntimeError(
                    f"RejectionSampler accepted {kept} of {proposed} proposals; "
                    "lower `gamma` or raise `max_proposals`. Received: "
                    f"gamma={gamma!r}, max_proposals={self.max_proposals}"
                )
            z = prior_latents(
                model.latent_distribution, self.batch_size, model.latent_dim, rng
            )
            images = generate(model, z, self.batch_size)
            logits = self.calibration.logit(energies(model, images, self.batch_size))
            # d_max is updated online, before the batch is judged.
            batch_max = float(np.max(logits))
            self.d_max = batch_max if self.d_max is None else max(self.d_max, batch_max)
            probability = self.acceptance_probability(logits, gamma)
            accept = rng.uniform(size=len(logits)) < probability
            kept_images.append(images[accept])
            kept_z.append(z[accept])
            kept += int(accept.sum())
            proposed += len(logits)
        self.acceptance_rate = kept / proposed
        images = np.concatenate(kept_images, axis=0)[:num_samples]
        z = np.concatenate(kept_z, axis=0)[:num_samples]
        return images, z

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "calibration": None
            if self.calibration is None
            else self.calibration.get_config(),
            "d_max": self.d_max,
            "gamma": self.gamma,
            "gamma_percentile": self.gamma_percentile,
            "epsilon": self.epsilon,
            "max_proposals": self.max_proposals,
        }
