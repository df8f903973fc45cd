"""BEGAN: boundary equilibrium GAN."""

from __future__ import annotations

import keras
from keras import ops

from ebgan_keras.models.energy_gan import EnergyGAN


@keras.saving.register_keras_serializable(package="ebgan_keras")
class BEGAN(EnergyGAN):
    """Boundary Equilibrium GAN (Berthelot, Schumm and Metz, 2017).

    With `L(v)` the per-sample mean absolute reconstruction error:
    `L_D = L(x) - k_t L(G(z_D))`, `L_G = L(G(z_G))`, and after each step
    `k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)`. The
    convergence measure `M = L(x) + |gamma L(x) - L(G(z))|` is logged as
    `convergence`. As in the reference implementation, `L(x)` and `L(G(z))`
    in both are measured with the discriminator *before* its update in that
    step (its loss terms; the official code feeds one `z` to both nets, so
    its `L(G(z_G))` equals `L(G(z_D))`), not the generator step's loss
    after the discriminator has moved. `k` is model state (`model.k`): saved
    with the model and carried through resume.
    `ek.callbacks.HalveLearningRateOnStall` is the paper's learning-rate
    rule.

    Args:
        generator: `keras.Model`. Maps latents `(N, latent_dim)` to images.
        discriminator: `keras.Model`. Maps images to
            `(reconstruction, code)`.
        gamma: float in `[0, 1]`. The diversity ratio. Defaults to `0.5`.
        lambda_k: float. The learning rate of `k`. Defaults to `1e-3`.
        initial_k: float in `[0, 1]`. `k_0`. Defaults to `0.0`.
        latent_distribution: str. Defaults to `"uniform"` on `[-1, 1]`.
        energy_reduction: str. Defaults to `"mean"`.
        energy_power: float. Defaults to `1.0` (L1, the paper's eta = 1).
        **kwargs: `latent_dim`, `seed` and the other arguments of
            `keras.Model`.

    Example:

    ```python
    import ebgan_keras as ek

    model = ek.BEGAN(
        generator=ek.networks.began_generator(image_size=32, channels=1),
        discriminator=ek.networks.began_discriminator(image_size=32, channels=1),
        gamma=0.5,
        seed=0,
    )
    model.compile()
    model.fit(images, epochs=5, batch_size=16,
              callbacks=[ek.callbacks.HalveLearningRateOnStall(patience=2)])
    ```

    Reference:
        - [Berthelot et al., 2017](https://arxiv.org/abs/1703.10717)
    """

    default_latent_distribution = "uniform"
    default_energy_reduction = "mean"
    default_energy_power = 1.0
    tracked_logs = EnergyGAN.tracked_logs + ("convergence",)
    state_logs = ("k",)

    def __init__(
        self,
        generator,
        discriminator,
        gamma=0.5,
        lambda_k=1e-3,
        initial_k=0.0,
        **kwargs,
    ):
        super().__init__(generator, discriminator, **kwargs)
        # === Config ===
        self.gamma = _unit_interval(gamma, "gamma")
        self.lambda_k = float(lambda_k)
        self.initial_k = _unit_interval(initial_k, "initial_k")
        if not self.lambda_k >= 0:
            raise ValueError(
                f"`lambda_k` must be a non-negative number. Received: "
                f"lambda_k={lambda_k!r}"
            )
        self.k = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_k),
            trainable=False,
            name="k",
        )

    def default_optimizers(self) -> tuple:
        return (
            keras.optimizers.Adam(1e-4, beta_1=0.5),
            keras.optimizers.Adam(1e-4, beta_1=0.5),
        )

    def discriminator_loss(self, real, latents, training=True):
        fake = ops.stop_gradient(self.generator(latents, training=training))
        energy_real, _ = self.compute_energy(real, training=training)
        energy_fake, _ = self.compute_energy(fake, training=training)
        mean_real, mean_fake = ops.mean(energy_real), ops.mean(energy_fake)
        loss = mean_real - self.k * mean_fake
        return loss, {"energy_real": mean_real, "energy_fake": mean_fake}

    def generator_loss(self, latents, training=True):
        fake = self.generator(latents, training=training)
        energy_fake, _ = self.compute_energy(fake, training=training)
        return ops.mean(energy_fake), {}

    def update_state_variables(self, values: dict) -> dict:
        # Both energies from the discriminator's step, before its update.
        balance = self.gamma * values["energy_real"] - values["energy_fake"]
        self.k.assign(ops.clip(self.k + self.lambda_k * balance, 0.0, 1.0))
        convergence = values["energy_real"] + ops.abs(balance)
        return {"k": ops.convert_to_tensor(self.k), "convergence": convergence}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "gamma": self.gamma,
                "lambda_k": self.lambda_k,
                "initial_k": self.initial_k,
            }
        )
        return config


def _unit_interval(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"`{name}` must be in [0, 1]. Received: {name}={value!r}")
    return number
