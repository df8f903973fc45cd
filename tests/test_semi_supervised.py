"""The ladder network and EBGAN-LN (`ek.semi_supervised`), on every backend.

Cross-backend parity uses a stored reference: one training step of a tiny LN
and EBGAN-LN from fixed weights, noise and latents, computed on TensorFlow
(`python tests/test_semi_supervised.py --write-reference` rewrites it), which
each backend's run must match.
"""

from __future__ import annotations

import json
import os
import sys

import keras
import numpy as np
import pytest
from keras import ops

sys.path.insert(0, os.path.dirname(__file__))
from helpers import fixed_latent_class  # noqa: E402

import ebgan_keras as ek  # noqa: E402
from ebgan_keras.data import semi_supervised as ss_data  # noqa: E402

REFERENCE = os.path.join(os.path.dirname(__file__), "data", "semi_supervised_step.npz")
IMAGE = (4, 4, 1)
IDENTITY = np.array([0, 1, 0, 0, 0, 0, 1, 0, 0, 1], "float32")  # mu = 0, v = 1


class FixedNoiseLadder(ek.networks.LadderNetwork):
    """A ladder whose corruption is a fixed function of the shape (parity)."""

    def noise_like(self, x):
        size = int(np.prod(ops.shape(x)))
        values = ops.sin(ops.arange(size, dtype="float32") * 0.7 + size)
        return ops.reshape(values, ops.shape(x))


def tiny_model(margin=2.0, noise_std=0.3, costs=(5.0, 0.5, 0.1, 0.0), **kwargs):
    ladder = FixedNoiseLadder(
        input_shape=IMAGE,
        layer_sizes=(6, 5, 3),
        noise_std=noise_std,
        denoising_costs=costs,
        seed=1,
    )
    generator = ek.networks.ladder.ladder_gan_generator(
        latent_dim=3, image_shape=IMAGE, hidden_units=(5,)
    )
    return fixed_latent_class(ek.semi_supervised.EBGANLN)(
        generator, ladder, margin=margin, seed=0, **kwargs
    )


def tiny_batch(rng, labelled=4, unlabelled=4):
    images = rng.uniform(0, 1, (labelled + unlabelled, *IMAGE)).astype("float32")
    labels = np.concatenate(
        [rng.integers(0, 3, labelled), np.full(unlabelled, -1)]
    ).astype("int32")
    return images, labels


def deterministic_step(margin, run_eagerly=False):
    """One SGD step of a tiny LN (margin None) or EBGAN-LN from fixed values."""
    model = tiny_model(margin=margin)
    rng = np.random.default_rng(7)
    for variable in model.trainable_variables:
        variable.assign(rng.normal(scale=0.3, size=variable.shape).astype("float32"))
    model.fixed_latents = rng.normal(size=(8, 3)).astype("float32")
    images, labels = tiny_batch(rng)
    model.compile(
        d_optimizer=keras.optimizers.SGD(0.05),
        g_optimizer=keras.optimizers.SGD(0.05),
        run_eagerly=run_eagerly,
    )
    history = model.fit(
        images, labels, batch_size=8, epochs=1, shuffle=False, verbose=0
    )
    record = {f"log_{k}": np.float32(v[-1]) for k, v in history.history.items()}
    seeds = {
        id(model.seed_generator.state),
        id(model.discriminator.seed_generator.state),
    }
    for i, variable in enumerate(model.weights):
        if id(variable) not in seeds:
            record[f"var_{i}"] = ops.convert_to_numpy(variable)
    record["probabilities"] = model.classify(images)
    return record


def test_identity_denoiser_without_noise_has_zero_bottom_cost(rng):
    ladder = ek.networks.LadderNetwork(
        input_shape=IMAGE,
        layer_sizes=(6, 3),
        noise_std=0.0,
        denoising_costs=(1.0, 0.0, 0.0),
        seed=0,
    )
    images = rng.uniform(0, 1, (5, *IMAGE)).astype("float32")
    # The initial combinator (mu = 0, v = 0) estimates 0: the cost is mean x^2.
    costs = ladder.costs(images)
    np.testing.assert_allclose(
        ops.convert_to_numpy(costs["layer_costs"][0]),
        np.mean(images.reshape(5, -1) ** 2, axis=1),
        rtol=1e-5,
    )
    ladder.combinators[0].assign(np.tile(IDENTITY[:, None], (1, 16)))
    costs = ladder.costs(images)
    np.testing.assert_allclose(
        ops.convert_to_numpy(costs["layer_costs"][0]), 0, atol=1e-7
    )
    np.testing.assert_allclose(ops.convert_to_numpy(costs["energy"]), 0, atol=1e-7)
    # With noise the identity no longer denoises: the cost is the noise's.
    ladder.noise_std = 0.3
    noisy = ops.convert_to_numpy(ladder.costs(images)["energy"])
    assert 0.3**2 * 0.5 < noisy.mean() < 0.3**2 * 1.5


def test_labelled_split_is_balanced_disjoint_and_seed_stable():
    labels = np.repeat(np.arange(10), 30)
    np.random.default_rng(0).shuffle(labels)
    labelled, rest = ss_data.labelled_split(labels, 100, seed=3)
    assert np.bincount(labels[labelled]).tolist() == [10] * 10
    assert len(np.intersect1d(labelled, rest)) == 0
    assert len(labelled) + len(rest) == len(labels)
    again, _ = ss_data.labelled_split(labels, 100, seed=3)
    other, _ = ss_data.labelled_split(labels, 100, seed=4)
    np.testing.assert_array_equal(labelled, again)
    assert not np.array_equal(labelled, other)
    with pytest.raises(ValueError, match="num_labels"):
        ss_data.labelled_split(labels, 105, seed=0)


def test_batches_mix_labelled_and_unlabelled_rows_and_resume_by_epoch():
    arrays = ek.data.load_arrays("mnist_subset")
    data = ss_data.split_arrays(arrays, 20, seed=0)
    batches = ss_data.SemiSupervisedBatches(
        data, batch_size=50, labelled_batch_size=20, seed=1
    )
    images, labels = batches[3]
    assert images.shape == (70, 28, 28, 1) and 0 <= images.min() <= images.max() <= 1
    assert (labels[:20] >= 0).all() and (labels[20:] == -1).all()
    assert len(batches) == (len(data["x_unlabelled"]) // 50)
    batches.on_epoch_end()
    resumed = ss_data.SemiSupervisedBatches(
        data, batch_size=50, labelled_batch_size=20, seed=1, epoch=1
    )
    np.testing.assert_array_equal(batches[0][0], resumed[0][0])


# Compiling the step takes JAX and TensorFlow seconds; eager by default.
@pytest.mark.parametrize(
    "run_eagerly",
    (True, pytest.param(False, marks=pytest.mark.slow)),
    ids=("eager", "compiled"),
)
@pytest.mark.parametrize("margin", (None, 2.0), ids=("ln", "ebgan_ln"))
def test_one_step_matches_the_reference(margin, run_eagerly):
    key = "ln" if margin is None else "ebgan_ln"
    record = deterministic_step(margin, run_eagerly)
    with np.load(REFERENCE) as archive:
        reference = {
            name[len(key) + 1 :]: archive[name]
            for name in archive.files
            if name.startswith(key + "/")
        }
    assert set(record) == set(reference)
    assert "log_class_loss" in record and len(record) > 20
    if margin is not None:
        assert {"log_g_loss", "log_energy_fake"} <= set(record)
    for name, value in reference.items():
        np.testing.assert_allclose(
            record[name], value, rtol=2e-4, atol=2e-5, err_msg=name
        )


def test_margin_decays_to_its_end_value_on_schedule(rng):
    model = tiny_model(
        margin=4.0, final_margin=1.0, margin_decay_epochs=3, margin_decay_start=1
    )
    assert [model.margin_at(t) for t in range(6)] == [4.0, 4.0, 3.0, 2.0, 1.0, 1.0]
    model.compile(run_eagerly=True)
    images, labels = tiny_batch(rng)
    history = model.fit(images, labels, batch_size=8, epochs=5, verbose=0)
    np.testing.assert_allclose(history.history["margin"], [4, 3, 2, 1, 1], rtol=1e-6)
    assert float(ops.convert_to_numpy(model.margin)) == pytest.approx(1.0)


def test_save_and_load_round_trip(tmp_path, rng):
    model = tiny_model(margin=3.0, final_margin=0.5, margin_decay_epochs=2)
    model.compile(run_eagerly=True)
    images, labels = tiny_batch(rng)
    model.fit(images, labels, batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "ebgan_ln.keras")
    model.save(path)
    loaded = keras.saving.load_model(
        path,
        custom_objects={
            type(model).__name__: type(model),
            "FixedNoiseLadder": FixedNoiseLadder,
        },
    )
    np.testing.assert_allclose(
        loaded.classify(images), model.classify(images), atol=1e-6
    )
    assert float(ops.convert_to_numpy(loaded.margin)) == pytest.approx(1.75)
    assert loaded.get_config()["margin_decay_epochs"] == 2


def test_short_fit_lowers_the_labelled_loss():
    data = ss_data.split_arrays(ek.data.load_arrays("mnist_subset"), 50, seed=0)
    data["x_unlabelled"] = data["x_unlabelled"][:500]
    model = ek.semi_supervised.ln(50, seed=0, layer_sizes=(64, 32, 10))
    model.compile(d_optimizer=keras.optimizers.Adam(5e-3), run_eagerly=True)
    batches = ss_data.SemiSupervisedBatches(
        data, batch_size=100, labelled_batch_size=50, seed=0
    )
    history = model.fit(batches, epochs=4, verbose=0)
    losses = history.history["class_loss"]
    assert losses[-1] < 0.7 * losses[0]
    # Better than chance (90 %) after 20 steps with 50 labels.
    assert model.error_rate(data["x_test"][:500], data["y_test"][:500]) < 75.0


def test_a_fixed_pixel_permutation_gives_the_same_error():
    """An MLP ladder is permutation invariant: permuted pixels, permuted
    first-layer weights and per-pixel combinators train to the same model."""
    data = ss_data.split_arrays(ek.data.load_arrays("mnist_subset"), 20, seed=0)
    data["x_unlabelled"] = data["x_unlabelled"][:400]
    permutation = np.random.default_rng(5).permutation(784)
    permuted = {
        k: (v[:, permutation] if k.startswith("x_") else v) for k, v in data.items()
    }
    models = [
        ek.semi_supervised.ln(20, seed=0, layer_sizes=(32, 10), noise_std=0.0)
        for _ in range(2)
    ]
    # The same initial weights, the first layer's permuted with the pixels.
    first, second = (m.discriminator for m in models)
    second.kernels[0].assign(ops.convert_to_numpy(first.kernels[0])[permutation])
    second.decoder_kernels[0].assign(
        ops.convert_to_numpy(first.decoder_kernels[0])[:, permutation]
    )
    for model, arrays in zip(models, (data, permuted)):
        # SGD: Adam's first steps follow the sign of near-zero gradients,
        # which the summation order of the permuted matmul can flip.
        model.compile(d_optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
        batches = ss_data.SemiSupervisedBatches(
            arrays, batch_size=100, labelled_batch_size=20, seed=0
        )
        model.fit(batches, epochs=1, verbose=0)
    test = data["x_test"][:300], data["y_test"][:300]
    np.testing.assert_allclose(
        models[1].classify(test[0][:, permutation]),
        models[0].classify(test[0]),
        atol=1e-4,
    )
    assert models[1].error_rate(test[0][:, permutation], test[1]) == pytest.approx(
        models[0].error_rate(*test)
    )


def test_errors_name_the_argument(rng):
    generator = ek.networks.ladder.ladder_gan_generator(latent_dim=3, image_shape=IMAGE)
    with pytest.raises(TypeError, match="LadderNetwork"):
        ek.semi_supervised.EBGANLN(generator, generator)
    with pytest.raises(ValueError, match="denoising_costs"):
        ek.networks.LadderNetwork(input_shape=IMAGE, layer_sizes=(4, 3))
    model = tiny_model()
    model.compile()
    with pytest.raises(ValueError, match="y=None"):
        model.fit(tiny_batch(rng)[0], epochs=1, verbose=0)


def write_reference() -> None:
    assert keras.backend.backend() == "tensorflow", "write it on TensorFlow"
    arrays = {}
    for key, margin in (("ln", None), ("ebgan_ln", 2.0)):
        keras.utils.clear_session()
        for name, value in deterministic_step(margin).items():
            arrays[f"{key}/{name}"] = value
    np.savez(REFERENCE, **arrays)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-reference"]:
        write_reference()


@pytest.mark.slow
def test_the_study_runs_tiny_and_skips_finished_runs(tmp_path):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))
    import semi_supervised as study

    argv = ["--epochs", "1", "--shrink", "200", "--seeds", "0", "--seeds-1000"]
    argv += ["--out", str(tmp_path)]
    study.main(argv)
    rows = (tmp_path / "semi_supervised.jsonl").read_text().splitlines()
    assert [json.loads(r)["model"] for r in rows] == ["ln", "ebgan_ln"]
    assert all(0 <= json.loads(r)["test_error"] <= 100 for r in rows)
    assert (
        "| ebgan_ln | 100 | 1 | 200 | 0 |"
        in (tmp_path / "semi_supervised.md").read_text()
    )
    study.main(argv)  # finished runs are skipped
    assert len((tmp_path / "semi_supervised.jsonl").read_text().splitlines()) == 2
