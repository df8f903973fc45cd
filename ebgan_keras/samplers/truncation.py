"""Truncation sampling (the BigGAN truncation trick)."""

from __future__ import annotations

import numpy as np

from ebgan_keras.samplers.sampler import Sampler
from ebgan_keras.samplers.sampler import _check_float
from ebgan_keras.samplers.sampler import _check_positive_int
from ebgan_keras.samplers.sampler import check_model
from ebgan_keras.samplers.sampler import generate
from ebgan_keras.samplers.sampler import register_sampler
from ebgan_keras.utils import prior_latents

# Past this many redraws the threshold is hopelessly small.
_MAX_REDRAWS = 100_000


@register_sampler("truncation")
class Truncation(Sampler):
    """Latents from the prior truncated at a threshold (Brock et al., BigGAN).

    Trades diversity for fidelity: a smaller threshold keeps latents near the
    prior's mode.

    - Normal prior: every entry with `|z_i| > threshold` is redrawn from
      `N(0, 1)` until it falls inside, which samples the truncated normal
      exactly.
    - Uniform prior on `[-1, 1]`: there is no tail to cut, so the box shrinks
      instead: `z ~ U[-threshold, threshold]` (a threshold of 1 or more is
      plain sampling).

    Args:
        threshold: float. The truncation threshold, `> 0`. Defaults to `1.0`.
        seed: int. Seed of the latents. Defaults to `None`.
        batch_size: int. Latents per forward pass. Defaults to `256`.

    Example:

    ```python
    import ebgan_keras.samplers as samplers

    images, z = samplers.Truncation(threshold=0.7, seed=0).sample(model, 64)
    ```

    Reference:
        - [Brock et al., 2019](https://arxiv.org/abs/1809.11096)
    """

    def __init__(
        self, threshold: float = 1.0, seed: int | None = None, batch_size: int = 256
    ):
        super().__init__(seed=seed, batch_size=batch_size)
        # === Config ===
        self.threshold = _check_float(threshold, "threshold")

    def sample(self, model, num_samples: int, seed: int | None = None):
        """Draws `num_samples` truncated latents and their images.

        Args:
            model: a model of the library (`ek.models.BaseGAN`).
            num_samples: int. How many samples.
            seed: int. Seed of this call only. Defaults to `None`.

        Returns:
            `(images, z)` as numpy arrays.
        """
        check_model(model)
        num_samples = _check_positive_int(num_samples, "num_samples")
        rng = np.random.default_rng(self._call_seed(seed))
        z = truncated_latents(model, num_samples, self.threshold, rng)
        return generate(model, z, self.batch_size), z

    def get_config(self) -> dict:
        return {**super().get_config(), "threshold": self.threshold}


def truncated_latents(
    model, num_samples: int, threshold: float, rng: np.random.Generator
) -> np.ndarray:
    """Latents of the model's prior truncated at `threshold` (see `Truncation`).

    Args:
        model: a model of the library (`ek.models.BaseGAN`). Gives
            `latent_dim` and `latent_distribution`.
        num_samples: int. How many latents.
        threshold: float. The truncation threshold, `> 0`.
        rng: `np.random.Generator`. The randomness.

    Returns:
        float32 numpy `(num_samples, latent_dim)`.

    Example:

    ```python
    z = truncated_latents(model, 16, 0.5, np.random.default_rng(0))
    ```
    """
    if model.latent_distribution == "uniform":
        bound = min(float(threshold), 1.0)
        shape = (num_samples, int(model.latent_dim))
        return rng.uniform(-bound, bound, size=shape).astype("float32")
    z = prior_latents(model.latent_distribution, num_samples, model.latent_dim, rng)
    outside = np.abs(z) > threshold
    redraws = 0
    while outside.any():
        redraws += 1
        if redraws > _MAX_REDRAWS:
            raise ValueError(
                "Truncation could not draw latents inside the threshold; use a "
                f"larger threshold. Received: threshold={threshold!r}"
            )
        z[outside] = rng.standard_normal(int(outside.sum())).astype("float32")
        outside = np.abs(z) > threshold
    return z
