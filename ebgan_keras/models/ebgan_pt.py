"""EBGAN-PT: EBGAN with the pulling-away term on the generator."""

from __future__ import annotations

import keras
from keras import ops

from ebgan_keras import backend
from ebgan_keras import losses
from ebgan_keras.models.ebgan import EBGAN


@keras.saving.register_keras_serializable(package="ebgan_keras")
class EBGANPT(EBGAN):
    """EBGAN with the pulling-away term (Zhao, Mathieu and LeCun, ICLR 2017).

    The generator's loss adds the pulling-away term of the discriminator's
    codes of the generated batch, which pushes generated samples apart:
    `L_G = mean_i E(G(z_i)) + pt_weight * PT(S)`. The term is not in `L_D`.

    Args:
        generator: `keras.Model`. Maps latents `(N, latent_dim)` to images.
        discriminator: `keras.Model`. Maps images to
            `(reconstruction, code)`.
        margin: float. The margin `m`. Defaults to `10.0`.
        pt_weight: float. Weight of the pulling-away term. Defaults to `0.1`,
            the paper's value.
        **kwargs: the other arguments of `ek.EBGAN`.

    Example:

    ```python
    import ebgan_keras as ek

    model = ek.EBGANPT(
        generator=ek.networks.ebgan_mlp_generator(latent_dim=64),
        discriminator=ek.networks.ebgan_mlp_discriminator(),
        pt_weight=0.1,
        seed=0,
    )
    model.compile()
    model.fit(images, epochs=5, batch_size=64)
    ```

    Reference:
        - [Zhao et al., 2017](https://arxiv.org/abs/1609.03126)
    """

    tracked_logs = EBGAN.tracked_logs + ("pt",)
    min_batch_size = 2
    min_batch_reason = (
        "the pulling-away term compares the codes of pairs of generated "
        "samples, so a batch needs at least two"
    )

    def __init__(self, generator, discriminator, margin=10.0, pt_weight=0.1, **kwargs):
        super().__init__(generator, discriminator, margin=margin, **kwargs)
        # === Config ===
        self.pt_weight = float(pt_weight)
        if not self.pt_weight >= 0:
            raise ValueError(
                f"`pt_weight` must be a non-negative number. "
                f"Received: pt_weight={pt_weight!r}"
            )

    def generator_loss(self, latents, training=True):
        fake = self.generator(latents, training=training)
        energy_fake, codes = self.compute_energy(fake, training=training)
        # Over the global batch under `tf.distribute`, as on one device.
        pulling_away = losses.pulling_away_term(backend.all_gather(codes))
        loss = ops.mean(energy_fake) + self.pt_weight * pulling_away
        return loss, {"pt": pulling_away}

    def get_config(self) -> dict:
        config = super().get_config()
        config["pt_weight"] = self.pt_weight
        return config
