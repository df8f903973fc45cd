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


# Serves the three exports of a zoo entry in a TensorFlow-only process: the
# prior's and truncation's generator on given latents, truncation's own draw,
# DDLS's chain from given latents and noise.
_SERVE_ENTRY = """
import sys
import numpy as np
import tensorflow as tf

folder, inputs, out = sys.argv[1:4]
data = np.load(inputs)
result = {}
for name in ("none", "truncation"):
    served = tf.saved_model.load(f"{folder}/{name}")
    result[name] = served.generate(tf.constant(data[name + "_latents"])).numpy()
drawn = served.sample(tf.constant(4000), tf.constant(0, tf.int64))["latents"]
result["truncation_drawn"] = drawn.numpy()
served = tf.saved_model.load(f"{folder}/ddls")
chain = served.ddls_chain(tf.constant(data["ddls_z"]), tf.constant(data["ddls_noise"]))
result["ddls"] = chain["images"].numpy()
np.savez(out, **result)
"""


@slow_off_tensorflow  # off TF: three TensorFlow subprocesses, in CI's slow step
def test_exported_samplers_of_a_zoo_entry_match_ebgan_keras_sample(tmp_path, capsys):
    """`ebgan-keras export ENTRY` of each exportable sampler gives the images of
    `ebgan-keras sample ENTRY` for the same seed: DDLS at the card's chain
    temperature T * temperature_scale (the card's scale was once dropped)."""
    from ebgan_keras import cli
    from ebgan_keras import zoo
    from ebgan_keras.samplers import factory

    entry, num, seed = "ebgan_pt_mnist", 6, 3
    description = zoo.describe(entry)
    card = description["metrics"]["ddls"]["sampler"]
    chain_temperature = card["temperature"] * card["temperature_scale"]
    inputs, sampled = {}, {}
    model = zoo.load(entry)
    for name in ("none", "truncation", "ddls"):
        npz = tmp_path / f"{name}.npz"
        argv = ["sample", entry, "--sampler", name, "--num", str(num)]
        argv += [
            "--seed",
            str(seed),
            "--npz",
            str(npz),
            "--out",
            str(tmp_path / "g.png"),
        ]
        assert cli.main(argv) == 0, capsys.readouterr().err
        sampled[name] = dict(np.load(npz))
        inputs[name + "_latents"] = sampled[name]["latents"]
        # DDLS's chain amplifies float rounding (XLA against eager differ by
        # 0.66 in pixels after the card's 50 steps): compared over 5 steps.
        steps = ["--num-steps", "5"] if name == "ddls" else []
        path = str(tmp_path / "exports" / name)
        assert cli.main(["export", entry, path, "--sampler", name, *steps]) == 0, (
            capsys.readouterr().err
        )
        if name == "ddls":
            message = capsys.readouterr().out
            assert f"the chain runs at T = {chain_temperature:.4g}" in message
    # DDLS's starting latents and noise: the draws of the sampler that
    # `sample` builds (the card's settings, the same seed stream), over 5 steps.
    settings = factory.card_settings(description, "ddls")
    card_sampler = factory.make_sampler("ddls", settings, model=model, seed=seed)
    np.testing.assert_array_equal(  # `sample` is this call
        card_sampler.sample(model, num)[0], sampled["ddls"]["images"]
    )
    sampler = factory.make_sampler("ddls", settings | {"num_steps": 5}, seed=seed)
    assert sampler.chain_temperature == pytest.approx(chain_temperature, rel=1e-12)
    rng = np.random.default_rng(sampler._call_seed(None))
    inputs["ddls_z"] = ek.utils.prior_latents(
        model.latent_distribution, num, model.latent_dim, rng
    )
    inputs["ddls_noise"] = rng.standard_normal(
        (sampler.num_steps, num, model.latent_dim)
    ).astype("float32")
    np.savez(tmp_path / "inputs.npz", **inputs)
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_ENTRY, str(tmp_path / "exports"),
         str(tmp_path / "inputs.npz"), str(tmp_path / "served.npz")],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    served = dict(np.load(tmp_path / "served.npz"))
    sampler = factory.make_sampler("ddls", settings | {"num_steps": 5}, seed=seed)
    sampled["ddls"]["images"] = sampler.sample(model, num)[0]
    for name in ("none", "truncation", "ddls"):
        np.testing.assert_allclose(
            served[name], sampled[name]["images"], atol=2e-4, err_msg=name
        )
    # Truncation exported at the card's threshold.
    threshold = description["metrics"]["truncation"]["sampler"]["threshold"]
    assert np.abs(served["truncation_drawn"]).max() <= threshold
    assert np.abs(served["truncation_drawn"]).max() > 0.95 * threshold


# Starts an export whose write stops half-way: a file written, then the
# process is killed (SIGKILL) or the write fails.
_KILLED_EXPORT = """
import os, signal, sys
sys.path.insert(0, {tests!r})
import test_export
from ebgan_keras.run import export as exporting

class HalfWritten:
    def write_out(self, path, verbose=False):
        os.makedirs(path)
        with open(os.path.join(path, "saved_model.pb"), "w") as handle:
            handle.write("half")
        if sys.argv[2] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise OSError(28, "No space left on device")

exporting.build_archive = lambda *args: HalfWritten()
test_export.ek.export(test_export.tiny_model(), sys.argv[1], "prior")
"""


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="the write is backend-independent (off TF in a TF subprocess)",
)
@pytest.mark.parametrize("how", ["kill", "fail"])
def test_an_interrupted_export_leaves_nothing_at_path(how, tmp_path):
    path = tmp_path / "saved"
    code = _KILLED_EXPORT.format(tests=os.path.dirname(__file__))
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), how],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )  # fmt: skip
    if how == "kill":
        assert done.returncode == -9, done.stderr[-2000:]
        # The temporary folder of the killed process is left beside PATH...
        assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == [".saved.partial"]
    else:
        assert done.returncode == 1 and "No space left" in done.stderr
        assert list(tmp_path.iterdir()) == []
    assert not path.exists()
    # ... and the same export then runs, and removes it.
    ek.export(tiny_model(), path, "prior")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved"]
    assert (path / "saved_model.pb").stat().st_size > 100
