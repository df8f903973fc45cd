"""Calibrating an energy into a real-vs-fake logit (for rejection and MH sampling)."""

from __future__ import annotations

import numpy as np

from ebgan_keras.samplers.sampler import _check_positive_int
from ebgan_keras.samplers.sampler import check_images
from ebgan_keras.samplers.sampler import check_model
from ebgan_keras.samplers.sampler import energies
from ebgan_keras.samplers.sampler import generate
from ebgan_keras.utils import prior_latents

# Ridge on the standardized slope: keeps the fit finite when real and
# generated energies separate perfectly.
_L2 = 1e-4
_MAX_NEWTON_STEPS = 100


class EnergyCalibration:
    """A logistic map from energy to real-vs-fake logit: `d(x) = a * (-E(x)) + b`.

    An energy is low on real data but is not a log density ratio.
    Rejection sampling (Azadi et al.) and MH-GAN (Turner et al.) both need a
    calibrated score `d(x) ~ log p_data(x) / p_G(x)`; a logistic regression of
    `-E` on held-out real images (label 1) against as many generated images
    (label 0) gives one: with balanced classes the fitted logit estimates the
    log density ratio, exactly so when that ratio is affine in `E`.

    Args:
        slope: float. `a`, the weight of `-E`.
        intercept: float. `b`.

    Example:

    ```python
    from ebgan_keras.samplers.calibration import EnergyCalibration

    calibration = EnergyCalibration.fit(energy_real, energy_fake)
    logits = calibration.logit(energy_fake)
    ```
    """

    def __init__(self, slope: float, intercept: float):
        # === Config ===
        self.slope = float(slope)
        self.intercept = float(intercept)

    def logit(self, energy) -> np.ndarray:
        """The calibrated logit `d = slope * (-energy) + intercept` (float64)."""
        return self.slope * -np.asarray(energy, dtype="float64") + self.intercept

    def get_config(self) -> dict:
        """The two coefficients."""
        return {"slope": self.slope, "intercept": self.intercept}

    @classmethod
    def from_config(cls, config: dict):
        """Builds a calibration from `get_config()`'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"EnergyCalibration(slope={self.slope!r}, intercept={self.intercept!r})"

    @classmethod
    def fit(cls, energy_real, energy_fake):
        """Fits the logistic regression of `-E`: real = 1, generated = 0.

        Newton's method on the (ridge-regularised, tiny) log-likelihood of
        the standardized feature; two parameters, so it converges in a few
        steps.

        Args:
            energy_real: array `(N_real,)`. Energies of held-out real images.
            energy_fake: array `(N_fake,)`. Energies of generated images.

        Returns:
            An `EnergyCalibration`.
        """
        energy_real = np.asarray(energy_real, dtype="float64").ravel()
        energy_fake = np.asarray(energy_fake, dtype="float64").ravel()
        for name, values in (
            ("energy_real", energy_real),
            ("energy_fake", energy_fake),
        ):
            if values.size < 2 or not np.all(np.isfinite(values)):
                raise ValueError(
                    f"`{name}` must hold at least 2 finite energies. Received: "
                    f"{name} with {values.size} values"
                )
        feature = -np.concatenate([energy_real, energy_fake])
        labels = np.concatenate([np.ones(energy_real.size), np.zeros(energy_fake.size)])
        center, scale = feature.mean(), feature.std()
        scale = scale if scale > 0 else 1.0
        x = np.stack([(feature - center) / scale, np.ones_like(feature)], axis=1)
        params = np.zeros(2)
        ridge = np.diag([_L2 * len(labels), 0.0])
        for _ in range(_MAX_NEWTON_STEPS):
            probability = 1.0 / (1.0 + np.exp(-(x @ params)))
            gradient = x.T @ (probability - labels) + ridge @ params
            hessian = (x * (probability * (1 - probability))[:, None]).T @ x + ridge
            update = np.linalg.solve(hessian + 1e-12 * np.eye(2), gradient)
            params -= update
            if np.max(np.abs(update)) < 1e-10:
                break
        slope = params[0] / scale
        intercept = params[1] - params[0] * center / scale
        return cls(slope, intercept)


def calibrate_model(
    model, real_images, num_generated: int | None, batch_size: int, seed: int
) -> EnergyCalibration:
    """Fits an `EnergyCalibration` of `model` on real and generated images.

    Args:
        model: a model of the library (`ek.models.BaseGAN`).
        real_images: array `(N, H, W, C)`. Held-out real images (not used in
            training, or the fit is optimistic).
        num_generated: int. Generated images in the fit. Defaults (None) to
            `len(real_images)`, balanced classes.
        batch_size: int. Images per forward pass.
        seed: int. Seed of the generated images.

    Returns:
        An `EnergyCalibration`.
    """
    check_model(model)
    real_images = check_images(model, real_images, "real_images")
    if num_generated is None:
        num_generated = len(real_images)
    num_generated = _check_positive_int(num_generated, "num_generated")
    rng = np.random.default_rng(seed)
    fake_images = generate(
        model,
        prior_latents(model.latent_distribution, num_generated, model.latent_dim, rng),
        batch_size,
    )
    return EnergyCalibration.fit(
        energies(model, real_images, batch_size),
        energies(model, fake_images, batch_size),
    )


def as_calibration(calibration) -> EnergyCalibration | None:
    """Accepts an `EnergyCalibration`, its config dict or None."""
    if calibration is None or isinstance(calibration, EnergyCalibration):
        return calibration
    if isinstance(calibration, dict):
        return EnergyCalibration.from_config(calibration)
    raise ValueError(
        "`calibration` must be an EnergyCalibration, its config dict or None. "
        f"Received: calibration={calibration!r}"
    )
