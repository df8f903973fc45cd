"""Latent samplers: better samples from a trained model using its energy.

- `Prior` (`"prior"`): plain sampling from the latent prior.
- `Truncation` (`"truncation"`): the BigGAN truncation trick.
- `DDLS` (`"ddls"`): Langevin dynamics on `U(z) = -log p0(z) + E(G(z)) / T`,
  compiled per backend, with an optional Metropolis correction (MALA);
  `DDLS.calibrate` takes `T` from the energy's calibration.
- `RejectionSampler` (`"rejection"`): discriminator rejection sampling on
  the energy calibrated into a real-vs-fake logit.
- `MetropolisHastings` (`"metropolis_hastings"`): MH-GAN.

Every sampler has a string id (`get("ddls")`), a seed, `get_config` /
`from_config`, and `sample(model, num_samples) -> (images, z)` as numpy.
"""

from ebgan_keras.samplers.calibration import EnergyCalibration
from ebgan_keras.samplers.ddls import DDLS
from ebgan_keras.samplers.metropolis_hastings import MetropolisHastings
from ebgan_keras.samplers.rejection import RejectionSampler
from ebgan_keras.samplers.sampler import Prior
from ebgan_keras.samplers.sampler import Sampler
from ebgan_keras.samplers.sampler import get
from ebgan_keras.samplers.sampler import sample_in_chunks
from ebgan_keras.samplers.sampler import serialize
from ebgan_keras.samplers.truncation import Truncation

__all__ = [
    "DDLS",
    "EnergyCalibration",
    "MetropolisHastings",
    "Prior",
    "RejectionSampler",
    "Sampler",
    "Truncation",
    "get",
    "sample_in_chunks",
    "serialize",
]
