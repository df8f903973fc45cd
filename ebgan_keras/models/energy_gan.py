"""EnergyGAN: the base of the GANs whose discriminator is an autoencoder."""

from __future__ import annotations

import keras
from keras import ops

from ebgan_keras import losses
from ebgan_keras.models.base import BaseGAN
from ebgan_keras.models.base import describe_outputs
from ebgan_keras.utils import predict_in_batches


@keras.saving.register_keras_serializable(package="ebgan_keras")
class EnergyGAN(BaseGAN):
    """Base class of the energy-based GANs: a generator and an autoencoder critic.

    The discriminator returns `(reconstruction, code)`; the energy of an
    image is its reconstruction error `reduce(|Dec(Enc(x)) - x|^p)`, the
    code feeds terms such as the pulling-away term. Subclasses define
    `discriminator_loss`, `generator_loss` and, for models with state such as
    BEGAN's `k`, `update_state_variables`; the rest is `ek.models.BaseGAN`.

    Args:
        generator: `keras.Model`. Maps latents `(N, latent_dim)` to images
            `(N, H, W, C)`.
        discriminator: `keras.Model`. Maps images to a pair
            `(reconstruction, code)`; the energy is computed from the
            reconstruction, the pulling-away term from the code.
        latent_dim: int. Size of the latent vector. Defaults to the size of
            the generator's input.
        latent_distribution: str. `"normal"` (standard Gaussian) or
            `"uniform"` (on `[-1, 1]`). Defaults to the model's paper setting.
        energy_reduction: str. `"sum"`, `"mean"` or `"l2"`, see
            `ek.losses.reconstruction_energy`. Defaults to the model's paper
            setting.
        energy_power: float. The exponent `p` of the reconstruction error.
            Defaults to the model's paper setting.
        seed: int. Seeds the model's `keras.random.SeedGenerator`, which draws
            every latent of training: same seed, same run on one backend.
            Defaults to `None` (random).
    """

    default_energy_reduction = "mean"
    default_energy_power = 2.0

    def __init__(
        self,
        generator,
        discriminator,
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
            seed=seed,
            **kwargs,
        )
        # === Config ===
        self.energy_reduction = energy_reduction or self.default_energy_reduction
        self.energy_power = float(
            self.default_energy_power if energy_power is None else energy_power
        )
        losses.max_energy((1,), self.energy_reduction, self.energy_power)

    def default_optimizers(self) -> tuple:
        """`Adam(1e-3, beta_1=0.5)` for both networks (the EBGAN paper's MNIST)."""
        return (
            keras.optimizers.Adam(1e-3, beta_1=0.5),
            keras.optimizers.Adam(1e-3, beta_1=0.5),
        )

    def check_discriminator(self, discriminator) -> None:
        outputs = self.discriminator_output_spec()
        if not isinstance(outputs, (list, tuple)) or len(outputs) != 2:
            raise ValueError(
                "`discriminator` must return a pair (reconstruction, code). "
                f"Received: discriminator output {describe_outputs(outputs)}"
            )
        reconstruction = outputs[0]
        if tuple(reconstruction.shape[1:]) != self.image_shape:
            raise ValueError(
                "The discriminator's reconstruction must have the shape of the "
                f"images (N, {', '.join(map(str, self.image_shape))}). Received: "
                f"reconstruction of shape {tuple(reconstruction.shape)}"
            )

    def compute_energy(self, images, training: bool = False):
        """Energy and code of a batch of images, as backend tensors.

        Args:
            images: tensor `(N, H, W, C)`.
            training: bool. Run the discriminator in training mode.

        Returns:
            `(energy, code)`: the per-sample energy `(N,)` and the
            discriminator's code for each image.
        """
        reconstruction, code = self.discriminator(images, training=training)
        energy = losses.reconstruction_energy(
            reconstruction, images, self.energy_reduction, self.energy_power
        )
        return energy, code

    def discriminator_code(self, images, batch_size: int = 256):
        """The autoencoder discriminator's code of images, one vector per image.

        The encoder's output `Enc(x)` (the bottleneck that the pulling-away
        term and BEGAN's `h` are computed on), flattened per image: a
        representation learned without labels, to compare with BiGAN's
        `encode` (`ek.metrics.linear_probe`, `ek.metrics.nearest_neighbor_accuracy`).

        Args:
            images: array `(N, H, W, C)` of float images in `[-1, 1]`.
            batch_size: int. Images per forward pass. Defaults to `256`.

        Returns:
            A float32 numpy array `(N, code_size)`.

        Raises:
            ValueError: if the images do not have the model's image shape.

        Example:

        ```python
        codes = ek.zoo.load("ebgan_pt_mnist").discriminator_code(images)
        ```
        """
        images = self._check_image_array(images, "images", check_range=False)

        def code(x):
            _, codes = self.discriminator(x, training=False)
            return ops.reshape(ops.cast(codes, "float32"), (ops.shape(x)[0], -1))

        return predict_in_batches(code, images, batch_size)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "energy_reduction": self.energy_reduction,
                "energy_power": self.energy_power,
            }
        )
        return config


__all__ = ["EnergyGAN"]
