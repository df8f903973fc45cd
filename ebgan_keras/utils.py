"""TEMPORARY: replaced by the helper's utils.py at merge."""

import numpy as np


def prior_latents(distribution, num_samples, latent_dim, seed):
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if distribution == "uniform":
        latents = rng.uniform(-1, 1, (num_samples, latent_dim))
    else:
        latents = rng.standard_normal((num_samples, latent_dim))
    return latents.astype("float32")
