"""GAN: the standard non-saturating GAN, on the same base as the energy GANs."""

from __future__ import annotations

import keras
from keras import ops

from ebgan_keras.models.base import BaseGAN
from ebgan_keras.models.base import check_one_score_per_image


@keras.saving.register_keras_serializable(package="ebgan_keras")
class GAN(BaseGAN):
    """Non-saturating GAN (Goodfellow et al., 2014), the zoo's baseline.

    The discriminator returns one logit per image `D(x)`; its energy is
    `E(x) = -D(x)`, so the samplers (DDLS in its original logit form,
    rejection, Metropolis-Hastings) and the energy diagnostics work on it as
    on the energy-based models:

    `L_D = mean softplus(-D(x)) + mean softplus(D(G(z)))`,
    `L_G = mean softplus(-D(G(z)))` (the non-saturating generator loss).
    `compile()` defaults to `Adam(2e-4, beta_1=0.5)` for both networks (the
    DCGAN setting).

    Args:
        generator: `keras.Model`. Maps latents `(N, latent_dim)` to images.
        discriminator: `keras.Model`. Maps images to logits `(N, 1)` or
            `(N,)`.
        latent_dim: int. Defaults to the generator's input size.
        latent_distribution: str. `"normal"` or `"uniform"`. Defaults to
            `"normal"`.
        seed: int. Seeds every latent drawn in training. Defaults to `None`.

    Example:

    ```python
    import ebgan_keras as ek

    model = ek.GAN(
        generator=ek.networks.ebgan_mlp_generator(latent_dim=64),
        discriminator=ek.networks.gan_mlp_discriminator(),
        seed=0,
    )
    model.compile()
    model.fit(images, epochs=5, batch_size=64)  # images in [-1, 1]
    ```

    Reference:
        - [Goodfellow et al., 2014](https://arxiv.org/abs/1406.2661)
    """

    def check_discriminator(self, discriminator) -> None:
        check_one_score_per_image(self, "logit")

    def compute_energy(self, images, training: bool = False):
        """Energy `-D(x)` and the logits `D(x)` of a batch, as backend tensors.

        Args:
            images: tensor `(N, H, W, C)`.
            training: bool. Run the discriminator in training mode.

        Returns:
            `(energy, logits)`, both of shape `(N,)`.
        """
        logits = self.discriminator(images, training=training)
        logits = ops.cast(ops.reshape(logits, (-1,)), "float32")
        return -logits, logits

    def discriminator_loss(self, real, latents, training=True):
        fake = ops.stop_gradient(self.generator(latents, training=training))
        energy_real, _ = self.compute_energy(real, training=training)
        energy_fake, _ = self.compute_energy(fake, training=training)
        # -log sigmoid(D(x)) = softplus(E(x)); -log(1 - sigmoid(D)) = softplus(-E).
        loss = ops.mean(ops.softplus(energy_real)) + ops.mean(
            ops.softplus(-energy_fake)
        )
        aux = {
            "energy_real": ops.mean(energy_real),
            "energy_fake": ops.mean(energy_fake),
        }
        return loss, aux

    def generator_loss(self, latents, training=True):
        fake = self.generator(latents, training=training)
        energy_fake, _ = self.compute_energy(fake, training=training)
        return ops.mean(ops.softplus(energy_fake)), {}
