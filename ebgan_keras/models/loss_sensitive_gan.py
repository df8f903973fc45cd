"""The loss-sensitive GAN (Qi, 2017) and its generalisation GLS-GAN."""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from ebgan_keras import losses
from ebgan_keras.models.critic import CriticGAN
from ebgan_keras.models.critic import check_non_negative

#: The official code's `tau` (its `lambda`), for 64x64x3 images with the L1
#: distance summed over pixels.
OFFICIAL_TAU = 2e-4
OFFICIAL_PIXELS = 64 * 64 * 3
#: The non-negative maps from the critic's score to the loss `L(x)`.
LOSS_ACTIVATIONS = ("relu", "softplus")


def default_tau(image_shape) -> float:
    """The margin scale `tau` for images of `image_shape`.

    The official code's `tau = 0.0002` multiplies an L1 distance summed over
    64x64x3 = 12,288 values. Scaling it by `12,288 / prod(image_shape)` keeps
    the margin the same function of the *per-pixel* distance on any image
    size: `tau * Delta = 2.4576 * mean_pixels |x - G(z)|`. For 28x28x1 that
    is `tau = 0.0002 * 12288 / 784 = 0.003135`; for 32x32x1, `0.0024`.

    Args:
        image_shape: tuple of int. `(H, W, C)`.

    Returns:
        `tau` as a float.
    """
    return OFFICIAL_TAU * OFFICIAL_PIXELS / float(np.prod(image_shape))


@keras.saving.register_keras_serializable(package="ebgan_keras")
class LossSensitiveGAN(CriticGAN):
    """Loss-sensitive GAN (Qi, 2017): real images need a lower loss, by a margin.

    Not the *least-squares* GAN of Mao et al., which the short name "LSGAN"
    usually means; hence the long name.

    The critic is a loss function `L(x) = relu(D(x)) >= 0` (low = real; it is
    the model's energy). With `loss_activation="softplus"`, `L = softplus(D)`:
    also `>= 0`, but never flat, so the critic cannot die. Measured here: the
    MNIST MLP recipe (`zoo/loss_sensitive_gan_mnist`) with the ReLU had every
    energy at exactly 0 from its second epoch on (where `D < 0` the ReLU
    passes no gradient to either network), so that recipe uses the softplus.
    A generated image only needs a loss higher than its paired real image's
    by a margin that grows with their distance:

    `L_D = gamma * mean L(x)
    + mean_i [tau * Delta(x_i, G(z_i)) + L(x_i) - L(G(z_i))]_+`,
    `L_G = mean L(G(z))`,

    with `Delta` the per-sample L1 distance summed over pixels (the official
    code's `PairwiseDistance(1)`; the margin carries no gradient to the
    critic). The theory needs `L` Lipschitz: here by a one-sided gradient
    penalty `lambda * mean_i max(0, ||grad L(x_hat_i)|| - 1)^2` at
    interpolates (the paper's first version, section 5). The official code's
    weight decay instead: `gradient_penalty_weight=0` and an optimizer with
    `weight_decay` (Keras's is decoupled, the official one adds
    `decay * w` to the gradient).

    Defaults follow the official code (guojunq/lsgan): `gamma = 0` for the
    unconditional model, one critic update per generator update,
    `Adam(1e-4, beta_1=0.5)`, uniform latents; `tau` scaled to the image size
    (`default_tau`: 0.003135 for 28x28x1).

    Args:
        generator: `keras.Model`. Maps latents `(N, latent_dim)` to images.
        discriminator: `keras.Model`. The critic: images to scores `(N, 1)`.
        tau: float. Scale of the margin, `>= 0`. Defaults to
            `default_tau(image_shape)`.
        loss_activation: str. `"relu"` (the paper's) or `"softplus"`. Defaults
            to `"relu"`.
        gamma: float. Weight of the real-loss term, `>= 0`. Defaults to `0`.
        gradient_penalty_weight: float. `lambda`, `>= 0`. Defaults to `10.0`.
        critic_steps: int. Critic updates per generator update. Defaults to
            `1`.
        latent_dim: int. Defaults to the generator's input size.
        latent_distribution: str. Defaults to `"uniform"` (official code).
        seed: int. Seeds the latents and interpolation weights of training.

    Example:

    ```python
    import ebgan_keras as ek

    model = ek.LossSensitiveGAN(
        generator=ek.networks.ebgan_mlp_generator(latent_dim=64),
        discriminator=ek.networks.gan_mlp_discriminator(),
        seed=0,
    )
    model.compile()
    model.fit(images, epochs=5, batch_size=64)  # images in [-1, 1]
    ```

    Reference:
        - [Qi, 2017](https://arxiv.org/abs/1701.06264)
    """

    default_latent_distribution = "uniform"
    one_sided_penalty = True
    tracked_logs = CriticGAN.tracked_logs + ("margin",)
    #: The cost's slope on negative violations (`0`: the hinge).
    slope = 0.0

    def __init__(
        self,
        generator,
        discriminator,
        tau: float | None = None,
        gamma: float = 0.0,
        gradient_penalty_weight: float = 10.0,
        critic_steps: int = 1,
        loss_activation: str = "relu",
        **kwargs,
    ):
        if loss_activation not in LOSS_ACTIVATIONS:
            raise ValueError(
                f"`loss_activation` must be one of {LOSS_ACTIVATIONS}. Received: "
                f"loss_activation={loss_activation!r}"
            )
        self.loss_activation = loss_activation
        self.gamma = check_non_negative(gamma, "gamma")
        self._tau = None if tau is None else check_non_negative(tau, "tau")
        super().__init__(
            generator,
            discriminator,
            gradient_penalty_weight=gradient_penalty_weight,
            critic_steps=critic_steps,
            **kwargs,
        )
        self.tau = default_tau(self.image_shape) if tau is None else self._tau

    def default_optimizers(self) -> tuple:
        """`Adam(1e-4, beta_1=0.5)` for both networks (the official code's)."""
        return (
            keras.optimizers.Adam(1e-4, beta_1=0.5),
            keras.optimizers.Adam(1e-4, beta_1=0.5),
        )

    def compute_energy(self, images, training: bool = False):
        """The loss `L(x) = relu(D(x))` (or softplus; the energy) and `D(x)`."""
        scores = self.critic_scores(images, training=training)
        if self.loss_activation == "softplus":
            return ops.softplus(scores), scores
        return ops.relu(scores), scores

    def penalized_scores(self, images, training: bool = False):
        """`L(x)`: the function that must be Lipschitz."""
        return self.compute_energy(images, training=training)[0]

    def discriminator_loss(self, real, latents, training=True):
        fake = ops.stop_gradient(self.generator(latents, training=training))
        loss_real, _ = self.compute_energy(real, training=training)
        loss_fake, _ = self.compute_energy(fake, training=training)
        margins = self.tau * losses.l1_distance(real, fake)
        weighted, penalty = self.gradient_penalty(real, fake, training=training)
        loss = (
            losses.loss_sensitive_critic_loss(
                loss_real, loss_fake, margins, slope=self.slope, gamma=self.gamma
            )
            + weighted
        )
        aux = {
            "energy_real": ops.mean(loss_real),
            "energy_fake": ops.mean(loss_fake),
            "gradient_penalty": penalty,
            "margin": ops.mean(margins),
        }
        return loss, aux

    def generator_loss(self, latents, training=True):
        fake = self.generator(latents, training=training)
        loss_fake, _ = self.compute_energy(fake, training=training)
        return ops.mean(loss_fake), {}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "tau": self._tau,
                "gamma": self.gamma,
                "loss_activation": self.loss_activation,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="ebgan_keras")
class GLSGAN(LossSensitiveGAN):
    """Generalised loss-sensitive GAN (Qi, 2017, appendix D; guojunq/glsgan).

    The loss-sensitive GAN with its hinge replaced by a leaky ReLU cost
    `C(a) = max(a, 0) + slope * min(a, 0)`:

    `L_D = gamma * mean L(x) + mean_i C(tau * Delta(x_i, G(z_i)) + L(x_i) - L(G(z_i)))`.

    `slope = 0` is exactly `LossSensitiveGAN`; `slope = 1` is WGAN's critic
    loss on `L` plus the margin's mean, a constant for the critic;
    `slope = -1` gives `C(a) = |a|`. The theory allows any slope `<= 1`.
    Everything else (the loss function `L = relu(D)`, the margin, the
    penalty, defaults) is `LossSensitiveGAN`'s.

    Args:
        generator: `keras.Model`. Maps latents `(N, latent_dim)` to images.
        discriminator: `keras.Model`. The critic: images to scores `(N, 1)`.
        slope: float. The cost's slope on negative values, `<= 1`. Defaults
            to `-1.0` (the official README's default; its code's option
            table says 0, which is `LossSensitiveGAN` itself).
        **kwargs: the arguments of `ek.LossSensitiveGAN` (`tau`, `gamma`,
            `gradient_penalty_weight`, `critic_steps`, `latent_dim`,
            `latent_distribution`, `seed`).

    Reference:
        - [Qi, 2017](https://arxiv.org/abs/1701.06264), appendix D
    """

    def __init__(self, generator, discriminator, slope: float = -1.0, **kwargs):
        try:
            value = float(slope)
        except (TypeError, ValueError):
            value = float("nan")
        if isinstance(slope, bool) or not (value <= 1.0 and math.isfinite(value)):
            raise ValueError(
                "`slope` must be a finite number <= 1 (the cost must satisfy "
                f"C(a) >= a). Received: slope={slope!r}"
            )
        self.slope = value
        super().__init__(generator, discriminator, **kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        config["slope"] = self.slope
        return config


__all__ = ["GLSGAN", "LossSensitiveGAN", "default_tau"]
