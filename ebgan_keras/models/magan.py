"""MAGAN: margin adaptation for GANs."""

from __future__ import annotations

import keras
from keras import ops

from ebgan_keras.models.ebgan import EBGAN


@keras.saving.register_keras_serializable(package="ebgan_keras")
class MAGAN(EBGAN):
    """EBGAN with an adaptive margin (Wang, Cully, Chang and Demiris, 2017).

    Training starts with `pretrain_epochs` epochs of the discriminator alone,
    as an autoencoder on real data (the generator does not move), after which
    the margin `m` is set to the mean real energy of the last of those epochs.
    Then the EBGAN losses are used, and after each epoch, with `S_real` and
    `S_fake` the sums of per-batch mean energies over the epoch (as in the
    official code: `S_real` from the discriminator's step, before its update;
    `S_fake` from the generator's step, after it): if
    `S_real / N_batches < m`, `S_real < S_fake` and `S_fake` did not decrease
    since the previous epoch, then `m = S_real / N_batches`. The margin never
    grows. At the first adversarial epoch there is no previous `S_fake`, so
    the margin is kept.

    The margin and the phase are model state (`model.margin`,
    `model.pretrained_epochs`), saved with the model and carried through
    resume. The rule runs in the model's `on_epoch_end` hook, which `fit`
    calls after each epoch. The discriminator's optimizer
    also steps during pre-training, so after `fit` its `iterations` counts
    pre-training steps too.

    Args:
        generator: `keras.Model`. Maps latents `(N, latent_dim)` to images.
        discriminator: `keras.Model`. Maps images to
            `(reconstruction, code)`.
        margin: float. A starting margin; `None` estimates it by
            pre-training. Defaults to `None`.
        pretrain_epochs: int. Epochs of autoencoder pre-training. Defaults
            to `2`, the official code's value.
        energy_reduction: str. Defaults to `"sum"` (the official code's
            per-sample sum of squared errors).
        **kwargs: the other arguments of `ek.EBGAN`.

    Example:

    ```python
    import ebgan_keras as ek

    model = ek.MAGAN(
        generator=ek.networks.ebgan_mlp_generator(latent_dim=64),
        discriminator=ek.networks.ebgan_mlp_discriminator(),
        pretrain_epochs=2,
        seed=0,
    )
    model.compile()
    model.fit(images, epochs=10, batch_size=64)  # 2 pre-training epochs + 8
    print(float(model.margin))
    ```

    Reference:
        - [Wang et al., 2017](https://arxiv.org/abs/1704.03817)
    """

    default_energy_reduction = "sum"
    state_logs = ("margin",)

    @classmethod
    def config_for_epochs(cls, model_kwargs: dict, epochs: int | None) -> dict:
        """Shortens the default pre-training so a short run has adversarial epochs.

        Args:
            model_kwargs: dict. The config's `model` kwargs.
            epochs: int or None. The run's epochs.

        Returns:
            The kwargs; without an explicit `pretrain_epochs`, a run of
            `epochs` epochs pre-trains `min(2, max(epochs - 1, 1))` of them.
        """
        if epochs is None or "pretrain_epochs" in model_kwargs:
            return model_kwargs
        return {**model_kwargs, "pretrain_epochs": min(2, max(epochs - 1, 1))}

    def __init__(
        self, generator, discriminator, margin=None, pretrain_epochs=2, **kwargs
    ):
        super().__init__(generator, discriminator, margin=margin, **kwargs)
        # === Config ===
        self.pretrain_epochs = int(pretrain_epochs)
        if self.pretrain_epochs < 0 or self.pretrain_epochs != pretrain_epochs:
            raise ValueError(
                "`pretrain_epochs` must be a non-negative int. Received: "
                f"pretrain_epochs={pretrain_epochs!r}"
            )
        if margin is None and self.pretrain_epochs == 0:
            raise ValueError(
                "MAGAN needs a starting margin: pass `margin` or pre-train "
                "(`pretrain_epochs >= 1`). Received: margin=None, "
                "pretrain_epochs=0"
            )
        self.pretrained_epochs = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="pretrained_epochs"
        )
        # Sums of per-batch mean energies over the current epoch, and S_fake
        # of the previous epoch (+inf: no previous epoch yet).
        self.epoch_energy_real_sum = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="epoch_real_sum"
        )
        self.epoch_energy_fake_sum = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="epoch_fake_sum"
        )
        self.epoch_batches = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="epoch_batches"
        )
        self.previous_energy_fake_sum = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(float("inf")),
            trainable=False,
            name="previous_fake_sum",
        )
        self._pretraining = self.pretrain_epochs > 0

    def default_optimizers(self) -> tuple:
        return (
            keras.optimizers.Adamax(5e-4, beta_1=0.5),
            keras.optimizers.Adamax(5e-4, beta_1=0.5),
        )

    @property
    def trains_generator(self) -> bool:
        return not self._pretraining

    def discriminator_loss(self, real, latents, training=True):
        if not self._pretraining:
            return super().discriminator_loss(real, latents, training=training)
        energy_real, _ = self.compute_energy(real, training=training)
        mean_real = ops.mean(energy_real)
        return mean_real, {"energy_real": mean_real}

    def generator_loss(self, latents, training=True):
        # The official code sums the fake energy of the generator's step (the
        # discriminator already updated, the step's own latents), not the
        # discriminator step's: its aux replaces `energy_fake` in the step's
        # values, so the epoch sum and the logs follow it.
        loss, aux = super().generator_loss(latents, training=training)
        return loss, {**aux, "energy_fake": loss}

    def update_state_variables(self, values: dict) -> dict:
        self.epoch_energy_real_sum.assign_add(values["energy_real"])
        if "energy_fake" in values:
            self.epoch_energy_fake_sum.assign_add(values["energy_fake"])
        self.epoch_batches.assign_add(1.0)
        return {"margin": ops.convert_to_tensor(self.margin)}

    def on_train_begin(self) -> bool:
        # Runs after the state was restored (resume): the phase follows it.
        return self._sync_phase()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> bool:
        """Applies the end-of-epoch rule: pre-training phase or margin update.

        Args:
            epoch: int. Index of the epoch that ended (unused: the phase is
                counted in `pretrained_epochs`, which survives resume).
            logs: dict. The epoch's logs; `margin` is set to the new margin.

        Returns:
            Whether pre-training just ended (the training step must then be
            rebuilt).
        """
        del epoch
        phase_changed = False
        real_sum = float(ops.convert_to_numpy(self.epoch_energy_real_sum))
        fake_sum = float(ops.convert_to_numpy(self.epoch_energy_fake_sum))
        batches = float(ops.convert_to_numpy(self.epoch_batches))
        if batches > 0:
            mean_real = real_sum / batches
            if self._pretraining:
                self.pretrained_epochs.assign(self.pretrained_epochs + 1.0)
                phase_changed = self._sync_phase()
                if phase_changed and self.initial_margin is None:
                    self.margin.assign(mean_real)
            else:
                margin = float(ops.convert_to_numpy(self.margin))
                previous = float(ops.convert_to_numpy(self.previous_energy_fake_sum))
                if mean_real < margin and real_sum < fake_sum and fake_sum >= previous:
                    self.margin.assign(mean_real)
                self.previous_energy_fake_sum.assign(fake_sum)
        for variable in (
            self.epoch_energy_real_sum,
            self.epoch_energy_fake_sum,
            self.epoch_batches,
        ):
            variable.assign(0.0)
        if logs is not None:
            logs["margin"] = float(ops.convert_to_numpy(self.margin))
        return phase_changed

    def _sync_phase(self) -> bool:
        """Sets the training phase from the model state; True if it changed."""
        pretraining = (
            float(ops.convert_to_numpy(self.pretrained_epochs)) < self.pretrain_epochs
        )
        changed = pretraining != self._pretraining
        self._pretraining = pretraining
        return changed

    def get_config(self) -> dict:
        config = super().get_config()
        config["pretrain_epochs"] = self.pretrain_epochs
        return config
