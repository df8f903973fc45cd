"""How the `.keras` files here were written: by release 0.1 (commit 26ed6bf).

Usage, from the root of a checkout of that commit:
`KERAS_BACKEND=tensorflow python tests/data/legacy_v0_1/make_files.py OUT_DIR`.
Each model is tiny, trained 2 epochs of 2 steps, saved with `model.save`;
`expected.json` records what `tests/test_legacy.py` checks after loading.
"""

import json
import os
import sys

import keras
import numpy as np
from keras import ops

import ebgan_keras as ek

out = sys.argv[1]
n = ek.networks


def mlp():
    return (
        n.ebgan_mlp_generator(latent_dim=4, image_shape=(8, 8, 1), hidden_units=(8,)),
        n.ebgan_mlp_discriminator(image_shape=(8, 8, 1), encoder_units=(8, 4)),
    )


configs = {
    "ebgan_pt": lambda: ek.EBGANPT(*mlp(), margin=2.0, seed=1),
    "began": lambda: ek.BEGAN(
        n.began_generator(latent_dim=4, image_size=8, channels=1, filters=2),
        n.began_discriminator(image_size=8, channels=1, filters=2, hidden_dim=4),
        gamma=1.0,
        lambda_k=0.5,
        initial_k=0.2,
        seed=1,
    ),
    "magan": lambda: ek.MAGAN(*mlp(), pretrain_epochs=1, seed=1),
    "gan": lambda: ek.GAN(
        mlp()[0],
        n.gan_mlp_discriminator(image_shape=(8, 8, 1), hidden_units=(8,)),
        seed=1,
    ),
}
rng = np.random.default_rng(0)
images = rng.uniform(-1, 1, (16, 8, 8, 1)).astype("float32")
probe_latents = rng.standard_normal((3, 4)).astype("float32")
probe_images = rng.uniform(-1, 1, (3, 8, 8, 1)).astype("float32")
expected = {
    "backend": keras.backend.backend(),
    "keras": keras.__version__,
    "probe_latents": probe_latents.tolist(),
    "probe_images": probe_images.tolist(),
    "models": {},
}
for name, build in configs.items():
    keras.utils.set_random_seed(0)
    model = build()
    model.compile()
    model.fit(images, batch_size=8, epochs=2, shuffle=False, verbose=0)
    path = os.path.join(out, f"{name}.keras")
    model.save(path)
    record = {
        "class": type(model).__name__,
        "d_iterations": int(ops.convert_to_numpy(model.d_optimizer.iterations)),
        "g_iterations": int(ops.convert_to_numpy(model.g_optimizer.iterations)),
        "iterations": int(ops.convert_to_numpy(model.optimizer.iterations)),
        "weights_sum": [
            float(np.sum(ops.convert_to_numpy(v), dtype="float64"))
            for v in model.weights
        ],
        "d_optimizer_sum": [
            float(np.sum(ops.convert_to_numpy(v), dtype="float64"))
            for v in model.d_optimizer.variables
        ],
        "g_optimizer_sum": [
            float(np.sum(ops.convert_to_numpy(v), dtype="float64"))
            for v in model.g_optimizer.variables
        ],
        "generated": np.round(model.generate(probe_latents).reshape(3, -1), 6).tolist(),
        "energy": model.energy(probe_images).astype("float64").tolist(),
    }
    for state in ("k", "margin", "pretrained_epochs"):
        if hasattr(model, state):
            record[state] = float(ops.convert_to_numpy(getattr(model, state)))
    expected["models"][name] = record
    print(name, os.path.getsize(path))
with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expected, f, separators=(",", ":"))
