"""The sampler contract, the registry of string ids, and shared helpers."""

from __future__ import annotations

import keras
import numpy as np

from ebgan_keras.utils import LATENT_DISTRIBUTIONS
from ebgan_keras.utils import predict_in_batches
from ebgan_keras.utils import prior_latents

_REGISTRY: dict[str, type] = {}


def register_sampler(name: str):
    """Class decorator: registers a sampler under a string id for `get`.

    Args:
        name: str. The id, e.g. `"ddls"`.

    Returns:
        The decorator; it also registers the class for Keras serialization.
    """

    def decorator(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(
                f"A sampler is already registered as {name!r}: "
                f"{_REGISTRY[name].__name__}. Received: {cls.__name__}"
            )
        cls.name = name
        _REGISTRY[name] = cls
        return keras.saving.register_keras_serializable(package="ebgan_keras")(cls)

    return decorator


class Sampler:
    """Base class of the latent samplers: draws images and latents from a model.

    A sampler is a small configurable object with a string id (`name`), a
    seed, `get_config` / `from_config`, and `sample(model, num_samples)`, which
    returns numpy arrays `(images, z)`. It works with any model that has a
    `generator`, `compute_energy(images)`, `latent_dim` and
    `latent_distribution` (`"normal"` or `"uniform"` on `[-1, 1]`), such as
    every model of the library (`ek.models.BaseGAN`).

    Randomness: a sampler built with `seed=s` draws the seed of each call from
    a numpy generator seeded by `s`, so a fresh sampler with the same seed gives
    the same sequence of samples; `sample(..., seed=t)` pins one call.

    Args:
        seed: int. Seed of everything the sampler draws. Defaults to `None`
            (a random seed).
        batch_size: int. Latents per forward pass. Defaults to `256`.

    Example:

    ```python
    import ebgan_keras.samplers as samplers

    sampler = samplers.get("prior")
    images, z = sampler.sample(model, num_samples=16)
    ```
    """

    name: str | None = None

    def __init__(self, seed: int | None = None, batch_size: int = 256):
        # === Config ===
        self.seed = _check_seed(seed)
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        self._rng = np.random.default_rng(self.seed)

    def sample(self, model, num_samples: int, seed: int | None = None):
        """Draws `num_samples` images and their latents.

        Args:
            model: a model of the library (`ek.models.BaseGAN`: EBGAN, BEGAN,
                MAGAN, GAN...) or any model with the same interface.
            num_samples: int. How many samples.
            seed: int. Seed of this call only. Defaults to `None` (the next
                seed of the sampler's own stream).

        Returns:
            `(images, z)`: numpy arrays `(num_samples, H, W, C)` and
            `(num_samples, latent_dim)`.
        """
        raise NotImplementedError

    def get_config(self) -> dict:
        """The constructor arguments, as a JSON-serializable dict."""
        return {"seed": self.seed, "batch_size": self.batch_size}

    @classmethod
    def from_config(cls, config: dict):
        """Builds a sampler from `get_config()`'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"

    # ------------------------------------------------------------------
    # Helpers for subclasses
    # ------------------------------------------------------------------
    def _call_seed(self, seed: int | None) -> int:
        """The seed of one call: the given one, or the next of the stream."""
        if seed is not None:
            return _check_seed(seed)
        return int(self._rng.integers(0, 2**31 - 1))


@register_sampler("prior")
class Prior(Sampler):
    """Plain sampling: latents from the model's prior, no correction.

    The baseline every other sampler is compared with.

    Args:
        seed: int. Seed of the latents. Defaults to `None`.
        batch_size: int. Latents per forward pass. Defaults to `256`.

    Example:

    ```python
    import ebgan_keras.samplers as samplers

    images, z = samplers.Prior(seed=0).sample(model, num_samples=16)
    ```
    """

    def sample(self, model, num_samples: int, seed: int | None = None):
        check_model(model)
        num_samples = _check_positive_int(num_samples, "num_samples")
        rng = np.random.default_rng(self._call_seed(seed))
        z = prior_latents(model.latent_distribution, num_samples, model.latent_dim, rng)
        return generate(model, z, self.batch_size), z


#: Bytes of images one chunk of `sample_in_chunks` holds (10,000 MNIST
#: samples are one chunk).
CHUNK_BYTES = 256 * 2**20


def sample_in_chunks(
    sampler: Sampler, model, num_samples: int, chunk_bytes: int = CHUNK_BYTES
):
    """Yields `(images, z)` in chunks: memory flat in `num_samples`.

    Each chunk is one `sampler.sample(model, n)` call, so it takes the next
    seed of the sampler's stream: up to a chunk's size (`chunk_bytes` of
    float32 images) this is exactly `sampler.sample(model, num_samples)`, and
    beyond it the same seed always gives the same chunks.

    Args:
        sampler: `Sampler`. The sampler (its seed stream advances).
        model: a model of the library.
        num_samples: int. How many samples in all.
        chunk_bytes: int. Bytes of images per chunk. Defaults to 256 MiB.

    Yields:
        `(images, z)` numpy arrays of at most one chunk's samples each.

    Example:
    ```python
    from ebgan_keras import samplers

    for images, z in samplers.sample_in_chunks(samplers.Prior(seed=0), model, 10**7):
        ...  # write or score the chunk, then drop it
    ```
    """
    check_model(model)
    num_samples = _check_positive_int(num_samples, "num_samples")
    shape = tuple(int(d) for d in model.generator.output_shape[1:])
    chunk = max(1, int(chunk_bytes) // (4 * int(np.prod(shape))))
    for start in range(0, num_samples, chunk):
        yield sampler.sample(model, min(chunk, num_samples - start))


def get(identifier):
    """Returns a sampler from a string id, a config dict or a sampler.

    Args:
        identifier: str (`"prior"`, `"truncation"`, `"ddls"`, `"rejection"`,
            `"metropolis_hastings"`), a dict `{"class_name": id, "config":
            {...}}` or the output of `keras.saving.serialize_keras_object`,
            or a `Sampler` (returned as is).

    Returns:
        A `Sampler`; a string id gives one with its default settings.

    Example:

    >>> from ebgan_keras import samplers
    >>> samplers.get("ddls").name
    'ddls'
    """
    if isinstance(identifier, Sampler):
        return identifier
    if isinstance(identifier, str):
        if identifier not in _REGISTRY:
            raise ValueError(
                f"Unknown sampler id. Expected one of {sorted(_REGISTRY)}. "
                f"Received: identifier={identifier!r}"
            )
        return _REGISTRY[identifier]()
    if isinstance(identifier, dict) and "class_name" in identifier:
        class_name = identifier["class_name"]
        config = identifier.get("config", {})
        if class_name in _REGISTRY:
            return _REGISTRY[class_name].from_config(config)
        return keras.saving.deserialize_keras_object(identifier)
    raise ValueError(
        "A sampler identifier must be a string id, a config dict with "
        f"'class_name' and 'config', or a Sampler. Received: identifier="
        f"{identifier!r}"
    )


def serialize(sampler: Sampler) -> dict:
    """Returns `{"class_name": id, "config": ...}`, which `get` accepts.

    Args:
        sampler: `Sampler`. The sampler to describe.

    Returns:
        A JSON-serializable dict.
    """
    if not isinstance(sampler, Sampler):
        raise TypeError(f"Expected a Sampler. Received: sampler={sampler!r}")
    return {"class_name": sampler.name, "config": sampler.get_config()}


# ----------------------------------------------------------------------
# Shared helpers
# ----------------------------------------------------------------------
def check_model(model) -> None:
    """Raises a clear error if `model` lacks what the samplers use."""
    missing = [
        name
        for name in (
            "generator",
            "discriminator",
            "compute_energy",
            "latent_dim",
            "latent_distribution",
        )
        if not hasattr(model, name)
    ]
    if missing:
        raise TypeError(
            "Samplers need a model with `generator`, `discriminator`, "
            "`compute_energy`, `latent_dim` and `latent_distribution` (an "
            f"ek.models.BaseGAN). Missing: {missing}. Received: model={model!r}"
        )
    if model.latent_distribution not in LATENT_DISTRIBUTIONS:
        raise ValueError(
            f"Samplers know the latent priors {LATENT_DISTRIBUTIONS}. Received: "
            f"model.latent_distribution={model.latent_distribution!r}"
        )


def generate(model, z, batch_size: int) -> np.ndarray:
    """Images `G(z)` in inference mode, as numpy, in batches."""
    return predict_in_batches(
        lambda chunk: model.generator(chunk, training=False), z, batch_size
    )


def energies(model, images, batch_size: int) -> np.ndarray:
    """Per-sample energies `E(x)` in inference mode, as float64 numpy."""
    return predict_in_batches(
        lambda chunk: model.compute_energy(chunk, training=False)[0],
        np.asarray(images),
        batch_size,
    ).astype("float64")


def check_images(model, images, name: str) -> np.ndarray:
    """Validates a batch of images for `model`; returns float32 numpy."""
    images = np.asarray(images)
    expected = tuple(int(d) for d in model.generator.output_shape[1:])
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise ValueError(
            f"`{name}` must be images of shape (N, {', '.join(map(str, expected))}) "
            f"for this model. Received: {name} with shape {images.shape}"
        )
    if not np.issubdtype(images.dtype, np.floating):
        raise ValueError(
            f"`{name}` must be float images (e.g. in [-1, 1]). Received: {name} "
            f"with dtype {images.dtype}"
        )
    if not np.all(np.isfinite(images)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return images.astype("float32")


def _check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    if value < 1:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return int(value)


def _check_seed(seed) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(
            f"`seed` must be a non-negative int or None. Received: seed={seed!r}"
        )
    return int(seed)


def _check_float(value, name: str, minimum: float = 0.0, strict: bool = True):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{name}` must be a number. Received: {name}={value!r}"
        ) from None
    if not np.isfinite(number) or number < minimum or (strict and number == minimum):
        relation = ">" if strict else ">="
        raise ValueError(
            f"`{name}` must be a finite number {relation} {minimum:g}. "
            f"Received: {name}={value!r}"
        )
    return number
