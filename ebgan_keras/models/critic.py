"""CriticGAN: GANs whose discriminator is a scalar critic under a Lipschitz penalty."""

from __future__ import annotations

import warnings

import keras
from keras import ops

from ebgan_keras import losses
from ebgan_keras.models.base import BaseGAN
from ebgan_keras.models.base import check_one_score_per_image


@keras.saving.register_keras_serializable(package="ebgan_keras")
class CriticGAN(BaseGAN):
    """Base of the critic family: one score per image, a gradient penalty.

    The discriminator (the critic) maps images to one unbounded score per
    image; a subclass turns it into an energy (`compute_energy`, low = looks
    real), so the latent samplers work on these models as on the
    energy-based ones. What the family shares lives here:

    - `critic_steps` critic updates per generator update (`n_critic`); each
      takes fresh latents and the same real batch (the documented schedule:
      `d_optimizer.iterations == critic_steps * g_optimizer.iterations`).
    - `gradient_penalty(real, fake, training)`: the Lipschitz penalty on the
      function the subclass names (`penalized_scores`), at interpolates whose
      weights come from the model's seed generator
      (`interpolation_weights`).
    - The critic check: one score per image, and a warning for batch
      normalization under a gradient penalty (the penalty is per sample; a
      batch-normalized critic mixes the samples of a batch).

    Args:
        generator: `keras.Model`. Maps latents `(N, latent_dim)` to images.
        discriminator: `keras.Model`. The critic: images to scores `(N, 1)`
            or `(N,)`.
        gradient_penalty_weight: float. `lambda` of the penalty, `>= 0`
            (`0` turns it off).
        critic_steps: int. Critic updates per generator update, `>= 1`.
        **kwargs: `latent_dim`, `latent_distribution`, `seed` and the other
            arguments of `ek.models.BaseGAN`.
    """

    tracked_logs = BaseGAN.tracked_logs + ("gradient_penalty",)
    #: Whether the penalty only bounds the gradient norm from above.
    one_sided_penalty = False

    def __init__(
        self,
        generator,
        discriminator,
        gradient_penalty_weight: float = 10.0,
        critic_steps: int = 1,
        **kwargs,
    ):
        # === Config === (checked first: the critic check warns with them)
        self.gradient_penalty_weight = check_non_negative(
            gradient_penalty_weight, "gradient_penalty_weight"
        )
        if (
            isinstance(critic_steps, bool)
            or int(critic_steps) != critic_steps
            or critic_steps < 1
        ):
            raise ValueError(
                "`critic_steps` must be an int >= 1 (critic updates per "
                f"generator update). Received: critic_steps={critic_steps!r}"
            )
        self.critic_steps = int(critic_steps)
        super().__init__(generator, discriminator, **kwargs)

    @property
    def discriminator_steps(self) -> int:
        """Critic updates per training step: `critic_steps`."""
        return self.critic_steps

    def check_discriminator(self, discriminator) -> None:
        check_one_score_per_image(self, "score")
        if self.gradient_penalty_weight > 0:
            batch_norms = [
                layer.name
                for layer in _all_layers(discriminator)
                if isinstance(layer, keras.layers.BatchNormalization)
            ]
            if batch_norms:
                warnings.warn(
                    f"{type(self).__name__}: the critic has batch normalization "
                    f"({', '.join(batch_norms)}) and a gradient penalty "
                    f"(gradient_penalty_weight={self.gradient_penalty_weight:g}). "
                    "The penalty constrains the gradient of each sample's score "
                    "with respect to that sample alone, but batch norm makes "
                    "each score depend on the whole batch, so the penalty no "
                    "longer bounds the function it is meant to bound. Use layer "
                    "normalization or none (Gulrajani et al., 2017, section 4).",
                    stacklevel=3,
                )

    def critic_scores(self, images, training: bool = False):
        """The critic's scores `D(x)`, float32 of shape `(N,)`."""
        scores = self.discriminator(images, training=training)
        return ops.cast(ops.reshape(scores, (-1,)), "float32")

    def penalized_scores(self, images, training: bool = False):
        """The function whose gradient the penalty bounds; the raw scores here."""
        return self.critic_scores(images, training=training)

    def interpolation_weights(self, batch_size):
        """`eps ~ U[0, 1]` per sample, from the model's seed generator."""
        return keras.random.uniform((batch_size,), seed=self.seed_generator)

    def gradient_penalty(self, real, fake, training: bool = True):
        """`lambda * mean_i (||grad D(x_hat_i)|| - 1)^2`, and the unweighted term.

        Args:
            real: tensor `(N, H, W, C)`. Real images.
            fake: tensor `(N, H, W, C)`. Generated images, gradient stopped.
            training: bool. Run the critic in training mode.

        Returns:
            `(weighted, penalty)`: float32 scalars; both `0` when
            `gradient_penalty_weight` is `0` (nothing is computed).
        """
        if not self.gradient_penalty_weight:
            zero = ops.zeros((), "float32")
            return zero, zero
        penalty, _ = losses.gradient_penalty(
            lambda x: self.penalized_scores(x, training=training),
            real,
            fake,
            seed=self.interpolation_weights(ops.shape(real)[0]),
            one_sided=self.one_sided_penalty,
        )
        return self.gradient_penalty_weight * penalty, penalty

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "gradient_penalty_weight": self.gradient_penalty_weight,
                "critic_steps": self.critic_steps,
            }
        )
        return config


def _all_layers(model) -> list:
    """Every layer of a model, nested models included."""
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        found.extend(_all_layers(layer))
    return found


def check_non_negative(value, name: str) -> float:
    """Returns `value` as a float, or raises naming `name` if not finite and >= 0."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, bool) or not number >= 0 or number == float("inf"):
        raise ValueError(
            f"`{name}` must be a finite number >= 0. Received: {name}={value!r}"
        )
    return number


__all__ = ["CriticGAN"]
