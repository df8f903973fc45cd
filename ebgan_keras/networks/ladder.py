"""The ladder network of Rasmus et al. (2015) for permutation-invariant MNIST."""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

#: Initial values of the ten per-unit parameters `a1..a10` of the "vanilla"
#: combinator (the official code's `gauss` decoder): `mu = a1 sigmoid(a2 u +
#: a3) + a4 u + a5`, `v = a6 sigmoid(a7 u + a8) + a9 u + a10`.
COMBINATOR_INIT = (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)
#: Per-layer denoising cost weights of the official "bottom-only" runs
#: (`--denoising-cost-x 5000,0,...` at 100 labels; 2000 at 1000 labels).
BOTTOM_COST_100_LABELS = (5000.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
BOTTOM_COST_1000_LABELS = (2000.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
#: The full ladder's weights at 100 labels (Rasmus et al., Table 1 runs).
FULL_COST_100_LABELS = (1000.0, 10.0, 0.1, 0.1, 0.1, 0.1, 0.1)


@keras.saving.register_keras_serializable(package="ebgan_keras")
class LadderNetwork(keras.Model):
    """Ladder network: a corrupted MLP encoder, a lateral denoising decoder.

    Rasmus et al. (2015), as in the official code (`CuriousAI/ladder`). The
    encoder `784-1000-500-250-250-250-10` runs twice on every batch: clean
    and corrupted (Gaussian noise of std `noise_std` added to the input and
    to every normalized pre-activation). Each layer's pre-activation is
    batch-normalized without a learned scale (ReLU layers; the softmax layer
    has one, `gamma`), then shifted by a learned `beta`. The decoder runs top
    down: `u` (the corrupted softmax output at the top, `V z_hat` below,
    batch-normalized) and the lateral corrupted `z_tilde` are combined per
    unit by the "vanilla" combinator `z_hat = (z_tilde - mu(u)) v(u) + mu(u)`
    (ten parameters per unit, `COMBINATOR_INIT`). The cost of layer `l` is
    the per-unit mean of `((z_hat - m_clean) / s_clean - z_clean)^2` (on the
    pixels at the bottom), weighted by `denoising_costs[l]`; the weights
    `(w, 0, ..., 0)` give the "bottom-layer-cost" ladder (Pezeshki et al.)
    that the EBGAN paper used.

    Batch statistics are taken separately over the labelled and the
    unlabelled rows of a batch (as in the official code); `labelled` marks
    them. At inference the clean encoder uses moving averages of the
    unlabelled rows' statistics.

    Args:
        input_shape: tuple of int. Shape of one image; it is flattened (the
            network sees no pixel layout). Defaults to `(28, 28, 1)`.
        layer_sizes: tuple of int. Widths of the encoder's layers, the last
            the number of classes. Defaults to `(1000, 500, 250, 250, 250, 10)`.
        noise_std: float. Std of the Gaussian corruption, on the input and on
            every layer. Defaults to `0.3` (the paper's).
        denoising_costs: tuple of float. Weight of each layer's denoising
            cost, input first (`len(layer_sizes) + 1` values). Defaults to
            `BOTTOM_COST_100_LABELS`.
        momentum: float. Momentum of the moving batch statistics. Defaults
            to `0.9` (the official code's running average settles at 0.9).
        epsilon: float. Added to the variances. Defaults to `1e-10` (the
            official code's).
        seed: int. Seeds the corruption noise. Defaults to `None`.

    Example:

    >>> ladder = LadderNetwork(
    ...     layer_sizes=(8, 10), denoising_costs=(5000.0, 0.0, 0.0), seed=0
    ... )
    >>> probabilities = ladder(np.zeros((2, 28, 28, 1), "float32"))
    >>> tuple(probabilities.shape)
    (2, 10)

    Reference:
        - [Rasmus et al., 2015](https://arxiv.org/abs/1507.02672)
        - [Pezeshki et al., 2016](https://arxiv.org/abs/1511.06430)
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (28, 28, 1),
        layer_sizes: Sequence[int] = (1000, 500, 250, 250, 250, 10),
        noise_std: float = 0.3,
        denoising_costs: Sequence[float] = BOTTOM_COST_100_LABELS,
        momentum: float = 0.9,
        epsilon: float = 1e-10,
        seed: int | None = None,
        **kwargs,
    ):
        kwargs.setdefault("name", "ladder_network")
        super().__init__(**kwargs)
        # === Config ===
        self.image_shape = tuple(int(d) for d in input_shape)
        self.layer_sizes = tuple(int(d) for d in layer_sizes)
        self.noise_std = float(noise_std)
        self.denoising_costs = tuple(float(w) for w in denoising_costs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.seed = seed

        if len(self.layer_sizes) < 1 or min(self.layer_sizes) < 1:
            raise ValueError(
                "`layer_sizes` must be positive widths, the last the number of "
                f"classes. Received: layer_sizes={layer_sizes!r}"
            )
        if len(self.denoising_costs) != len(self.layer_sizes) + 1:
            raise ValueError(
                "`denoising_costs` needs one weight per layer, the input first "
                f"({len(self.layer_sizes) + 1} values). Received: "
                f"denoising_costs={denoising_costs!r}"
            )
        if not self.noise_std >= 0:
            raise ValueError(
                f"`noise_std` must be >= 0. Received: noise_std={noise_std!r}"
            )
        self.sizes = (math.prod(self.image_shape), *self.layer_sizes)
        self.seed_generator = keras.random.SeedGenerator(seed, name="noise_seed")
        init_seed = None if seed is None else int(seed) + 1
        self.kernels, self.betas, self.decoder_kernels = [], [], []
        self.combinators, self.moving_means, self.moving_variances = [], [], []
        for i in range(1, len(self.sizes)):
            fan_in, units = self.sizes[i - 1], self.sizes[i]
            self.kernels.append(
                self.add_weight(
                    shape=(fan_in, units),
                    initializer=keras.initializers.RandomNormal(
                        stddev=1.0 / math.sqrt(fan_in), seed=_offset(init_seed, i)
                    ),
                    name=f"kernel_{i}",
                )
            )
            self.betas.append(
                self.add_weight(shape=(units,), initializer="zeros", name=f"beta_{i}")
            )
            self.moving_means.append(
                self.add_weight(
                    shape=(units,),
                    initializer="zeros",
                    trainable=False,
                    name=f"moving_mean_{i}",
                )
            )
            self.moving_variances.append(
                self.add_weight(
                    shape=(units,),
                    initializer="ones",
                    trainable=False,
                    name=f"moving_variance_{i}",
                )
            )
            # The decoder's map from layer i down to layer i - 1.
            self.decoder_kernels.append(
                self.add_weight(
                    shape=(units, fan_in),
                    initializer=keras.initializers.RandomNormal(
                        stddev=1.0 / math.sqrt(units), seed=_offset(init_seed, 100 + i)
                    ),
                    name=f"decoder_kernel_{i}",
                )
            )
        self.gamma = self.add_weight(
            shape=(self.sizes[-1],), initializer="ones", name="gamma"
        )
        for i, units in enumerate(self.sizes):
            init = np.tile(np.asarray(COMBINATOR_INIT, "float32")[:, None], (1, units))
            self.combinators.append(
                self.add_weight(
                    shape=(10, units),
                    initializer=keras.initializers.Constant(init),
                    name=f"combinator_{i}",
                )
            )
        self.built = True

    # ------------------------------------------------------------------
    def call(self, inputs, training=False):
        """Class probabilities of the clean encoder `(N, classes)`."""
        x = self._flatten(inputs)
        labelled = ops.zeros((ops.shape(x)[0], 1), x.dtype)
        clean = self._encode(x, labelled, 0.0, training, update_statistics=False)
        return clean["probabilities"]

    def noise_like(self, x):
        """Standard Gaussian noise of the shape of `x` (tests may override it)."""
        return keras.random.normal(ops.shape(x), seed=self.seed_generator)

    def costs(self, inputs, labelled=None, training=True, update_statistics=None):
        """Runs both encoders and the decoder on a batch.

        Args:
            inputs: tensor `(N, *input_shape)`.
            labelled: float tensor `(N,)`, 1 for labelled rows, 0 for
                unlabelled ones (their batch statistics are separate).
                Defaults to all unlabelled.
            training: bool. Batch statistics (else the moving ones in the
                clean encoder). Defaults to `True`.
            update_statistics: bool. Move the moving statistics towards the
                clean unlabelled rows'. Defaults to `training`.

        Returns:
            A dict: `"energy"` `(N,)` the weighted sum of the layer costs,
            `"layer_costs"` a list of `(N,)` per layer (input first),
            `"log_probabilities"` `(N, classes)` of the corrupted encoder,
            `"probabilities"` `(N, classes)` of the clean encoder.
        """
        x = self._flatten(inputs)
        n = ops.shape(x)[0]
        if labelled is None:
            labelled = ops.zeros((n, 1), x.dtype)
        else:
            labelled = ops.reshape(ops.cast(labelled, x.dtype), (n, 1))
        if update_statistics is None:
            update_statistics = training
        clean = self._encode(x, labelled, 0.0, training, update_statistics)
        corrupted = self._encode(x, labelled, self.noise_std, True, False)
        top = len(self.sizes) - 1
        layer_costs = [None] * len(self.sizes)
        estimate = None
        for i in range(top, -1, -1):
            if i == top:
                u = corrupted["probabilities"]
            else:
                u = ops.matmul(estimate, self.decoder_kernels[i])
            mean, variance = _group_moments(u, labelled)
            u = (u - mean) / ops.sqrt(variance + self.epsilon)
            estimate = _combine(corrupted["z"][i], u, self.combinators[i])
            if i == 0:
                normalized = estimate
            else:
                normalized = (estimate - clean["mean"][i]) / ops.sqrt(
                    clean["variance"][i] + self.epsilon
                )
            layer_costs[i] = ops.mean(ops.square(normalized - clean["z"][i]), axis=1)
        energy = ops.zeros((n,), x.dtype)
        for weight, cost in zip(self.denoising_costs, layer_costs):
            if weight:
                energy = energy + weight * cost
        return {
            "energy": energy,
            "layer_costs": layer_costs,
            "log_probabilities": corrupted["log_probabilities"],
            "probabilities": clean["probabilities"],
        }

    # ------------------------------------------------------------------
    def _flatten(self, inputs):
        x = ops.convert_to_tensor(inputs)
        return ops.reshape(ops.cast(x, "float32"), (ops.shape(x)[0], self.sizes[0]))

    def _encode(self, x, labelled, noise_std, training, update_statistics):
        """One pass of the encoder; `z` holds the (noisy) normalized layers."""
        h = x + noise_std * self.noise_like(x) if noise_std else x
        zs, means, variances = [h], [None], [None]
        top = len(self.kernels) - 1
        for i, kernel in enumerate(self.kernels):
            pre = ops.matmul(h, kernel)
            if training:
                mean, variance = _group_moments(pre, labelled)
                if update_statistics:
                    self._move_statistics(i, pre, labelled)
            else:
                mean, variance = self.moving_means[i], self.moving_variances[i]
            z = (pre - mean) / ops.sqrt(variance + self.epsilon)
            if noise_std:
                z = z + noise_std * self.noise_like(z)
            zs.append(z)
            means.append(mean)
            variances.append(variance)
            if i < top:
                h = ops.relu(z + self.betas[i])
            else:
                logits = self.gamma * (z + self.betas[i])
        return {
            "z": zs,
            "mean": means,
            "variance": variances,
            "log_probabilities": ops.log_softmax(logits, axis=-1),
            "probabilities": ops.softmax(logits, axis=-1),
        }

    def _move_statistics(self, i, pre, labelled):
        unlabelled = 1.0 - labelled
        count = ops.maximum(ops.sum(unlabelled), 1.0)
        mean = ops.sum(unlabelled * pre, axis=0) / count
        variance = ops.sum(unlabelled * ops.square(pre - mean), axis=0) / count
        m = self.momentum
        self.moving_means[i].assign(m * self.moving_means[i] + (1 - m) * mean)
        self.moving_variances[i].assign(
            m * self.moving_variances[i] + (1 - m) * variance
        )

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "input_shape": self.image_shape,
                "layer_sizes": self.layer_sizes,
                "noise_std": self.noise_std,
                "denoising_costs": self.denoising_costs,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "seed": self.seed,
            }
        )
        return config


def _offset(seed, i):
    return None if seed is None else seed * 1000 + i


def _group_moments(z, labelled):
    """Per-row mean and variance of `z` over the row's group (labelled or not)."""
    rows = []
    for weight in (labelled, 1.0 - labelled):
        count = ops.maximum(ops.sum(weight), 1.0)
        mean = ops.sum(weight * z, axis=0) / count
        variance = ops.sum(weight * ops.square(z - mean), axis=0) / count
        rows.append((mean, variance))
    (mean_l, var_l), (mean_u, var_u) = rows
    mean = labelled * mean_l + (1.0 - labelled) * mean_u
    variance = labelled * var_l + (1.0 - labelled) * var_u
    return mean, variance


def _combine(z_tilde, u, a):
    """The vanilla combinator `(z_tilde - mu(u)) v(u) + mu(u)`, per unit."""
    mu = a[0] * ops.sigmoid(a[1] * u + a[2]) + a[3] * u + a[4]
    v = a[5] * ops.sigmoid(a[6] * u + a[7]) + a[8] * u + a[9]
    return (z_tilde - mu) * v + mu


def ladder_network(
    num_labels: int = 100,
    input_shape: Sequence[int] = (28, 28, 1),
    layer_sizes: Sequence[int] = (1000, 500, 250, 250, 250, 10),
    noise_std: float = 0.3,
    seed: int | None = None,
) -> LadderNetwork:
    """The bottom-layer-cost ladder of the EBGAN paper's PI-MNIST table.

    Args:
        num_labels: int. Number of labels; picks the official bottom cost
            weight (5000 up to 100 labels, else 2000). Defaults to `100`.
        input_shape: tuple of int. Image shape. Defaults to `(28, 28, 1)`.
        layer_sizes: tuple of int. Encoder widths. Defaults to
            `(1000, 500, 250, 250, 250, 10)`.
        noise_std: float. Corruption std. Defaults to `0.3`.
        seed: int. Seeds the weights and the noise. Defaults to `None`.

    Returns:
        A `LadderNetwork`.

    Example:

    >>> ladder_network(100, layer_sizes=(8, 10), seed=0).denoising_costs
    (5000.0, 0.0, 0.0)
    """
    weight = 5000.0 if num_labels <= 100 else 2000.0
    costs = (weight,) + (0.0,) * len(layer_sizes)
    return LadderNetwork(
        input_shape=input_shape,
        layer_sizes=layer_sizes,
        noise_std=noise_std,
        denoising_costs=costs,
        seed=seed,
    )


def ladder_gan_generator(
    latent_dim: int = 100,
    image_shape: Sequence[int] = (28, 28, 1),
    hidden_units: Sequence[int] = (500, 500),
    name: str = "ladder_gan_generator",
) -> keras.Model:
    """MLP generator of EBGAN-LN: pixels in `[0, 1]`, as the ladder's inputs.

    `latent_dim -> hidden_units... -> prod(image_shape)`, batch norm and
    softplus in the hidden layers, a sigmoid output (the PI-MNIST generator of
    Salimans et al. 2016; the EBGAN paper does not give its own).

    Args:
        latent_dim: int. Size of the latent input. Defaults to `100`.
        image_shape: tuple of int. Output shape. Defaults to `(28, 28, 1)`.
        hidden_units: tuple of int. Hidden widths. Defaults to `(500, 500)`.
        name: str. Model name.

    Returns:
        A functional `keras.Model` from `(N, latent_dim)` to `(N, *image_shape)`.

    Example:

    >>> ladder_gan_generator(latent_dim=8, hidden_units=(16,)).output_shape
    (None, 28, 28, 1)
    """
    image_shape = tuple(int(d) for d in image_shape)
    latents = keras.Input((latent_dim,), name="latents")
    x = latents
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, use_bias=False, name=f"dense_{i}")(x)
        x = keras.layers.BatchNormalization(name=f"batch_norm_{i}")(x)
        x = keras.layers.Activation("softplus", name=f"softplus_{i}")(x)
    x = keras.layers.Dense(
        math.prod(image_shape), activation="sigmoid", name="to_pixels"
    )(x)
    images = keras.layers.Reshape(image_shape, name="images")(x)
    return keras.Model(latents, images, name=name)


__all__ = ["LadderNetwork", "ladder_gan_generator", "ladder_network"]
