"""One training step under the current backend, for the cross-backend parity test.

Usage: `KERAS_BACKEND=jax python tests/parity_step.py OUT_DIR [WEIGHTS_DIR]`.
Builds each model with the same deterministic weights and latents on every
backend, runs one `fit` step with SGD, and writes the losses, the updated
variables and generated images to `OUT_DIR/<name>.npz` and the weights to
`OUT_DIR/<name>.weights.h5`. With `WEIGHTS_DIR`, it also loads the weights
written there (by another backend) and records the images they generate.
"""

from __future__ import annotations

import os
import sys

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from helpers import fixed_latent_class  # noqa: E402

import ebgan_keras as ek  # noqa: E402

BATCH = 8


def configs():
    n = ek.networks
    return {
        "ebgan_pt_mlp": lambda: fixed_latent_class(ek.EBGANPT)(
            n.ebgan_mlp_generator(
                latent_dim=6, image_shape=(8, 8, 1), hidden_units=(16,)
            ),
            n.ebgan_mlp_discriminator(image_shape=(8, 8, 1), encoder_units=(16, 8)),
            margin=3.0,
        ),
        "ebgan_pt_conv": lambda: fixed_latent_class(ek.EBGANPT)(
            n.dcgan_generator(latent_dim=6, image_size=16, channels=1, filters=4),
            n.ebgan_conv_discriminator(image_size=16, channels=1, filters=(4, 8)),
            margin=1.0,
            energy_reduction="mean",
        ),
        "began": lambda: fixed_latent_class(ek.BEGAN)(
            n.began_generator(latent_dim=6, image_size=8, channels=1, filters=4),
            n.began_discriminator(image_size=8, channels=1, filters=4, hidden_dim=6),
            initial_k=0.3,
            lambda_k=0.1,
        ),
        "magan": lambda: fixed_latent_class(ek.MAGAN)(
            n.ebgan_mlp_generator(
                latent_dim=6, image_shape=(8, 8, 1), hidden_units=(16,)
            ),
            n.ebgan_mlp_discriminator(image_shape=(8, 8, 1), encoder_units=(16, 8)),
            margin=40.0,
            pretrain_epochs=0,
        ),
        # The critic family: the gradient penalty's gradient of a gradient.
        "wgan_gp": lambda: fixed_latent_class(ek.WGANGP)(
            n.ebgan_mlp_generator(
                latent_dim=6, image_shape=(8, 8, 1), hidden_units=(16,)
            ),
            n.gan_mlp_discriminator(image_shape=(8, 8, 1), hidden_units=(16, 8)),
            critic_steps=2,
        ),
        # Three optimizers: the encoder's moves in the generator's step.
        "bigan": lambda: fixed_latent_class(ek.BiGAN)(
            n.ebgan_mlp_generator(
                latent_dim=6, image_shape=(8, 8, 1), hidden_units=(16,)
            ),
            n.bigan_mlp_discriminator((8, 8, 1), 6, (16,), (8,), (16,)),
            n.bigan_mlp_encoder((8, 8, 1), 6, hidden_units=(16,)),
        ),
        "bigbigan": lambda: fixed_latent_class(ek.BiGAN)(
            n.ebgan_mlp_generator(
                latent_dim=6, image_shape=(8, 8, 1), hidden_units=(16,)
            ),
            n.bigan_mlp_discriminator(
                (8, 8, 1), 6, (16,), (8,), (16,), unary_terms=True
            ),
            n.bigan_mlp_encoder((8, 8, 1), 6, hidden_units=(16,)),
            unary_terms=True,
        ),
        "loss_sensitive_gan": lambda: fixed_latent_class(ek.LossSensitiveGAN)(
            n.dcgan_generator(latent_dim=6, image_size=16, channels=1, filters=4),
            n.dcgan_critic(image_size=16, channels=1, filters=(4, 8)),
            tau=0.02,
        ),
    }


def deterministic_model(name):
    model = configs()[name]()
    rng = np.random.default_rng(123)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(scale=0.2, size=variable.shape).astype("float32"))
    model.fixed_latents = rng.normal(size=(BATCH, model.latent_dim)).astype("float32")
    images = rng.uniform(-1, 1, (BATCH, *model.image_shape)).astype("float32")
    probe = rng.normal(size=(3, model.latent_dim)).astype("float32")
    model.fixed_mix = rng.uniform(size=(BATCH,)).astype("float32")
    return model, images, probe


def main(out_dir: str, weights_dir: str | None = None) -> None:
    os.makedirs(out_dir, exist_ok=True)
    for name in configs():
        model, images, probe = deterministic_model(name)
        optimizers = {
            "d_optimizer": keras.optimizers.SGD(0.05),
            "g_optimizer": keras.optimizers.SGD(0.05),
        }
        if isinstance(model, ek.BiGAN):
            optimizers["e_optimizer"] = keras.optimizers.SGD(0.2)
        model.compile(**optimizers)
        history = model.fit(
            images, batch_size=BATCH, epochs=1, shuffle=False, verbose=0
        )
        record = {f"log_{k}": np.float32(v[-1]) for k, v in history.history.items()}
        for i, variable in enumerate(model.weights):
            if variable is not model.seed_generator.state:
                record[f"var_{i}"] = keras.ops.convert_to_numpy(variable)
        record["images"] = model.generate(probe)
        model.save_weights(os.path.join(out_dir, f"{name}.weights.h5"))
        if weights_dir:
            other, _, _ = deterministic_model(name)
            other.load_weights(os.path.join(weights_dir, f"{name}.weights.h5"))
            record["loaded_images"] = other.generate(probe)
        np.savez(os.path.join(out_dir, f"{name}.npz"), **record)


if __name__ == "__main__":
    main(*sys.argv[1:])
