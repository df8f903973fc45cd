"""Small helpers shared by the models, the samplers and the zoo, written once.

Keras is imported inside the functions that need it: the zoo's listing
imports this module and must start without Keras.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: The latent priors the library knows: a standard Gaussian, uniform on [-1, 1].
LATENT_DISTRIBUTIONS = ("normal", "uniform")


def check_positive_int(value, name: str) -> int:
    """`value` as an int >= 1, or a `ValueError` naming the argument.

    The library's one check of a count: Python and numpy ints pass, bools,
    floats and anything below 1 do not.

    Args:
        value: the argument's value.
        name: str. The argument's name, for the message.

    Returns:
        int. The value.

    Example:

    >>> check_positive_int(np.int64(3), "num")
    3
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return int(value)


def prior_latents(
    distribution: str,
    num_samples: int,
    latent_dim: int,
    seed: int | np.random.Generator | None = None,
) -> np.ndarray:
    """Draws latents from a prior with numpy, as float32 `(num_samples, latent_dim)`.

    The draw is `rng.standard_normal((num_samples, latent_dim))` (normal) or
    `rng.uniform(-1, 1, (num_samples, latent_dim))` (uniform) of
    `rng = np.random.default_rng(seed)`, cast to float32: the same seed gives
    the same latents on every backend and machine. (Training draws its
    latents in the graph instead, with `keras.random`; see
    `BaseGAN.sample_latents`.)

    Args:
        distribution: str. `"normal"` or `"uniform"` (on `[-1, 1]`).
        num_samples: int. How many latents.
        latent_dim: int. Size of each latent.
        seed: int, `np.random.Generator` or `None`. An int seeds a fresh
            generator; a generator is used (and advanced) as is; `None` draws
            a random seed. Defaults to `None`.

    Returns:
        float32 numpy `(num_samples, latent_dim)`.

    Example:

    >>> from ebgan_keras.utils import prior_latents
    >>> prior_latents("uniform", 2, 3, seed=0).shape
    (2, 3)
    """
    if distribution not in LATENT_DISTRIBUTIONS:
        raise ValueError(
            f"`distribution` must be one of {LATENT_DISTRIBUTIONS}. "
            f"Received: distribution={distribution!r}"
        )
    rng = np.random.default_rng(seed)
    shape = (int(num_samples), int(latent_dim))
    if distribution == "uniform":
        return rng.uniform(-1.0, 1.0, shape).astype("float32")
    return rng.standard_normal(shape).astype("float32")


def predict_in_batches(fn: Callable, inputs, batch_size: int) -> np.ndarray:
    """Applies `fn` to `inputs` in batches; returns the results as one numpy array.

    Args:
        fn: callable. Maps a backend tensor `(n, ...)` to a tensor `(n, ...)`
            (e.g. a generator in inference mode, or a per-sample energy).
        inputs: numpy array or tensor `(N, ...)`, `N >= 1`.
        batch_size: int. Rows per call of `fn`.

    Returns:
        numpy `(N, ...)`: the outputs of `fn`, concatenated along axis 0.

    Example:

    >>> import numpy as np
    >>> from ebgan_keras.utils import predict_in_batches
    >>> float(predict_in_batches(lambda x: x * 2, np.ones((5, 1)), 2).sum())
    10.0
    """
    from keras import ops

    check_positive_int(batch_size, "batch_size")
    num = int(ops.shape(inputs)[0])
    if num < 1:
        raise ValueError(
            "`inputs` must hold at least one sample. Received: inputs with shape "
            f"{tuple(ops.shape(inputs))}"
        )
    outputs = []
    for start in range(0, num, int(batch_size)):
        chunk = ops.convert_to_tensor(inputs[start : start + batch_size])
        outputs.append(ops.convert_to_numpy(fn(chunk)))
    return np.concatenate(outputs, axis=0)


__all__ = ["LATENT_DISTRIBUTIONS", "predict_in_batches", "prior_latents"]
