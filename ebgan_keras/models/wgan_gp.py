"""WGAN-GP: the Wasserstein critic with a gradient penalty, read as an energy."""

from __future__ import annotations

import keras
from keras import ops

from ebgan_keras import losses
from ebgan_keras.models.critic import CriticGAN


@keras.saving.register_keras_serializable(package="ebgan_keras")
class WGANGP(CriticGAN):
    """WGAN with a gradient penalty (Gulrajani et al., 2017), as an energy model.

    The critic `D` scores images (high = real); its energy is `E(x) = -D(x)`,
    so the latent samplers run on it as on the autoencoder models: DDLS with
    `temperature=1` samples the "GAN secretly an EBM" energy
    `U(z) = ||z||^2 / 2 - D(G(z))` exactly (Che et al., 2020).

    `L_D = mean D(G(z)) - mean D(x) + lambda * mean_i (||grad D(x_hat_i)||_2 - 1)^2`,
    `x_hat = eps * x + (1 - eps) * G(z)`, `eps ~ U[0, 1]` per sample;
    `L_G = -mean D(G(z))`.

    Defaults are the paper's: `lambda = 10`, `n_critic = 5` critic updates
    per generator update (each with fresh latents, on the step's real batch),
    `Adam(1e-4, beta_1=0, beta_2=0.9)` for both networks, and a critic
    without batch normalization (`ek.networks.gan_mlp_discriminator` or
    `ek.networks.dcgan_critic`; a batch-normalized critic gets a warning).

    Args:
        generator: `keras.Model`. Maps latents `(N, latent_dim)` to images.
        discriminator: `keras.Model`. The critic: images to scores `(N, 1)`.
        gradient_penalty_weight: float. `lambda`, `>= 0`. Defaults to `10.0`.
        critic_steps: int. `n_critic`, `>= 1`. Defaults to `5`.
        latent_dim: int. Defaults to the generator's input size.
        latent_distribution: str. `"normal"` or `"uniform"`. Defaults to
            `"normal"`.
        seed: int. Seeds the latents and the interpolation weights of
            training. Defaults to `None`.

    Example:

    ```python
    import ebgan_keras as ek

    model = ek.WGANGP(
        generator=ek.networks.ebgan_mlp_generator(latent_dim=64),
        discriminator=ek.networks.gan_mlp_discriminator(),
        seed=0,
    )
    model.compile()
    model.fit(images, epochs=5, batch_size=64)  # images in [-1, 1]
    ```

    Reference:
        - [Gulrajani et al., 2017](https://arxiv.org/abs/1704.00028)
        - [Che et al., 2020](https://arxiv.org/abs/2003.06060)
    """

    def __init__(
        self,
        generator,
        discriminator,
        gradient_penalty_weight: float = 10.0,
        critic_steps: int = 5,
        **kwargs,
    ):
        super().__init__(
            generator,
            discriminator,
            gradient_penalty_weight=gradient_penalty_weight,
            critic_steps=critic_steps,
            **kwargs,
        )

    def default_optimizers(self) -> tuple:
        """`Adam(1e-4, beta_1=0, beta_2=0.9)` for both networks (the paper's)."""
        return (
            keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9),
            keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9),
        )

    def compute_energy(self, images, training: bool = False):
        """Energy `-D(x)` and the scores `D(x)`, both `(N,)`."""
        scores = self.critic_scores(images, training=training)
        return -scores, scores

    def discriminator_loss(self, real, latents, training=True):
        fake = ops.stop_gradient(self.generator(latents, training=training))
        energy_real, _ = self.compute_energy(real, training=training)
        energy_fake, _ = self.compute_energy(fake, training=training)
        weighted, penalty = self.gradient_penalty(real, fake, training=training)
        loss = losses.wasserstein_critic_loss(energy_real, energy_fake) + weighted
        aux = {
            "energy_real": ops.mean(energy_real),
            "energy_fake": ops.mean(energy_fake),
            "gradient_penalty": penalty,
        }
        return loss, aux

    def generator_loss(self, latents, training=True):
        fake = self.generator(latents, training=training)
        energy_fake, _ = self.compute_energy(fake, training=training)
        return ops.mean(energy_fake), {}


__all__ = ["WGANGP"]
