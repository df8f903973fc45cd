"""MH-GAN: independence Metropolis-Hastings over generator proposals."""

from __future__ import annotations

import numpy as np

from ebgan_keras.samplers.calibration import as_calibration
from ebgan_keras.samplers.calibration import calibrate_model
from ebgan_keras.samplers.sampler import Sampler
from ebgan_keras.samplers.sampler import _check_positive_int
from ebgan_keras.samplers.sampler import check_model
from ebgan_keras.samplers.sampler import energies
from ebgan_keras.samplers.sampler import generate
from ebgan_keras.samplers.sampler import register_sampler
from ebgan_keras.utils import prior_latents


def acceptance_probability(d_current, d_proposal) -> np.ndarray:
    """MH-GAN acceptance `min(1, (1/D(x_k) - 1) / (1/D(x') - 1))`.

    `x_k` is the chain's current sample, `x'` the proposal and
    `D = sigmoid(d)` the calibrated probability of being real, so
    `1/D - 1 = exp(-d)` and the ratio is `exp(d' - d_k)`; computed in the
    logit form, which never divides by a probability that rounds to 0 or 1.

    Args:
        d_current: array. Calibrated logits of the current samples.
        d_proposal: array. Calibrated logits of the proposals.

    Returns:
        float64 numpy, the acceptance probabilities in `[0, 1]`.

    Example:

    >>> float(acceptance_probability(0.0, 1.0))
    1.0
    """
    log_ratio = np.asarray(d_proposal, "float64") - np.asarray(d_current, "float64")
    return np.exp(np.minimum(log_ratio, 0.0))


@register_sampler("metropolis_hastings")
class MetropolisHastings(Sampler):
    """MH-GAN (Turner et al., 2019): independence MH with the generator as proposal.

    Each output sample is the last state of a chain of `chain_length`
    generator proposals; a proposal `x'` replaces the current `x_k` with
    probability `min(1, (1/D(x_k) - 1) / (1/D(x') - 1))`, where
    `D(x) = sigmoid(d(x))` and `d` is the energy calibrated into a
    real-vs-fake logit by a logistic fit (`EnergyCalibration`). If `d` is the
    log density ratio, the chain's stationary distribution is the data
    distribution. Chains start from their first proposal (the paper starts
    from a real image to skip burn-in; a long enough chain forgets its start).

    After `sample`, `acceptance_rate` holds the fraction of accepted moves.

    Args:
        calibration: `EnergyCalibration` or its config dict. Defaults to
            `None` (set by `calibrate`).
        chain_length: int. Proposals per output sample, `K`. Defaults to
            `640`.
        seed: int. Seed of the proposals and acceptance draws. Defaults to
            `None`.
        batch_size: int. Chains run together. Defaults to `256`.

    Example:

    ```python
    import ebgan_keras.samplers as samplers

    mh = samplers.MetropolisHastings.calibrate(model, held_out, chain_length=640)
    images, z = mh.sample(model, 64)
    ```

    Reference:
        - [Turner et al., 2019](https://arxiv.org/abs/1811.11357)
    """

    def __init__(
        self,
        calibration=None,
        chain_length: int = 640,
        seed: int | None = None,
        batch_size: int = 256,
    ):
        super().__init__(seed=seed, batch_size=batch_size)
        # === Config ===
        self.calibration = as_calibration(calibration)
        self.chain_length = _check_positive_int(chain_length, "chain_length")
        self.acceptance_rate = None

    @classmethod
    def calibrate(
        cls,
        model,
        real_images,
        chain_length: int = 640,
        num_generated: int | None = None,
        seed: int | None = None,
        batch_size: int = 256,
    ):
        """Fits the energy calibration of a model; returns a ready sampler.

        Args:
            model: a model of the library (`ek.models.BaseGAN`).
            real_images: array `(N, H, W, C)`. Held-out real images.
            chain_length: int. Proposals per output sample. Defaults to
                `640`.
            num_generated: int. Generated images in the logistic fit.
                Defaults to `len(real_images)`.
            seed: int. Seed of the calibration and of the sampler. Defaults
                to `None`.
            batch_size: int. Images per forward pass. Defaults to `256`.

        Returns:
            A calibrated `MetropolisHastings`.
        """
        sampler = cls(chain_length=chain_length, seed=seed, batch_size=batch_size)
        sampler.calibration = calibrate_model(
            model, real_images, num_generated, batch_size, sampler._call_seed(None)
        )
        return sampler

    def sample(self, model, num_samples: int, seed: int | None = None):
        """Runs one chain per sample; returns `(images, z)` of the last states.

        Args:
            model: a model of the library (`ek.models.BaseGAN`).
            num_samples: int. How many samples (chains).
            seed: int. Seed of this call only. Defaults to `None`.

        Returns:
            `(images, z)` as numpy arrays.
        """
        check_model(model)
        num_samples = _check_positive_int(num_samples, "num_samples")
        if self.calibration is None:
            raise RuntimeError(
                "This MetropolisHastings sampler has no energy calibration: "
                "build it with `MetropolisHastings.calibrate(model, "
                "real_images)` or pass `calibration=`."
            )
        rng = np.random.default_rng(self._call_seed(seed))
        outputs, accepted = [], 0
        for start in range(0, num_samples, self.batch_size):
            chains = min(self.batch_size, num_samples - start)
            z = prior_latents(model.latent_distribution, chains, model.latent_dim, rng)
            logits = self._logits(model, z)
            for _ in range(self.chain_length - 1):
                z_proposal = prior_latents(
                    model.latent_distribution, chains, model.latent_dim, rng
                )
                logits_proposal = self._logits(model, z_proposal)
                probability = acceptance_probability(logits, logits_proposal)
                accept = rng.uniform(size=chains) < probability
                z = np.where(accept[:, None], z_proposal, z)
                logits = np.where(accept, logits_proposal, logits)
                accepted += int(accept.sum())
            outputs.append(z)
        moves = num_samples * max(self.chain_length - 1, 1)
        self.acceptance_rate = accepted / moves
        z = np.concatenate(outputs, axis=0)
        return generate(model, z, self.batch_size), z

    def _logits(self, model, z: np.ndarray) -> np.ndarray:
        images = generate(model, z, self.batch_size)
        return self.calibration.logit(energies(model, images, self.batch_size))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "calibration": None
            if self.calibration is None
            else self.calibration.get_config(),
            "chain_length": self.chain_length,
        }
