"""EBGAN-LN: a ladder network as EBGAN's energy, for semi-supervised learning."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ebgan_keras.models.base import BaseGAN
from ebgan_keras.networks.ladder import LadderNetwork
from ebgan_keras.utils import predict_in_batches


@keras.saving.register_keras_serializable(package="ebgan_keras")
class EBGANLN(BaseGAN):
    """EBGAN-LN: a semi-supervised ladder network trained as EBGAN's critic.

    Zhao, Mathieu and LeCun (2017), section 4.2 and Table 2: the energy of an
    image is the ladder network's unsupervised (denoising) cost, the labelled
    rows add their cross-entropy, and generated images are contrastive data
    pushed above a margin that decays toward 0 during training:

    `L_D = CE(labelled) + mean_u E(x_u) + mean_i max(0, m_t - E(G(z_i)))`,
    `L_G = mean_i E(G(z_i))`.

    With `margin=None` it is the plain ladder network (LN): the generator is
    neither used nor trained and `L_D = CE(labelled) + mean_u E(x_u)`.

    A batch is `(images, labels)` with `labels == -1` on the unlabelled rows
    (`ek.data.semi_supervised.SemiSupervisedBatches` makes them); images are
    pixels in `[0, 1]`. The margin is model state, set by the epoch hook:
    `m_t = margin + (final_margin - margin) * clip((t - margin_decay_start) /
    margin_decay_epochs, 0, 1)` after `t` epochs.

    Args:
        generator: `keras.Model`. Latents to images in `[0, 1]`.
        discriminator: `ek.networks.LadderNetwork`.
        margin: float or None. The initial margin (in the units of the
            ladder's weighted cost). `None` trains the plain ladder. Defaults
            to `None`.
        final_margin: float. The margin at the end of the decay. Defaults to
            `0.0`.
        margin_decay_epochs: int. Epochs of the linear decay. Defaults to `1`.
        margin_decay_start: int. Epochs before the decay starts. Defaults to
            `0`.
        latent_dim: int. Defaults to the generator's input size.
        latent_distribution: str. Defaults to `"uniform"`.
        seed: int. Seeds every latent drawn in training. Defaults to `None`.

    Example:

    ```python
    import ebgan_keras as ek

    data = ek.data.semi_supervised.load_pi_mnist(num_labels=100, seed=0)
    model = ek.semi_supervised.ebgan_ln(num_labels=100, seed=0)
    model.compile()
    model.fit(ek.data.semi_supervised.SemiSupervisedBatches(data, seed=0), epochs=1)
    error = model.error_rate(data["x_test"], data["y_test"])
    ```

    Reference:
        - [Zhao et al., 2017](https://arxiv.org/abs/1609.03126)
        - [Rasmus et al., 2015](https://arxiv.org/abs/1507.02672)
    """

    default_latent_distribution = "uniform"
    tracked_logs = (
        "d_loss",
        "g_loss",
        "class_loss",
        "error",
        "energy_real",
        "energy_fake",
    )
    state_logs = ("margin",)

    def __init__(
        self,
        generator,
        discriminator,
        margin=None,
        final_margin=0.0,
        margin_decay_epochs=1,
        margin_decay_start=0,
        latent_dim=None,
        latent_distribution=None,
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
        self.initial_margin = None if margin is None else float(margin)
        self.final_margin = float(final_margin)
        self.margin_decay_epochs = int(margin_decay_epochs)
        self.margin_decay_start = int(margin_decay_start)
        if self.initial_margin is not None and not (
            np.isfinite(self.initial_margin) and self.initial_margin >= 0
        ):
            raise ValueError(
                "EBGANLN: `margin` must be a finite number >= 0 or None (the "
                f"plain ladder). Received: margin={margin!r}"
            )
        if self.margin_decay_epochs < 1:
            raise ValueError(
                "EBGANLN: `margin_decay_epochs` must be >= 1. Received: "
                f"margin_decay_epochs={margin_decay_epochs!r}"
            )
        self.margin = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_margin or 0.0),
            trainable=False,
            name="margin",
        )

    def default_optimizers(self) -> tuple:
        """Adam(2e-3) for the ladder (the official code's), Adam(1e-3, 0.5) for G."""
        return (
            keras.optimizers.Adam(2e-3),
            keras.optimizers.Adam(1e-3, beta_1=0.5),
        )

    def check_discriminator(self, discriminator) -> None:
        if not isinstance(discriminator, LadderNetwork):
            raise TypeError(
                "EBGANLN's `discriminator` must be an "
                "`ek.networks.LadderNetwork`. Received: "
                f"discriminator={discriminator!r}"
            )
        if discriminator.image_shape != self.image_shape:
            raise ValueError(
                f"The ladder's input_shape {discriminator.image_shape} must be "
                f"the generator's image shape {self.image_shape}. Received: "
                f"discriminator with input_shape={discriminator.image_shape}"
            )

    @property
    def trains_generator(self) -> bool:
        return self.initial_margin is not None

    def margin_at(self, epochs_done: int) -> float:
        """The margin after `epochs_done` epochs (the decay schedule).

        Args:
            epochs_done: int. Completed epochs.

        Returns:
            float. The margin (0 for the plain ladder).
        """
        if self.initial_margin is None:
            return 0.0
        progress = (epochs_done - self.margin_decay_start) / self.margin_decay_epochs
        progress = min(max(progress, 0.0), 1.0)
        return self.initial_margin + (self.final_margin - self.initial_margin) * (
            progress
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> bool:
        value = self.margin_at(epoch + 1)
        self.margin.assign(value)
        if logs is not None:
            logs["margin"] = value
        return False  # the step reads the margin variable: no retrace

    # ------------------------------------------------------------------
    # Loss hooks
    # ------------------------------------------------------------------
    def compute_energy(self, images, training: bool = False):
        """Per-sample energy (the ladder's weighted denoising cost) and class
        probabilities."""
        costs = self.discriminator.costs(images, training=training)
        return costs["energy"], costs["probabilities"]

    def discriminator_loss(self, real, latents, training=True):
        images, labels = self._split(real)
        labelled = ops.cast(labels >= 0, "float32")
        unlabelled = 1.0 - labelled
        costs = self.discriminator.costs(images, labelled, training=training)
        classes = ops.shape(costs["log_probabilities"])[-1]
        one_hot = ops.one_hot(ops.maximum(labels, 0), classes)
        cross_entropy = -ops.sum(one_hot * costs["log_probabilities"], axis=-1)
        class_loss = _masked_mean(cross_entropy, labelled)
        wrong = ops.cast(
            ops.not_equal(
                ops.cast(ops.argmax(costs["probabilities"], axis=-1), "int32"),
                ops.maximum(labels, 0),
            ),
            "float32",
        )
        energy_real = _masked_mean(costs["energy"], unlabelled)
        loss = class_loss + energy_real
        aux = {
            "class_loss": class_loss,
            "error": 100.0 * _masked_mean(wrong, labelled),
            "energy_real": energy_real,
        }
        if self.trains_generator:
            fake = ops.stop_gradient(self.generator(latents, training=training))
            energy_fake = self.discriminator.costs(
                fake, training=training, update_statistics=False
            )["energy"]
            # The hinge per sample, then the mean (SPEC: not of the mean).
            loss = loss + ops.mean(ops.relu(self.margin - energy_fake))
            aux["energy_fake"] = ops.mean(energy_fake)
        return loss, aux

    def generator_loss(self, latents, training=True):
        fake = self.generator(latents, training=training)
        energy_fake = self.discriminator.costs(
            fake, training=training, update_statistics=False
        )["energy"]
        return ops.mean(energy_fake), {}

    # ------------------------------------------------------------------
    # Classifier
    # ------------------------------------------------------------------
    def classify(self, images, batch_size: int = 500) -> np.ndarray:
        """Class probabilities of the clean ladder (moving batch statistics).

        Args:
            images: array `(N, *image_shape)` or `(N, prod(image_shape))` of
                pixels in `[0, 1]`.
            batch_size: int. Rows per forward pass. Defaults to `500`.

        Returns:
            float32 numpy `(N, classes)`.
        """
        images = np.asarray(images, "float32").reshape((-1, *self.image_shape))
        return predict_in_batches(
            lambda x: self.discriminator(x, training=False), images, batch_size
        )

    def error_rate(self, images, labels, batch_size: int = 500) -> float:
        """Test error in percent of the clean ladder on labelled images.

        Args:
            images: array of pixels in `[0, 1]`, as for `classify`.
            labels: int array `(N,)`.
            batch_size: int. Rows per forward pass. Defaults to `500`.

        Returns:
            float. `100 * mean(argmax != label)`.
        """
        labels = np.asarray(labels).reshape(-1)
        predicted = self.classify(images, batch_size).argmax(axis=-1)
        if len(predicted) != len(labels):
            raise ValueError(
                f"`labels` must have one label per image ({len(predicted)}). "
                f"Received: {len(labels)} labels"
            )
        return float(100.0 * np.mean(predicted != labels))

    # ------------------------------------------------------------------
    def _unpack_images(self, data):
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        shape = tuple(images.shape)
        if tuple(shape[1:]) != self.image_shape or labels is None:
            raise ValueError(
                "EBGANLN trains on batches `(images, labels)`: images of shape "
                f"(batch, {', '.join(map(str, self.image_shape))}) and labels "
                f"(-1 = unlabelled). Received: images of shape {shape}, "
                f"labels={'None' if labels is None else tuple(labels.shape)}"
            )
        # `-1` for the batch axis: it is unknown (None) in a traced step.
        pixels = int(np.prod(self.image_shape))
        flat = ops.reshape(ops.cast(images, "float32"), (-1, pixels))
        labels = ops.reshape(ops.cast(labels, "float32"), (-1, 1))
        # One tensor (pixels, label) per row: the base step passes one batch.
        return ops.concatenate([flat, labels], axis=1)

    def _split(self, real):
        images = ops.reshape(real[:, :-1], (ops.shape(real)[0], *self.image_shape))
        labels = ops.cast(ops.round(real[:, -1]), "int32")
        return images, labels

    def fit(self, x=None, y=None, *args, **kwargs):
        """Trains on `(images, labels)` batches; see `BaseGAN.fit`.

        `x` is an `ek.data.semi_supervised.SemiSupervisedBatches` (or any
        Keras data source of `(images, labels)` batches, `-1` for unlabelled
        rows); numpy images must come with `y`.
        """
        if isinstance(x, np.ndarray) and y is None:
            raise ValueError(
                "EBGANLN.fit needs labels: pass `y` (-1 for unlabelled rows) "
                "or `ek.data.semi_supervised.SemiSupervisedBatches`. Received: y=None"
            )
        return super().fit(x, y, *args, **kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "margin": self.initial_margin,
                "final_margin": self.final_margin,
                "margin_decay_epochs": self.margin_decay_epochs,
                "margin_decay_start": self.margin_decay_start,
            }
        )
        return config


def _masked_mean(values, mask):
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)


@keras.saving.register_keras_serializable(package="ebgan_keras")
class LinearDecayAfter(keras.optimizers.schedules.LearningRateSchedule):
    """A constant learning rate, then a linear decay to 0 (the ladder's).

    The official ladder code trains 150 epochs at `2e-3` and decays it
    linearly to 0 over the last third (`--lrate-decay 0.67`).

    Args:
        initial_learning_rate: float. The rate before the decay.
        decay_start: int. Step where the decay starts.
        decay_steps: int. Steps of the decay (the rate is 0 after them).

    Example:

    >>> schedule = LinearDecayAfter(2e-3, decay_start=100, decay_steps=50)
    >>> round(float(schedule(125)), 6)
    0.001
    """

    def __init__(self, initial_learning_rate, decay_start, decay_steps):
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_start = int(decay_start)
        self.decay_steps = max(int(decay_steps), 1)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        progress = ops.clip((step - self.decay_start) / self.decay_steps, 0.0, 1.0)
        return self.initial_learning_rate * (1.0 - progress)

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_start": self.decay_start,
            "decay_steps": self.decay_steps,
        }


__all__ = ["EBGANLN", "LinearDecayAfter"]
