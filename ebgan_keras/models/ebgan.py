"""EBGAN: energy-based GAN with an autoencoder discriminator and a margin."""

from __future__ import annotations

import warnings

import keras
from keras import ops

from ebgan_keras import losses
from ebgan_keras.models.energy_gan import EnergyGAN


@keras.saving.register_keras_serializable(package="ebgan_keras")
class EBGAN(EnergyGAN):
    """Energy-based GAN (Zhao, Mathieu and LeCun, ICLR 2017).

    The discriminator is an autoencoder whose reconstruction error is the
    energy `E(x)` of an image. It learns low energies on data and pushes
    generated samples above a margin; the generator lowers their energy:

    `L_D = mean_i E(x_i) + mean_i max(0, m - E(G(z_i)))`, `L_G = mean_i E(G(z_i))`.

    The hinge is taken per sample, then averaged. The margin only means
    something with the energy reduction: `ek.losses.max_energy` gives the
    largest possible energy, and a margin above it (e.g. 10 with a per-pixel
    mean of squared errors, at most 4 for images in `[-1, 1]`) keeps the hinge
    active for every sample, which is warned about.

    Args:
        generator: `keras.Model`. Maps latents `(N, latent_dim)` to images.
        discriminator: `keras.Model`. Maps images to
            `(reconstruction, code)`.
        margin: float. The margin `m`. Defaults to `10.0`, the paper's MNIST
            setting with the default `"l2"` energy.
        latent_dim: int. Defaults to the generator's input size.
        latent_distribution: str. `"normal"` or `"uniform"`. Defaults to
            `"normal"`.
        energy_reduction: str. `"sum"`, `"mean"` or `"l2"`. Defaults to
            `"l2"`, the paper's `||Dec(Enc(x)) - x||`.
        energy_power: float. Exponent of the error. Defaults to `2.0`.
        seed: int. Seeds every latent drawn in training. Defaults to `None`.

    Example:

    ```python
    import ebgan_keras as ek

    model = ek.EBGAN(
        generator=ek.networks.ebgan_mlp_generator(latent_dim=64),
        discriminator=ek.networks.ebgan_mlp_discriminator(),
        margin=10.0,
        seed=0,
    )
    model.compile()
    model.fit(images, epochs=5, batch_size=64)  # images in [-1, 1]
    samples = model.generate(16, seed=1)
    ```

    Reference:
        - [Zhao et al., 2017](https://arxiv.org/abs/1609.03126)
    """

    default_energy_reduction = "l2"

    def __init__(
        self,
        generator,
        discriminator,
        margin=10.0,
        latent_dim=None,
        latent_distribution=None,
        energy_reduction=None,
        energy_power=None,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            generator,
            discriminator,
            latent_dim=latent_dim,
            latent_distribution=latent_distribution,
            energy_reduction=energy_reduction,
            energy_power=energy_power,
            seed=seed,
            **kwargs,
        )
        # === Config ===
        self.initial_margin = _check_margin(margin, type(self).__name__)
        if self.initial_margin is not None:
            bound = losses.max_energy(
                self.image_shape, self.energy_reduction, self.energy_power
            )
            if self.initial_margin >= bound:
                warnings.warn(
                    f"{type(self).__name__}: margin={self.initial_margin:g} is at "
                    f"least the largest possible energy ({bound:g}) of "
                    f"{self.image_shape} images in [-1, 1] with "
                    f"energy_reduction={self.energy_reduction!r}, "
                    f"energy_power={self.energy_power:g}: the hinge is active for "
                    "every sample. Choose a margin below that bound.",
                    stacklevel=2,
                )
        self.margin = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_margin or 0.0),
            trainable=False,
            name="margin",
        )

    def discriminator_loss(self, real, latents, training=True):
        fake = ops.stop_gradient(self.generator(latents, training=training))
        energy_real, _ = self.compute_energy(real, training=training)
        energy_fake, _ = self.compute_energy(fake, training=training)
        loss = losses.ebgan_discriminator_loss(energy_real, energy_fake, self.margin)
        aux = {
            "energy_real": ops.mean(energy_real),
            "energy_fake": ops.mean(energy_fake),
        }
        return loss, aux

    def generator_loss(self, latents, training=True):
        # No stop_gradient: the loss flows through the reconstruction *and*
        # through the target G(z) of the reconstruction error.
        fake = self.generator(latents, training=training)
        energy_fake, _ = self.compute_energy(fake, training=training)
        return ops.mean(energy_fake), {}

    def get_config(self) -> dict:
        config = super().get_config()
        config["margin"] = self.initial_margin
        return config


def _check_margin(margin, owner: str):
    if margin is None:
        return None
    try:
        value = float(margin)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(
            f"{owner}: `margin` must be a positive, finite number. "
            f"Received: margin={margin!r}"
        )
    return value
