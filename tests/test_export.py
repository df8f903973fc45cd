"""Samplers exported as TensorFlow SavedModels, checked from a TF-only process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import slow_off_tensorflow
from keras import ops

import ebgan_keras as ek
from ebgan_keras.samplers import ddls

SHAPE = (6, 6, 1)
STEPS = 4
SETTINGS = {"num_steps": STEPS, "step_size": 0.05, "temperature": 2.0}

# Runs in a fresh process that imports TensorFlow only (not keras, not
# ebgan_keras): what a serving process has.
_SERVE = """
import json, sys
import numpy as np
import tensorflow as tf

path, inputs, out = sys.argv[1:4]
data = np.load(inputs)
served = tf.saved_model.load(path)
result = {
    "generate": served.generate(tf.constant(data["z"])).numpy(),
    "energy": served.energy(tf.constant(data["images"])).numpy(),
}
chain = served.ddls_chain(tf.constant(data["z"]), tf.constant(data["noise"]))
result["chain_latents"] = chain["latents"].numpy()
result["chain_images"] = chain["images"].numpy()
for n, seed in ((1, 0), (5, 0), (5, 0), (5, 1)):
    drawn = served.sample(tf.constant(n, tf.int32), tf.constant(seed, tf.int64))
    key = f"sample_{n}_{seed}"
    key += "_again" if key + "_latents" in result else ""
    result[key + "_latents"] = drawn["latents"].numpy()
    result[key + "_images"] = drawn["images"].numpy()
np.savez(out, **result)
print(json.dumps({"ebgan_keras": "ebgan_keras" in sys.modules}))
"""


def tiny_model(latent_distribution: str = "normal"):
    generator = ek.networks.ebgan_mlp_generator(
        latent_dim=4, image_shape=SHAPE, hidden_units=(16,)
    )
    discriminator = ek.networks.ebgan_mlp_discriminator(
        image_shape=SHAPE, encoder_units=(16, 8)
    )
    return ek.EBGANPT(
        generator, discriminator, latent_distribution=latent_distribution, seed=0
    )


def serve(path, inputs: dict, tmp_path) -> dict:
    np.savez(tmp_path / "inputs.npz", **inputs)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _SERVE,
            str(path),
            str(tmp_path / "inputs.npz"),
            str(tmp_path / "out.npz"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"ebgan_keras": false' in done.stdout
    return dict(np.load(tmp_path / "out.npz"))


def python_chain(model, z, noise, temperature):
    """The same DDLS chain in this process, through the library's own code."""
    chain = ddls.build_chain(
        ddls.latent_energy_fn(model, temperature),
        num_steps=len(noise),
        step_size=SETTINGS["step_size"],
        noise_scale=1.0,
        metropolis=False,
        record_energy=False,
        use_fori_loop=False,
    )
    w = ddls.to_chain_space(model, z)
    w = chain(
        ops.convert_to_tensor(w),
        ops.convert_to_tensor(noise),
        ops.zeros((1, 1), "float32"),
    )[0]
    return ddls.from_chain_space(model, ops.convert_to_numpy(w))


@slow_off_tensorflow  # off TF: two TensorFlow subprocesses, in CI's slow step
@pytest.mark.parametrize("latent_distribution", ["normal", "uniform"])
def test_export_round_trip_matches_the_library(latent_distribution, tmp_path):
    """Exported on this backend (via a TensorFlow subprocess off TensorFlow),
    served by TensorFlow alone: the signatures give the library's numbers."""
    if latent_distribution == "uniform" and keras.backend.backend() != "tensorflow":
        pytest.skip("the uniform prior's chain space is checked once, on TF")
    model = tiny_model(latent_distribution)
    path = ek.export(model, tmp_path / "saved", "ddls", SETTINGS)
    rng = np.random.default_rng(0)
    z = ek.utils.prior_latents(latent_distribution, 7, 4, seed=1)
    inputs = {
        "z": z,
        "images": rng.uniform(-1, 1, (3, *SHAPE)).astype("float32"),
        "noise": rng.standard_normal((STEPS, 7, 4)).astype("float32"),
    }
    served = serve(path, inputs, tmp_path)
    np.testing.assert_allclose(served["generate"], model.generate(z), atol=1e-5)
    np.testing.assert_allclose(
        served["energy"], model.energy(inputs["images"]), rtol=1e-5, atol=1e-5
    )
    expected = python_chain(model, z, inputs["noise"], SETTINGS["temperature"])
    np.testing.assert_allclose(served["chain_latents"], expected, atol=1e-4)
    np.testing.assert_allclose(
        served["chain_images"], model.generate(expected), atol=1e-4
    )
    # `sample(n, seed)`: any n, seeded, images = G(latents).
    assert served["sample_1_0_latents"].shape == (1, 4)
    assert served["sample_5_0_images"].shape == (5, *SHAPE)
    np.testing.assert_array_equal(
        served["sample_5_0_latents"], served["sample_5_0_again_latents"]
    )
    assert not np.allclose(served["sample_5_0_latents"], served["sample_5_1_latents"])
    np.testing.assert_allclose(
        served["sample_5_0_images"],
        model.generate(served["sample_5_0_latents"]),
        atol=1e-5,
    )
    if latent_distribution == "uniform":
        assert np.all(np.abs(served["sample_5_0_latents"]) <= 1)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="one zoo export, from TF"
)
def test_zoo_entry_exports_and_saved_model_cli_lists_the_signatures(tmp_path):
    model = ek.zoo.load("ebgan_pt_mnist")
    path = ek.export(model, tmp_path / "entry", "truncation", {"threshold": 0.5})
    z = ek.utils.prior_latents("normal", 3, model.latent_dim, seed=0)
    images = model.generate(z)
    import tensorflow as tf  # noqa: PLC0415 (TF session only)

    served = tf.saved_model.load(str(path))
    np.testing.assert_allclose(served.generate(z).numpy(), images, atol=1e-5)
    drawn = served.sample(tf.constant(2000), tf.constant(0, tf.int64))["latents"]
    drawn = drawn.numpy()
    # The truncated prior: inside the threshold, with the truncated variance
    # (0.0776 for t = 0.5).
    assert np.abs(drawn).max() <= 0.5
    assert abs(drawn.var() - 0.0776) < 0.005
    cli = shutil.which("saved_model_cli") or os.path.join(
        os.path.dirname(sys.executable), "saved_model_cli"
    )
    shown = subprocess.run(
        [cli, "show", "--dir", str(path), "--all"],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr[-2000:]
    for name in ("generate", "energy", "sample"):
        assert f"signature_def['{name}']" in shown.stdout
    assert "ddls_chain" not in shown.stdout


@pytest.mark.parametrize(
    ("sampler", "settings", "match"),
    [
        ("rejection", None, "number of outputs is random"),
        ("mh", None, "cannot be exported"),
        ("langevin", None, "must be one of"),
        ("ddls", {"steps": 3}, r"Unknown setting\(s\) \['steps'\]"),
        ("ddls", {"num_steps": 0}, "num_steps"),
        ("truncation", {"threshold": -1.0}, "threshold"),
    ],
)
def test_bad_export_settings_are_refused_by_name(sampler, settings, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        ek.export(tiny_model(), tmp_path / "x", sampler, settings)
    assert not (tmp_path / "x").exists()


def test_an_existing_path_is_never_replaced(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="must not exist"):
        ek.export(tiny_model(), tmp_path / "x")
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"
