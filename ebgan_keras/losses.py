"""Energies and losses of energy-based GANs, written once in `keras.ops`.

Every function here works on all Keras backends and is differentiable with
respect to all of its inputs (no `stop_gradient` anywhere: the generator's
loss must flow through both the reconstruction and the target `G(z)`).
"""

from __future__ import annotations

import keras
from keras import ops

from ebgan_keras import backend

ENERGY_REDUCTIONS = ("sum", "mean", "l2")

# Keeps the gradient of the Euclidean norm finite at a perfect reconstruction.
_NORM_EPSILON = 1e-12


def _flatten_per_sample(x):
    return ops.reshape(x, (ops.shape(x)[0], -1))


def reconstruction_energy(
    reconstruction, target, reduction: str = "mean", power: float = 2.0
):
    """Per-sample energy of an autoencoder discriminator.

    `E(x) = reduce(|Dec(Enc(x)) - x|^p)` over every pixel and channel of
    each sample. The reduction must be chosen on purpose, since a margin
    only means something together with it (see `max_energy`).

    Args:
        reconstruction: tensor. The discriminator's reconstruction, shape
            `(N, ...)`.
        target: tensor. The images that were reconstructed, same shape.
        reduction: str. `"sum"` over all pixels and channels, `"mean"` per
            pixel, or `"l2"`, the Euclidean norm `||Dec(Enc(x)) - x||` of the
            EBGAN paper (which requires `power=2`). Defaults to `"mean"`.
        power: float. The exponent `p` of the absolute error. Defaults to
            `2.0`.

    Returns:
        A float tensor of shape `(N,)`.

    Example:

    >>> import numpy as np
    >>> x = np.zeros((2, 4, 4, 1), "float32")
    >>> ops.convert_to_numpy(reconstruction_energy(x + 1.0, x, "sum")).tolist()
    [16.0, 16.0]
    """
    _check_reduction(reduction, power)
    difference = _flatten_per_sample(
        ops.cast(reconstruction, "float32") - ops.cast(target, "float32")
    )
    if reduction == "l2":
        return ops.sqrt(ops.sum(ops.square(difference), axis=1) + _NORM_EPSILON)
    if power == 2:
        error = ops.square(difference)
    elif power == 1:
        error = ops.abs(difference)
    else:
        error = ops.power(ops.abs(difference), power)
    if reduction == "sum":
        return ops.sum(error, axis=1)
    return ops.mean(error, axis=1)


def max_energy(
    image_shape: tuple[int, ...],
    reduction: str = "mean",
    power: float = 2.0,
    value_range: float = 2.0,
) -> float:
    """The largest energy possible for images whose values span `value_range`.

    With images and reconstructions in `[-1, 1]` every pixel error is at most
    2, so a per-pixel `"mean"` energy with `p=2` never exceeds 4: a margin of
    10 or 80 with that reduction keeps the hinge active for every sample (a
    bug of several public ports). Use this bound to choose a margin.

    Args:
        image_shape: tuple of int. The shape of one image, e.g. `(28, 28, 1)`.
        reduction: str. See `reconstruction_energy`. Defaults to `"mean"`.
        power: float. See `reconstruction_energy`. Defaults to `2.0`.
        value_range: float. The largest absolute error of one pixel.
            Defaults to `2.0`.

    Returns:
        The bound as a Python float.
    """
    _check_reduction(reduction, power)
    size = 1
    for dim in image_shape:
        size *= int(dim)
    if reduction == "l2":
        return float(value_range * size**0.5)
    per_pixel = float(value_range**power)
    return per_pixel * size if reduction == "sum" else per_pixel


def pulling_away_term(codes):
    """The pulling-away term (PT) of EBGAN-PT.

    `PT(S) = 1/(N(N-1)) * sum_{i != j} (S_i . S_j / (|S_i| |S_j|))^2`, where
    `S_i` is the encoder output for generated sample `i`, flattened. Each
    sample vector is normalised (not the batch axis), the cosine is squared,
    and the diagonal is left out: orthogonal codes give 0 and identical codes
    give 1.

    Args:
        codes: tensor of shape `(N, ...)`, `N >= 2`. The discriminator's codes
            of a generated batch.

    Returns:
        A float32 scalar tensor.

    Example:

    >>> import numpy as np
    >>> float(ops.convert_to_numpy(pulling_away_term(np.eye(3, dtype="float32"))))
    0.0
    """
    codes = _flatten_per_sample(ops.cast(codes, "float32"))
    num_samples = ops.shape(codes)[0]
    norms = ops.sqrt(ops.sum(ops.square(codes), axis=1, keepdims=True) + 1e-12)
    unit = codes / norms
    cosine = ops.matmul(unit, ops.transpose(unit))
    squared = ops.square(cosine)
    n = ops.cast(num_samples, "float32")
    # The diagonal of `squared` is 1 for every non-zero code: remove it exactly.
    off_diagonal = ops.sum(squared) - ops.sum(ops.diagonal(squared))
    # One sample has no pair: the term is 0, not 0/0 (a stray last batch of
    # one image in a stream; `EBGANPT.fit` refuses batches of one up front).
    return off_diagonal / ops.maximum(n * (n - 1.0), 1.0)


def hinge(energy_fake, margin):
    """Per-sample hinge `max(0, margin - E(G(z)))` of the EBGAN critic.

    The hinge is taken per sample and then averaged by the caller; the hinge
    of the batch mean is a different (and wrong) loss.

    Args:
        energy_fake: tensor of shape `(N,)`. Energies of generated samples.
        margin: scalar or scalar tensor. The margin `m`.

    Returns:
        A tensor of shape `(N,)`.
    """
    return ops.relu(ops.cast(margin, "float32") - energy_fake)


def ebgan_discriminator_loss(energy_real, energy_fake, margin):
    """`L_D = mean_i E(x_i) + mean_i max(0, m - E(G(z_i)))` of EBGAN.

    Args:
        energy_real: tensor of shape `(N,)`. Energies of real images.
        energy_fake: tensor of shape `(M,)`. Energies of generated images.
        margin: scalar or scalar tensor. The margin `m`.

    Returns:
        A float32 scalar tensor.
    """
    return ops.mean(energy_real) + ops.mean(hinge(energy_fake, margin))


def gradient_penalty(
    critic, real, fake, seed=None, target: float = 1.0, one_sided: bool = False
):
    """Gradient penalty `mean_i (||grad_x D(x_hat_i)||_2 - target)^2` (WGAN-GP).

    The penalty is taken at random interpolates `x_hat = eps * x + (1 - eps)
    * G(z)` with one `eps ~ U[0, 1]` per sample (Gulrajani et al., 2017). It
    is differentiable with respect to the critic's weights: the gradient of
    the gradient runs through the backend seam (a nested `GradientTape` on
    TensorFlow, nested `jax.grad` on JAX, `create_graph=True` on PyTorch).

    Args:
        critic: callable. Maps images `(N, ...)` to one score per image,
            `(N,)` or `(N, 1)`: a Keras model, or a model's energy function.
        real: tensor `(N, ...)`. Real images.
        fake: tensor `(N, ...)`. Generated images (the caller stops their
            gradient).
        seed: int, `keras.random.SeedGenerator` or a tensor of `eps` of shape
            `(N,)`. Where the interpolation weights come from. Defaults to
            `None` (unseeded).
        target: float. The gradient norm the penalty pulls towards. Defaults
            to `1.0`.
        one_sided: bool. Penalise only norms above `target`,
            `max(0, ||grad|| - target)^2` (a Lipschitz bound rather than a
            unit norm). Defaults to `False`.

    Returns:
        `(penalty, norms)`: the float32 scalar penalty and the per-sample
        gradient norms `(N,)`.

    Example:

    >>> critic = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    >>> penalty, norms = gradient_penalty(critic, ops.ones((3, 4)), ops.zeros((3, 4)))
    >>> tuple(norms.shape)
    (3,)
    """
    real = ops.cast(real, "float32")
    fake = ops.cast(fake, "float32")
    num = ops.shape(real)[0]
    broadcast = (-1,) + (1,) * (len(real.shape) - 1)
    if seed is None or isinstance(seed, (int, keras.random.SeedGenerator)):
        eps = keras.random.uniform((num,), seed=seed)
    else:
        eps = ops.cast(seed, "float32")
    eps = ops.reshape(eps, broadcast)
    mixed = eps * real + (1.0 - eps) * fake

    def scores(images):
        return ops.cast(ops.reshape(critic(images), (-1,)), "float32")

    _, gradient = backend.input_value_and_grad(scores, mixed)
    squared = ops.sum(ops.square(_flatten_per_sample(gradient)), axis=1)
    # The epsilon keeps the norm's gradient finite where the gradient is 0.
    norms = ops.sqrt(squared + _NORM_EPSILON)
    gap = norms - target
    if one_sided:
        gap = ops.relu(gap)
    return ops.mean(ops.square(gap)), norms


def wasserstein_critic_loss(energy_real, energy_fake):
    """`mean E(x) - mean E(G(z))`: WGAN's critic loss, written on energies.

    With the critic's score `D = -E` this is WGAN's `mean D(G(z)) - mean
    D(x)`: the critic lowers the energy of real images and raises that of
    generated ones.

    Args:
        energy_real: tensor `(N,)`. Energies of real images.
        energy_fake: tensor `(M,)`. Energies of generated images.

    Returns:
        A float32 scalar tensor.
    """
    return ops.mean(energy_real) - ops.mean(energy_fake)


def l1_distance(a, b):
    """Per-sample L1 distance `sum |a_i - b_i|` over every pixel and channel.

    The LS-GAN margin's `Delta(x, G(z))` (the official code's
    `PairwiseDistance(1)`).

    Args:
        a: tensor `(N, ...)`.
        b: tensor `(N, ...)`, the same shape.

    Returns:
        A float32 tensor `(N,)`.
    """
    return ops.sum(ops.abs(_flatten_per_sample(ops.cast(a, "float32") - b)), axis=1)


def generalized_cost(values, slope: float = 0.0):
    """GLS-GAN's cost `C(a) = max(a, 0) + slope * min(a, 0)` (a leaky ReLU).

    `slope = 0` is the hinge `[a]_+` of the loss-sensitive GAN, `slope = 1` is
    the identity (WGAN), `slope = -1` is `|a|`. Any slope `<= 1` keeps
    `C(a) >= a` (Qi, 2017, appendix D).

    Args:
        values: tensor. The margin violations `a`.
        slope: float. The slope on negative values. Defaults to `0.0`.

    Returns:
        A tensor of the shape of `values`.
    """
    return ops.relu(values) - slope * ops.relu(-values)


def loss_sensitive_critic_loss(
    loss_real, loss_fake, margins, slope: float = 0.0, gamma: float = 0.0
):
    """The (generalised) loss-sensitive critic loss of Qi (2017).

    `gamma * mean_i L(x_i) + mean_i C(Delta_i + L(x_i) - L(G(z_i)))`, with
    `C` the hinge (`slope = 0`, LS-GAN) or a leaky ReLU (GLS-GAN); a real
    image needs a loss lower than its paired fake's by at least the margin
    `Delta_i = tau * ||x_i - G(z_i)||_1`. With `slope = 1` it equals
    `wasserstein_critic_loss(loss_real, loss_fake) + mean(margins)` (plus the
    `gamma` term).

    Args:
        loss_real: tensor `(N,)`. `L(x_i) >= 0` of real images.
        loss_fake: tensor `(N,)`. `L(G(z_i))`, paired with the real ones.
        margins: tensor `(N,)`. `Delta_i`, scaled by `tau`.
        slope: float. The cost's negative slope. Defaults to `0.0`.
        gamma: float. Weight of the real-loss term. Defaults to `0.0` (the
            official code's value for the unconditional model).

    Returns:
        A float32 scalar tensor.
    """
    violations = margins + loss_real - loss_fake
    loss = ops.mean(generalized_cost(violations, slope))
    if gamma:
        loss = loss + gamma * ops.mean(loss_real)
    return loss


def _check_reduction(reduction: str, power: float) -> None:
    if reduction not in ENERGY_REDUCTIONS:
        raise ValueError(
            f"`energy_reduction` must be one of {ENERGY_REDUCTIONS}. "
            f"Received: energy_reduction={reduction!r}"
        )
    if reduction == "l2" and power != 2:
        raise ValueError(
            "`energy_reduction='l2'` is the Euclidean norm and needs "
            f"`energy_power=2`. Received: energy_power={power!r}"
        )
    if not power > 0:
        raise ValueError(
            f"`energy_power` must be positive. Received: energy_power={power!r}"
        )


__all__ = [
    "ENERGY_REDUCTIONS",
    "ebgan_discriminator_loss",
    "generalized_cost",
    "gradient_penalty",
    "hinge",
    "l1_distance",
    "loss_sensitive_critic_loss",
    "max_energy",
    "pulling_away_term",
    "reconstruction_energy",
    "wasserstein_critic_loss",
]
