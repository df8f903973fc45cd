"""Encoders for models trained without one: BiGAN's latent-regressor baseline.

`fit_encoder(model, data)` trains an encoder `E` after the fact, with the
model's generator frozen, on `||E(G(z)) - z||^2` for `z` from the model's
prior (the "latent regressor" of Donahue et al., 2017, Table 1), plus, if
asked, an image reconstruction term `||G(E(x)) - x||^2` on real images. The
result, a `LatentRegressor`, has the `encode` / `reconstruct` methods of
`ek.BiGAN`, so every model of the library gets a representation `E(x)` that
can be compared with BiGAN's and with the autoencoder discriminators' codes
(`model.discriminator_code`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ebgan_keras import backend
from ebgan_keras.utils import predict_in_batches

#: What `encode` returns: the codes `E(x)`, or the encoder's hidden features.
ENCODER_FEATURES = ("latents", "hidden")


def encoder_features(
    encoder: keras.Model, images, features: str = "latents", batch_size: int = 256
) -> np.ndarray:
    """Features of images under an encoder: its codes or the layer before them.

    `"hidden"` is the input of the encoder's output layer (for
    `ek.networks.bigan_mlp_encoder`, the last hidden layer after its
    activation): the features the official BiGAN code scores as `NNC_e-`
    (1-NN, Euclidean) and that its README calls the better ones; its MNIST
    1-NN figure of 97.39% (Donahue et al., 2017, Table 1) is of this kind.

    Args:
        encoder: `keras.Model`. Images to latents; for `"hidden"` a
            functional or sequential model whose output layer has one input.
        images: array `(N, H, W, C)`, the encoder's input shape.
        features: str. `"latents"` (`E(x)`, the default) or `"hidden"`.
        batch_size: int. Images per forward pass. Defaults to `256`.

    Returns:
        A float32 numpy array `(N, latent_dim)` or `(N, hidden_units)`.

    Raises:
        ValueError: for an unknown `features`, or `"hidden"` on an encoder
            whose output layer cannot be reached (a subclassed model).

    Example:

    >>> import numpy as np
    >>> from ebgan_keras.networks import bigan_mlp_encoder
    >>> e = bigan_mlp_encoder((8, 8, 1), 4, hidden_units=(16,))
    >>> encoder_features(e, np.zeros((3, 8, 8, 1)), "hidden").shape
    (3, 16)
    """
    if features not in ENCODER_FEATURES:
        raise ValueError(
            f"`features` must be one of {ENCODER_FEATURES}. Received: "
            f"features={features!r}"
        )
    if features == "hidden":
        try:
            hidden = encoder.layers[-1].input
            if isinstance(hidden, (list, tuple)):
                raise ValueError("its output layer takes several inputs")
            encoder = keras.Model(encoder.input, hidden)
        except (AttributeError, IndexError, ValueError) as error:
            raise ValueError(
                "`features='hidden'` needs a functional or sequential `encoder` "
                "whose output layer has one input. Received: encoder "
                f"{getattr(encoder, 'name', encoder)!r} ({error})"
            ) from error
    return predict_in_batches(lambda x: encoder(x, training=False), images, batch_size)


@keras.saving.register_keras_serializable(package="ebgan_keras")
class LatentRegressor(keras.Model):
    """An encoder trained to invert a frozen generator.

    `L = mean_i ||E(G(z_i)) - z_i||^2 + reconstruction_weight * mean_i
    mean_pixels (G(E(x_i)) - x_i)^2`, with `z` from the prior and `x` the
    real batch; only the encoder's variables are trained (the generator runs
    in inference mode and is never updated, even though it is shared with the
    model it came from). `fit` takes real images as `x` (they set the batch
    size, and feed the reconstruction term).

    Args:
        encoder: `keras.Model`. Images `(N, H, W, C)` to latents
            `(N, latent_dim)`.
        generator: `keras.Model`. The frozen generator, latents to images.
        latent_distribution: str. `"normal"` or `"uniform"` (on `[-1, 1]`),
            the generator's prior. Defaults to `"normal"`.
        reconstruction_weight: float. Weight of the image term, `>= 0`.
            Defaults to `0.0` (the latent regressor alone).
        seed: int. Seeds the latents of training. Defaults to `None`.
        **kwargs: other arguments of `keras.Model` (e.g. `name`).

    Example:

    ```python
    import ebgan_keras as ek

    regressor = ek.inversion.fit_encoder(model, images, epochs=2)
    codes = regressor.encode(images)  # (N, latent_dim)
    ```

    Reference:
        - [Donahue et al., 2017](https://arxiv.org/abs/1605.09782)
    """

    def __init__(
        self,
        encoder,
        generator,
        latent_distribution: str = "normal",
        reconstruction_weight: float = 0.0,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Config ===
        self.encoder = encoder
        self.generator = generator
        self.latent_distribution = latent_distribution
        self.reconstruction_weight = float(reconstruction_weight)
        self.seed = seed

        if latent_distribution not in ("normal", "uniform"):
            raise ValueError(
                "`latent_distribution` must be 'normal' or 'uniform'. Received: "
                f"latent_distribution={latent_distribution!r}"
            )
        if not self.reconstruction_weight >= 0:
            raise ValueError(
                "`reconstruction_weight` must be >= 0. Received: "
                f"reconstruction_weight={reconstruction_weight!r}"
            )
        self.latent_dim = int(generator.input_shape[-1])
        self.image_shape = tuple(int(d) for d in generator.output_shape[1:])
        if tuple(encoder.input_shape[1:]) != self.image_shape:
            raise ValueError(
                f"`encoder` must take images of shape (N, "
                f"{', '.join(map(str, self.image_shape))}), the generator's "
                f"output. Received: encoder input shape {encoder.input_shape}"
            )
        if tuple(encoder.output_shape[1:]) != (self.latent_dim,):
            raise ValueError(
                f"`encoder` must return latents of shape (N, {self.latent_dim}) "
                f"(latent_dim={self.latent_dim}, the generator's input). "
                f"Received: encoder output shape {encoder.output_shape}"
            )
        self.seed_generator = keras.random.SeedGenerator(seed, name="seed_generator")
        self._trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("loss", "latent_loss", "reconstruction_loss")
        }
        self.built = True

    @property
    def metrics(self):
        return list(self._trackers.values())

    def call(self, inputs, training=False):
        return self.encoder(inputs, training=training)

    def compile(self, optimizer="adam", **kwargs) -> None:
        """Configures the encoder's optimizer; see `keras.Model.compile`.

        Args:
            optimizer: `keras.optimizers.Optimizer` or its string id.
                Defaults to `"adam"`.
            **kwargs: other arguments of `keras.Model.compile`, except `loss`
                and `metrics` (the model has its own).
        """
        super().compile(optimizer=optimizer, **kwargs)
        # Slots for the encoder only: the generator is never updated.
        self.optimizer.build(self.encoder.trainable_variables)

    def sample_latents(self, num_samples):
        """Latents from the generator's prior, from the model's seed generator."""
        shape = (num_samples, self.latent_dim)
        if self.latent_distribution == "uniform":
            return keras.random.uniform(
                shape, minval=-1.0, maxval=1.0, seed=self.seed_generator
            )
        return keras.random.normal(shape, seed=self.seed_generator)

    def compute_losses(self, real, latents, training: bool = True):
        """`(loss, {"latent_loss", "reconstruction_loss"})` of one batch."""
        fake = ops.stop_gradient(self.generator(latents, training=False))
        codes = self.encoder(fake, training=training)
        latent_loss = ops.mean(ops.sum(ops.square(codes - latents), axis=-1))
        if self.reconstruction_weight:
            again = self.generator(self.encoder(real, training=training))
            reconstruction_loss = ops.mean(ops.square(again - real))
        else:
            reconstruction_loss = ops.zeros((), "float32")
        loss = latent_loss + self.reconstruction_weight * reconstruction_loss
        return loss, {
            "latent_loss": latent_loss,
            "reconstruction_loss": reconstruction_loss,
        }

    def train_step(self, *args):
        return backend.stateful_step(self, self._train_step, *args)

    def _train_step(self, data):
        real, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        real = ops.cast(real, "float32")
        latents = self.sample_latents(ops.shape(real)[0])
        variables = self.encoder.trainable_variables
        loss, aux, gradients = backend.value_and_grad(
            lambda: self.compute_losses(real, latents), variables
        )
        self.optimizer.apply(gradients, variables)
        logs = {}
        for name, value in {"loss": loss, **aux}.items():
            self._trackers[name].update_state(value)
            logs[name] = self._trackers[name].result()
        return logs

    def encode(self, images, batch_size: int = 256, features: str = "latents"):
        """The codes `E(x)` of images, numpy `(N, latent_dim)`.

        `features="hidden"` gives the encoder's last hidden layer instead
        (`ek.inversion.encoder_features`).
        """
        return encoder_features(self.encoder, images, features, batch_size)

    def reconstruct(self, images, batch_size: int = 256):
        """Reconstructions `G(E(x))` of images, numpy of the images' shape."""
        return predict_in_batches(
            lambda x: self.generator(self.encoder(x, training=False), training=False),
            images,
            batch_size,
        )

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "generator": keras.saving.serialize_keras_object(self.generator),
                "latent_distribution": self.latent_distribution,
                "reconstruction_weight": self.reconstruction_weight,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for name in ("encoder", "generator"):
            config[name] = keras.saving.deserialize_keras_object(
                config[name], custom_objects=custom_objects
            )
        return cls(**config)


def fit_encoder(
    model,
    data,
    encoder: keras.Model | None = None,
    epochs: int = 1,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    reconstruction_weight: float = 0.0,
    seed: int = 0,
    verbose: int = 0,
    **fit_kwargs,
) -> LatentRegressor:
    """Trains an encoder that inverts a trained model's generator.

    Args:
        model: a model of the library (`ek.models.BaseGAN`): its generator,
            latent size and prior are used; nothing of it is changed.
        data: numpy array `(N, H, W, C)` of real images in `[-1, 1]`, or a
            `tf.data.Dataset` of batches of them: the batches set the batch
            size and feed the reconstruction term.
        encoder: `keras.Model`. Images to latents. Defaults to
            `ek.networks.bigan_mlp_encoder` for the model's shapes.
        epochs: int. Passes over `data`. Defaults to `1`.
        batch_size: int. Images per batch for a numpy `data`. Defaults to
            `64`.
        learning_rate: float. Adam's learning rate. Defaults to `1e-3`.
        reconstruction_weight: float. Weight of the image term
            `||G(E(x)) - x||^2` (per-pixel mean). Defaults to `0.0`.
        seed: int. Seeds the latents of training. Defaults to `0`.
        verbose: int. `fit`'s verbosity. Defaults to `0`.
        **fit_kwargs: other arguments of `keras.Model.fit`
            (`steps_per_epoch`, `callbacks`, ...).

    Returns:
        The trained `LatentRegressor` (its `history` holds the losses).

    Raises:
        ValueError: if the model has no generator, or the encoder does not
            fit its shapes.

    Example:

    ```python
    import ebgan_keras as ek

    model = ek.zoo.load("gan_mnist")
    pixels = ek.data.load_arrays("mnist")["x_train"]  # uint8 (N, 28, 28)
    images = pixels[..., None].astype("float32") / 127.5 - 1.0
    regressor = ek.inversion.fit_encoder(model, images, epochs=2)
    codes = regressor.encode(images[:100])
    ```
    """
    if not hasattr(model, "generator") or not hasattr(model, "latent_dim"):
        raise ValueError(
            "`model` must be a GAN of the library (with a generator and a "
            f"latent_dim). Received: model={model!r}"
        )
    if encoder is None:
        from ebgan_keras.networks import bigan_mlp_encoder

        encoder = bigan_mlp_encoder(model.image_shape, model.latent_dim)
    regressor = LatentRegressor(
        encoder,
        model.generator,
        latent_distribution=model.latent_distribution,
        reconstruction_weight=reconstruction_weight,
        seed=seed,
    )
    regressor.compile(keras.optimizers.Adam(learning_rate))
    if isinstance(data, np.ndarray):
        # One seeded shuffle; Keras's own shuffling would not follow `seed`.
        data = data[np.random.default_rng(seed).permutation(len(data))]
        fit_kwargs.setdefault("batch_size", batch_size)
        fit_kwargs.setdefault("shuffle", False)
    regressor.fit(data, epochs=epochs, verbose=verbose, **fit_kwargs)
    return regressor


__all__ = ["ENCODER_FEATURES", "LatentRegressor", "encoder_features", "fit_encoder"]
