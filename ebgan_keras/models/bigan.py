"""BiGAN and BigBiGAN: a generator, an encoder and a joint discriminator D(x, z)."""

from __future__ import annotations

import keras
from keras import ops

from ebgan_keras import backend
from ebgan_keras.models.base import BaseGAN
from ebgan_keras.models.base import describe_outputs
from ebgan_keras.utils import predict_in_batches

#: The losses of the joint game, by name.
LOSSES = ("logistic", "hinge")
#: The score terms: BiGAN's joint `s_xz`; BigBiGAN's unary `s_x`, `s_z` too.
JOINT_TERMS = ("xz",)
UNARY_TERMS = ("x", "z", "xz")


def discriminator_term_loss(score_real, score_fake, loss: str):
    """The discriminator's loss on one score term, encoder pairs labelled real.

    Args:
        score_real: tensor `(N,)`. Scores of `(x, E(x))`.
        score_fake: tensor `(N,)`. Scores of `(G(z), z)`.
        loss: str. `"logistic"`: `mean softplus(-s_real) + mean
            softplus(s_fake)` (BiGAN's cross-entropy); `"hinge"`:
            `mean relu(1 - s_real) + mean relu(1 + s_fake)` (BigBiGAN's).

    Returns:
        A float32 scalar.
    """
    if loss == "hinge":
        return ops.mean(ops.relu(1.0 - score_real)) + ops.mean(
            ops.relu(1.0 + score_fake)
        )
    return ops.mean(ops.softplus(-score_real)) + ops.mean(ops.softplus(score_fake))


def encoder_generator_term_loss(score_real, score_fake, loss: str):
    """The generator's and encoder's loss on one term: the labels inverted.

    Args:
        score_real: tensor `(N,)`. Scores of `(x, E(x))`.
        score_fake: tensor `(N,)`. Scores of `(G(z), z)`.
        loss: str. `"logistic"`: `mean softplus(s_real) + mean
            softplus(-s_fake)` (the non-saturating form of BiGAN's inverted
            labels); `"hinge"`: `mean s_real - mean s_fake` (BigBiGAN's
            `l_EG`).

    Returns:
        A float32 scalar.
    """
    if loss == "hinge":
        return ops.mean(score_real) - ops.mean(score_fake)
    return ops.mean(ops.softplus(score_real)) + ops.mean(ops.softplus(-score_fake))


@keras.saving.register_keras_serializable(package="ebgan_keras")
class BiGAN(BaseGAN):
    """BiGAN (Donahue et al., 2017) and BigBiGAN's joint game (2019).

    A generator `G(z)`, an encoder `E(x)` and a joint discriminator `D(x, z)`
    that tells encoder pairs `(x, E(x))` (labelled real) from generator pairs
    `(G(z), z)` (labelled fake); `G` and `E` are trained together, in one
    step, on the inverted labels. At the game's optimum `E` inverts `G`, so
    `encode(x)` is a representation learned without labels and
    `reconstruct(x) = G(E(x))`. (Dumoulin et al.'s ALI is the same game.)

    With `unary_terms=True`, `D` returns BigBiGAN's three scores
    `[s_x(x), s_z(z), s_xz(x, z)]` (an `x` trunk, a `z` trunk and a joint
    head, `ek.networks.bigan_mlp_discriminator(unary_terms=True)`), and the
    loss is applied to each term and summed; the model's score of a pair is
    `s_x + s_z + s_xz`. The loss is BigBiGAN's hinge by default there
    (`L_D = sum_t mean relu(1 - s_t(x, E(x))) + mean relu(1 + s_t(G(z), z))`,
    `L_EG = sum_t mean s_t(x, E(x)) - mean s_t(G(z), z)`), BiGAN's logistic
    loss otherwise; either can be chosen with `adversarial_loss`.

    The encoder has its own optimizer, `e_optimizer` in `compile`; by
    default a copy of the generator's with `encoder_learning_rate_multiplier`
    (10) times its learning rate, which BigBiGAN found to help. The three
    optimizers are carried in `model.optimizer`, so all three move on every
    backend. The energy of an image is `-s(x, E(x))`, its score with its own
    code (low = looks real), so the latent samplers work on the model.

    Args:
        generator: `keras.Model`. Maps latents `(N, latent_dim)` to images.
        discriminator: `keras.Model`. Maps `[images, latents]` to one score
            per pair, `(N, 1)`, or with `unary_terms` to `[s_x, s_z, s_xz]`.
        encoder: `keras.Model`. Maps images to latents `(N, latent_dim)`.
        unary_terms: bool. BigBiGAN's unary scores. Defaults to `False`.
        adversarial_loss: str. `"logistic"` or `"hinge"`. Defaults to
            `"hinge"` with `unary_terms`, `"logistic"` without.
        encoder_learning_rate_multiplier: float. The default encoder
            optimizer's learning rate over the generator's. Defaults to
            `10.0`.
        latent_dim: int. Defaults to the generator's input size.
        latent_distribution: str. `"normal"` or `"uniform"`. Defaults to
            `"normal"`.
        seed: int. Seeds every latent drawn in training. Defaults to `None`.

    Example:

    ```python
    import ebgan_keras as ek

    model = ek.BiGAN(
        generator=ek.networks.ebgan_mlp_generator(latent_dim=64),
        discriminator=ek.networks.bigan_mlp_discriminator(latent_dim=64),
        encoder=ek.networks.bigan_mlp_encoder(latent_dim=64),
        seed=0,
    )
    model.compile()  # Adam(2e-4, beta_1=0.5); the encoder's at 2e-3
    model.fit(images, epochs=5, batch_size=64)  # images in [-1, 1]
    codes = model.encode(images)  # (N, 64)
    ```

    Reference:
        - [Donahue et al., 2017](https://arxiv.org/abs/1605.09782)
        - [Dumoulin et al., 2017](https://arxiv.org/abs/1606.00704)
        - [Donahue and Simonyan, 2019](https://arxiv.org/abs/1907.02544)
    """

    generator_loss_takes_real = True
    network_roles = ("generator", "discriminator", "encoder")
    tracked_logs = BaseGAN.tracked_logs + ("d_loss_x", "d_loss_z", "d_loss_xz")

    def __init__(
        self,
        generator,
        discriminator,
        encoder,
        unary_terms: bool = False,
        adversarial_loss: str | None = None,
        encoder_learning_rate_multiplier: float = 10.0,
        **kwargs,
    ):
        # === Config === (before the base: its discriminator check reads them)
        self.unary_terms = bool(unary_terms)
        self.adversarial_loss = adversarial_loss or (
            "hinge" if self.unary_terms else "logistic"
        )
        if self.adversarial_loss not in LOSSES:
            raise ValueError(
                f"`adversarial_loss` must be one of {LOSSES}. Received: "
                f"adversarial_loss={adversarial_loss!r}"
            )
        multiplier = encoder_learning_rate_multiplier
        if isinstance(multiplier, bool) or not (
            isinstance(multiplier, (int, float)) and 0 < multiplier < float("inf")
        ):
            raise ValueError(
                "`encoder_learning_rate_multiplier` must be a positive number. "
                f"Received: encoder_learning_rate_multiplier={multiplier!r}"
            )
        self.encoder_learning_rate_multiplier = float(multiplier)
        super().__init__(generator, discriminator, **kwargs)
        if not isinstance(encoder, keras.Layer):
            raise TypeError(
                f"`encoder` must be a Keras model. Received: encoder={encoder!r}"
            )
        self.encoder = encoder
        self._check_encoder(encoder)
        self.e_optimizer = None

    @property
    def terms(self) -> tuple:
        """The score terms of the game: `("xz",)`, or `("x", "z", "xz")`."""
        return UNARY_TERMS if self.unary_terms else JOINT_TERMS

    # ------------------------------------------------------------------
    # Public API
    # ------------------------------------------------------------------
    def compile(
        self, d_optimizer=None, g_optimizer=None, e_optimizer=None, **kwargs
    ) -> None:
        """Configures the three optimizers and how the training step runs.

        Args:
            d_optimizer: `keras.optimizers.Optimizer` or its string id.
                Defaults to `Adam(2e-4, beta_1=0.5)`.
            g_optimizer: `keras.optimizers.Optimizer` or its string id.
                Defaults to `Adam(2e-4, beta_1=0.5)`.
            e_optimizer: `keras.optimizers.Optimizer` or its string id.
                Updates the encoder. Defaults to a copy of `g_optimizer`
                whose learning rate is `encoder_learning_rate_multiplier`
                times the generator's.
            **kwargs: `steps_per_execution`, `jit_compile`, `run_eagerly`
                and the other arguments of `ek.models.BaseGAN.compile`.

        Raises:
            ValueError: if `e_optimizer` is left out and the generator's
                learning rate is a schedule (it cannot be multiplied).
        """
        if g_optimizer is None:
            g_optimizer = self.default_optimizers()[1]
        g_optimizer = keras.optimizers.get(g_optimizer)
        if e_optimizer is None:
            config = g_optimizer.get_config()
            rate = config.get("learning_rate")
            if not isinstance(rate, (int, float)):
                raise ValueError(
                    "BiGAN cannot derive the encoder's optimizer from a "
                    "generator learning-rate schedule: pass `e_optimizer`. "
                    f"Received: g_optimizer learning_rate={rate!r}"
                )
            config["learning_rate"] = rate * self.encoder_learning_rate_multiplier
            config["name"] = "encoder_" + str(config.get("name", "optimizer"))
            e_optimizer = type(g_optimizer).from_config(config)
        self.e_optimizer = keras.optimizers.get(e_optimizer)
        super().compile(d_optimizer, g_optimizer, **kwargs)

    def encode(self, images, batch_size: int = 256, features: str = "latents"):
        """The encoder's codes `E(x)` of images.

        Args:
            images: array `(N, H, W, C)` of float images in `[-1, 1]`, the
                generator's image shape.
            batch_size: int. Images per forward pass. Defaults to `256`.
            features: str. `"latents"` (`E(x)`, the default) or `"hidden"`
                (the encoder's last hidden layer, the features the official
                BiGAN code's MNIST 1-NN scores; see
                `ek.inversion.encoder_features`).

        Returns:
            A float32 numpy array `(N, latent_dim)` (or `(N, hidden_units)`).

        Raises:
            ValueError: if the images do not have the generator's shape, or
                for an unknown `features`.
        """
        from ebgan_keras.inversion import encoder_features

        images = self._check_image_array(images, "images", check_range=False)
        return encoder_features(self.encoder, images, features, batch_size)

    def reconstruct(self, images, batch_size: int = 256):
        """Reconstructions `G(E(x))` of images.

        Args:
            images: array `(N, H, W, C)` of float images in `[-1, 1]`.
            batch_size: int. Images per forward pass. Defaults to `256`.

        Returns:
            A numpy array of the images' shape.

        Raises:
            ValueError: if the images do not have the generator's shape.
        """
        images = self._check_image_array(images, "images", check_range=False)
        return predict_in_batches(
            lambda x: self.generator(self.encoder(x, training=False), training=False),
            images,
            batch_size,
        )

    # ------------------------------------------------------------------
    # Hooks of the base
    # ------------------------------------------------------------------
    def check_discriminator(self, discriminator) -> None:
        shapes = ((None, *self.image_shape), (None, self.latent_dim))
        try:
            outputs = discriminator.compute_output_spec(
                [keras.KerasTensor(shape, "float32") for shape in shapes]
            )
        except Exception as error:  # noqa: BLE001 - re-raised with context
            raise ValueError(
                "BiGAN's `discriminator` must take [images, latents] of shapes "
                f"{shapes[0]} and {shapes[1]}. Received: a discriminator that "
                f"fails on them: {error}"
            ) from error
        expected = len(self.terms)
        outputs_list = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        if len(outputs_list) != expected or any(
            tuple(output.shape[1:]) not in ((), (1,)) for output in outputs_list
        ):
            wanted = (
                "three scores [s_x, s_z, s_xz], each (N, 1)"
                if self.unary_terms
                else "one score per pair, (N, 1)"
            )
            raise ValueError(
                f"BiGAN's `discriminator` with unary_terms={self.unary_terms} "
                f"must return {wanted}. Received: discriminator output "
                f"{describe_outputs(outputs)}"
            )

    def _check_encoder(self, encoder) -> None:
        shape = (None, *self.image_shape)
        try:
            codes = encoder.compute_output_spec(keras.KerasTensor(shape, "float32"))
        except Exception as error:  # noqa: BLE001 - re-raised with context
            raise ValueError(
                f"BiGAN's `encoder` must take images of shape {shape}, the "
                f"generator's output. Received: an encoder that fails on them: "
                f"{error}"
            ) from error
        if isinstance(codes, (list, tuple)) or tuple(codes.shape[1:]) != (
            self.latent_dim,
        ):
            raise ValueError(
                f"BiGAN's `encoder` must map images to latents of shape "
                f"(N, {self.latent_dim}) (latent_dim={self.latent_dim}, the "
                f"generator's input). Received: encoder output "
                f"{describe_outputs(codes)}"
            )

    def joint_scores(self, images, latents, training: bool = False) -> dict:
        """The discriminator's scores of pairs `(x, z)`, by term.

        Args:
            images: tensor `(N, H, W, C)`.
            latents: tensor `(N, latent_dim)`.
            training: bool. Run the discriminator in training mode.

        Returns:
            A dict `{term: float32 (N,)}` over `terms`.
        """
        pair = [ops.convert_to_tensor(images), ops.convert_to_tensor(latents)]
        outputs = self.discriminator(pair, training=training)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return {
            term: ops.cast(ops.reshape(output, (-1,)), "float32")
            for term, output in zip(self.terms, outputs)
        }

    def compute_energy(self, images, training: bool = False):
        """Energy `-s(x, E(x))` (all terms summed) and the codes `E(x)`."""
        codes = self.encoder(images, training=training)
        scores = self.joint_scores(images, codes, training=training)
        return -sum(scores.values()), codes

    def discriminator_loss(self, real, latents, training=True):
        codes = ops.stop_gradient(self.encoder(real, training=training))
        fake = ops.stop_gradient(self.generator(latents, training=training))
        scores_real = self.joint_scores(real, codes, training=training)
        scores_fake = self.joint_scores(fake, latents, training=training)
        term_losses = {
            term: discriminator_term_loss(
                scores_real[term], scores_fake[term], self.adversarial_loss
            )
            for term in self.terms
        }
        aux = {
            "energy_real": -ops.mean(sum(scores_real.values())),
            "energy_fake": -ops.mean(sum(scores_fake.values())),
        }
        if self.unary_terms:
            aux.update({f"d_loss_{term}": term_losses[term] for term in self.terms})
        return sum(term_losses.values()), aux

    def generator_loss(self, latents, training=True, real=None):
        codes = self.encoder(real, training=training)
        fake = self.generator(latents, training=training)
        scores_real = self.joint_scores(real, codes, training=training)
        scores_fake = self.joint_scores(fake, latents, training=training)
        loss = sum(
            encoder_generator_term_loss(
                scores_real[term], scores_fake[term], self.adversarial_loss
            )
            for term in self.terms
        )
        return loss, {}

    @property
    def generator_variables(self) -> list:
        """What the generator step trains: the generator's and the encoder's."""
        return self.generator.trainable_variables + self.encoder.trainable_variables

    @property
    def extra_optimizers(self) -> dict:
        """`{"e_optimizer": (e_optimizer, the encoder's variables)}` once compiled."""
        if self.e_optimizer is None:
            return {}
        return {"e_optimizer": (self.e_optimizer, self.encoder.trainable_variables)}

    def apply_generator_gradients(self, gradients: list, variables: list) -> None:
        """Generator gradients to `g_optimizer`, encoder gradients to `e_optimizer`."""
        encoder_ids = {id(variable) for variable in self.encoder.trainable_variables}
        routed = {True: ([], []), False: ([], [])}
        for gradient, variable in zip(gradients, variables):
            part = routed[id(variable) in encoder_ids]
            part[0].append(gradient)
            part[1].append(variable)
        backend.apply_gradients(self.g_optimizer, *routed[False])
        backend.apply_gradients(self.e_optimizer, *routed[True])

    # ------------------------------------------------------------------
    # Saving
    # ------------------------------------------------------------------
    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "unary_terms": self.unary_terms,
                "adversarial_loss": self.adversarial_loss,
                "encoder_learning_rate_multiplier": (
                    self.encoder_learning_rate_multiplier
                ),
            }
        )
        return config


__all__ = ["BiGAN", "discriminator_term_loss", "encoder_generator_term_loss"]
