"""Training, state, saving and input checks of the four models, on every backend."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import IMAGE_SHAPE
from helpers import LATENT_DIM
from helpers import fixed_latent_class
from helpers import numpy_weights
from helpers import tiny_discriminator
from helpers import tiny_generator
from helpers import tiny_images
from helpers import tiny_model
from keras import ops

import ebgan_keras as ek

ALL_MODELS = [ek.EBGAN, ek.EBGANPT, ek.BEGAN, ek.MAGAN]


def value(x) -> float:
    return float(np.asarray(ops.convert_to_numpy(x)))


def model_kwargs(cls):
    return {"pretrain_epochs": 1} if cls is ek.MAGAN else {}


@pytest.mark.parametrize("cls", ALL_MODELS, ids=lambda c: c.__name__)
def test_fit_logs_and_both_optimizers_advance(cls):
    model = tiny_model(cls, **model_kwargs(cls))
    model.compile()
    history = model.fit(tiny_images(64), batch_size=16, epochs=2, verbose=0)
    expected = {"d_loss", "g_loss", "energy_real", "energy_fake"}
    expected |= {
        ek.EBGANPT: {"pt"},
        ek.BEGAN: {"k", "convergence"},
        ek.MAGAN: {"margin"},
    }.get(cls, set())
    assert expected <= set(history.history)
    for name in expected:
        assert np.all(np.isfinite(history.history[name])), name
    steps = 2 * 64 // 16
    assert int(value(model.d_optimizer.iterations)) == steps
    # MAGAN's generator waits for the one pre-training epoch.
    g_steps = steps - 4 if cls is ek.MAGAN else steps
    assert int(value(model.g_optimizer.iterations)) == g_steps
    assert int(value(model.optimizer.iterations)) == steps


def test_fit_accepts_tf_data_dataset():
    images = tiny_images(48)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(16)
    model = tiny_model()
    model.compile()
    model.fit(dataset, epochs=1, verbose=0)
    assert int(value(model.g_optimizer.iterations)) == 3


def test_batch_norm_statistics_and_seed_move():
    model = tiny_model()
    model.compile()
    bn = model.generator.get_layer("batch_norm_0")
    mean_before = np.array(ops.convert_to_numpy(bn.moving_mean))
    seed_before = np.array(ops.convert_to_numpy(model.seed_generator.state))
    model.fit(tiny_images(32), batch_size=16, epochs=1, verbose=0)
    assert not np.allclose(mean_before, ops.convert_to_numpy(bn.moving_mean))
    assert not np.array_equal(
        seed_before, ops.convert_to_numpy(model.seed_generator.state)
    )


def test_fresh_latents_every_step():
    model = tiny_model()
    model.compile()
    first = ops.convert_to_numpy(model.sample_latents(3))
    second = ops.convert_to_numpy(model.sample_latents(3))
    assert not np.allclose(first, second)


def test_same_seed_same_run_different_seed_different_run():
    def run(seed):
        keras.utils.set_random_seed(1)
        model = tiny_model(seed=seed)
        model.compile()
        model.fit(tiny_images(32), batch_size=16, epochs=2, verbose=0, shuffle=False)
        return numpy_weights(model.generator)

    first, again, other = run(7), run(7), run(8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.allclose(a, c) for a, c in zip(first, other))


def test_generate_and_energy():
    model = tiny_model()
    images = model.generate(5, seed=3)
    assert images.shape == (5, *IMAGE_SHAPE)
    np.testing.assert_allclose(images, model.generate(5, seed=3), atol=1e-6)
    latents = np.zeros((2, LATENT_DIM), "float32")
    assert model.generate(latents).shape == (2, *IMAGE_SHAPE)
    energy = model.energy(images)
    assert energy.shape == (5,) and np.all(np.isfinite(energy))
    # The energy is the reconstruction error, recomputed here by hand (l2).
    reconstruction, _ = model.discriminator(images)
    expected = np.sqrt(
        ((ops.convert_to_numpy(reconstruction) - images) ** 2).reshape(5, -1).sum(1)
    )
    np.testing.assert_allclose(energy, expected, rtol=1e-4)


def test_discriminator_hinge_is_per_sample_in_the_model():
    model = tiny_model(ek.EBGAN, margin=1.0, energy_reduction="mean")
    real = tiny_images(8)
    latents = model.sample_latents(8, seed=1)
    loss, aux = model.discriminator_loss(real, latents)
    fake = model.generator(latents, training=True)
    energy_fake = ops.convert_to_numpy(model.compute_energy(fake, training=True)[0])
    energy_real = ops.convert_to_numpy(model.compute_energy(real, training=True)[0])
    expected = energy_real.mean() + np.maximum(0.0, 1.0 - energy_fake).mean()
    assert value(loss) == pytest.approx(float(expected), rel=1e-5)
    assert value(aux["energy_fake"]) == pytest.approx(
        float(energy_fake.mean()), rel=1e-5
    )


def _constant_reconstruction_discriminator() -> keras.Model:
    images = keras.Input(IMAGE_SHAPE)
    flat = keras.layers.Flatten()(images)
    code = keras.layers.Dense(3, name="code")(flat)
    # A reconstruction that does not depend on the input: all of E(G(z))'s
    # gradient must then come through the target G(z).
    zeros = keras.layers.Lambda(lambda x: ops.zeros_like(x))(images)
    return keras.Model(images, [zeros, code])


def test_generator_gradient_flows_through_the_target():
    latent = keras.Input((LATENT_DIM,))
    x = keras.layers.Dense(int(np.prod(IMAGE_SHAPE)), use_bias=False, name="w")(latent)
    generator = keras.Model(latent, keras.layers.Reshape(IMAGE_SHAPE)(x))
    cls = fixed_latent_class(ek.EBGAN)
    model = cls(
        generator,
        _constant_reconstruction_discriminator(),
        margin=1.0,
        energy_reduction="sum",
        seed=0,
    )
    rng = np.random.default_rng(0)
    model.fixed_latents = rng.normal(size=(8, LATENT_DIM)).astype("float32")
    w_before = np.array(ops.convert_to_numpy(generator.get_layer("w").kernel))
    learning_rate = 0.01
    model.compile(
        d_optimizer=keras.optimizers.SGD(learning_rate),
        g_optimizer=keras.optimizers.SGD(learning_rate),
    )
    model.fit(tiny_images(8), batch_size=8, epochs=1, verbose=0)
    w_after = np.array(ops.convert_to_numpy(generator.get_layer("w").kernel))
    # L_G = mean_i |0 - z_i W|^2, so dL/dW = 2/N z^T (z W).
    z = model.fixed_latents
    gradient = 2.0 / len(z) * z.T @ (z @ w_before)
    np.testing.assert_allclose(w_after, w_before - learning_rate * gradient, atol=1e-5)


def test_began_k_is_clipped_to_unit_interval():
    for gamma, expected in ((1.0, 1.0), (0.0, 0.0)):
        model = tiny_model(ek.BEGAN, gamma=gamma, lambda_k=1e3, initial_k=0.5)
        model.compile()
        history = model.fit(tiny_images(32), batch_size=16, epochs=1, verbose=0)
        assert value(model.k) == expected
        assert 0.0 <= history.history["k"][-1] <= 1.0


def test_began_k_follows_the_update_rule():
    model = tiny_model(ek.BEGAN, gamma=0.5, lambda_k=1.0, initial_k=0.5)
    model.compile(d_optimizer=keras.optimizers.SGD(0.5))
    history = model.fit(tiny_images(16), batch_size=16, epochs=1, verbose=0)
    # One step: k_1 = clip(0.5 + lambda_k * (gamma L(x) - L(G(z)))), both
    # energies measured with the discriminator before its update (the logged
    # D-step terms), as the reference implementation does.
    logs = {name: values[0] for name, values in history.history.items()}
    balance = 0.5 * logs["energy_real"] - logs["energy_fake"]
    assert value(model.k) == pytest.approx(0.5 + balance, abs=1e-6)
    convergence = logs["energy_real"] + abs(balance)
    assert logs["convergence"] == pytest.approx(convergence, rel=1e-5)
    # The generator step's loss comes after the discriminator moved (a large
    # SGD step): using it instead would give another k.
    wrong = 0.5 + (0.5 * logs["energy_real"] - logs["g_loss"])
    assert abs(value(model.k) - wrong) > 1e-4


def _magan_with_epoch(margin, real_sum, fake_sum, batches, previous):
    model = tiny_model(ek.MAGAN, margin=margin, pretrain_epochs=0)
    model.margin.assign(margin)
    model.epoch_energy_real_sum.assign(real_sum)
    model.epoch_energy_fake_sum.assign(fake_sum)
    model.epoch_batches.assign(batches)
    model.previous_energy_fake_sum.assign(previous)
    model.on_epoch_end(0)
    return model


@pytest.mark.parametrize(
    ("real_sum", "fake_sum", "previous", "expected"),
    [
        (30.0, 50.0, 40.0, 3.0),  # all three conditions hold: m = S_real / N
        (70.0, 90.0, 40.0, 5.0),  # mean real 7 > m: the margin never grows
        (30.0, 20.0, 10.0, 5.0),  # S_real >= S_fake
        (30.0, 50.0, 60.0, 5.0),  # S_fake decreased since the last epoch
    ],
)
def test_magan_margin_rule(real_sum, fake_sum, previous, expected):
    model = _magan_with_epoch(5.0, real_sum, fake_sum, 10.0, previous)
    assert value(model.margin) == pytest.approx(expected)
    assert value(model.previous_energy_fake_sum) == pytest.approx(fake_sum)
    assert value(model.epoch_batches) == 0.0


def test_magan_sums_the_fake_energy_of_the_generator_step():
    # The official code adds the fake energy measured in the generator's step
    # (discriminator already updated) to S_fake, not the discriminator's.
    model = tiny_model(ek.MAGAN, margin=5.0, pretrain_epochs=0)
    model.compile()
    logs = model.train_on_batch(tiny_images(16), return_dict=True)
    assert value(model.epoch_energy_fake_sum) == pytest.approx(logs["g_loss"], rel=1e-5)
    assert logs["energy_fake"] == pytest.approx(logs["g_loss"], rel=1e-5)
    assert value(model.epoch_energy_real_sum) == pytest.approx(logs["energy_real"])


def test_magan_pretraining_sets_margin_and_margin_never_grows():
    model = tiny_model(ek.MAGAN, pretrain_epochs=1)
    model.compile()
    history = model.fit(tiny_images(64), batch_size=16, epochs=4, verbose=0)
    margins = history.history["margin"]
    # The margin after pre-training is the mean real energy of that epoch.
    assert margins[0] == pytest.approx(history.history["energy_real"][0], rel=1e-5)
    assert all(b <= a + 1e-6 for a, b in zip(margins, margins[1:]))
    assert value(model.pretrained_epochs) == 1.0


def test_nan_batch_stops_with_clear_error_and_finite_weights():
    images = tiny_images(32)
    images[20, 0, 0, 0] = np.nan
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(16)
    model = tiny_model()
    model.compile()
    with pytest.raises(FloatingPointError, match="non-finite loss at epoch 1, batch 2"):
        model.fit(dataset, epochs=1, verbose=0)
    for weight in model.discriminator.trainable_weights:
        assert np.all(np.isfinite(ops.convert_to_numpy(weight))), weight.path


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((4, 9, 8, 1), "float32"), r"shape \(N, 8, 8, 1\).*\(4, 9, 8, 1\)"),
        (np.zeros((4, 8, 8, 3), "float32"), r"Received: x with shape \(4, 8, 8, 3\)"),
        (np.zeros((4, 8, 8, 1), "uint8"), "Received: x with dtype uint8"),
        (np.full((4, 8, 8, 1), 255.0, "float32"), r"values in \[255, 255\]"),
        (np.full((4, 8, 8, 1), np.nan, "float32"), "NaN"),
    ],
)
def test_fit_rejects_bad_images(images, message):
    model = tiny_model()
    model.compile()
    with pytest.raises(ValueError, match=message):
        model.fit(images, epochs=1, verbose=0)


def test_dataset_of_wrong_shape_is_rejected():
    dataset = tf.data.Dataset.from_tensor_slices(np.zeros((8, 16, 16, 1), "float32"))
    model = tiny_model()
    model.compile()
    with pytest.raises(ValueError, match=r"Received: .*shape \((None|4), 16, 16, 1\)"):
        model.fit(dataset.batch(4), epochs=1, verbose=0)


def test_discriminator_must_return_a_pair():
    images = keras.Input(IMAGE_SHAPE)
    single = keras.Model(images, keras.layers.Lambda(lambda x: x * 2.0)(images))
    with pytest.raises(ValueError, match="pair \\(reconstruction, code\\).*single"):
        ek.EBGAN(tiny_generator(), single)


def test_reconstruction_must_match_images():
    images = keras.Input(IMAGE_SHAPE)
    flat = keras.layers.Flatten()(images)
    bad = keras.Model(images, [keras.layers.Dense(3)(flat), flat])
    with pytest.raises(ValueError, match=r"reconstruction of shape \(None, 3\)"):
        ek.EBGAN(tiny_generator(), bad)


def test_latent_dim_must_match_generator():
    with pytest.raises(ValueError, match="Received: latent_dim=7"):
        ek.EBGAN(tiny_generator(), tiny_discriminator(), latent_dim=7)


@pytest.mark.parametrize("margin", [0.0, -1.0, float("nan"), "big"])
def test_margin_must_be_positive(margin):
    with pytest.raises(ValueError, match="margin"):
        ek.EBGAN(tiny_generator(), tiny_discriminator(), margin=margin)


def test_margin_above_the_largest_energy_warns():
    with pytest.warns(UserWarning, match="hinge is active for every sample"):
        ek.EBGAN(
            tiny_generator(), tiny_discriminator(), margin=20.0, energy_reduction="mean"
        )


@pytest.mark.parametrize("gamma", [-0.1, 1.5])
def test_began_gamma_outside_unit_interval(gamma):
    with pytest.raises(ValueError, match=f"Received: gamma={gamma}"):
        ek.BEGAN(tiny_generator(), tiny_discriminator(), gamma=gamma)


def test_magan_needs_a_margin_or_pretraining():
    with pytest.raises(ValueError, match="pretrain_epochs=0"):
        ek.MAGAN(tiny_generator(), tiny_discriminator(), pretrain_epochs=0)


def test_compile_rejects_single_optimizer_argument():
    model = tiny_model()
    with pytest.raises(ValueError, match="Received: optimizer="):
        model.compile(optimizer="adam")


@pytest.mark.parametrize("cls", ALL_MODELS, ids=lambda c: c.__name__)
def test_save_and_load_round_trip(cls, tmp_path):
    model = tiny_model(cls, **model_kwargs(cls))
    # PyTorch's Keras trainer runs one step per call.
    model.compile(steps_per_execution=1 if keras.backend.backend() == "torch" else 2)
    model.fit(tiny_images(64), batch_size=16, epochs=2, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is cls
    latents = np.random.default_rng(0).normal(size=(4, LATENT_DIM)).astype("float32")
    np.testing.assert_allclose(
        model.generate(latents), loaded.generate(latents), atol=1e-6
    )
    images = tiny_images(4, seed=5)
    np.testing.assert_allclose(model.energy(images), loaded.energy(images), rtol=1e-5)
    for name in ("k", "margin"):
        if hasattr(model, name):
            assert value(getattr(loaded, name)) == value(getattr(model, name))
    for original, restored in zip(
        (model.d_optimizer, model.g_optimizer), (loaded.d_optimizer, loaded.g_optimizer)
    ):
        assert type(restored) is type(original)
        assert int(value(restored.iterations)) == int(value(original.iterations))
        for a, b in zip(original.variables, restored.variables):
            np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b))
    # Training goes on from the restored state.
    loaded.fit(tiny_images(16), batch_size=16, epochs=1, verbose=0)
    assert (
        int(value(loaded.d_optimizer.iterations))
        == int(value(model.d_optimizer.iterations)) + 1
    )


def test_get_config_round_trip():
    model = tiny_model(ek.BEGAN, gamma=0.3, lambda_k=0.002)
    clone = ek.BEGAN.from_config(model.get_config())
    assert clone.gamma == 0.3 and clone.lambda_k == 0.002
    assert clone.latent_distribution == "uniform"
    assert clone.energy_reduction == "mean" and clone.energy_power == 1.0


def test_halve_learning_rate_on_stall():
    model = tiny_model(ek.BEGAN)
    model.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer="adam")
    callback = ek.callbacks.HalveLearningRateOnStall(patience=1)
    callback.set_model(model)
    callback.on_epoch_end(0, {"convergence": 1.0})
    callback.on_epoch_end(1, {"convergence": 0.5})
    assert value(model.d_optimizer.learning_rate) == pytest.approx(1e-3)
    callback.on_epoch_end(2, {"convergence": 0.7})
    assert value(model.d_optimizer.learning_rate) == pytest.approx(5e-4)
    assert value(model.g_optimizer.learning_rate) == pytest.approx(5e-4)


def test_halve_learning_rate_inside_fit_reaches_the_step():
    model = tiny_model(ek.BEGAN)
    model.compile()
    callback = ek.callbacks.HalveLearningRateOnStall(patience=1, min_delta=1e9)
    model.fit(tiny_images(32), batch_size=16, epochs=3, verbose=0, callbacks=[callback])
    # min_delta so large that no epoch counts as improvement after the first.
    assert value(model.d_optimizer.learning_rate) == pytest.approx(1e-4 / 4)


@pytest.mark.parametrize("cls", ALL_MODELS, ids=lambda c: c.__name__)
def test_evaluate_and_validation_data_change_no_weight(cls):
    model = tiny_model(cls, **model_kwargs(cls))
    model.compile()
    history = model.fit(
        tiny_images(32),
        batch_size=16,
        epochs=2,
        verbose=0,
        validation_data=(tiny_images(16, seed=1),),
    )
    assert np.isfinite(history.history["val_d_loss"][-1])
    assert np.isfinite(history.history["val_energy_real"][-1])
    trainable = [v for v in model.weights if v is not model.seed_generator.state]
    before = [np.array(ops.convert_to_numpy(v)) for v in trainable]
    logs = model.evaluate(
        tiny_images(32, seed=2), batch_size=16, verbose=0, return_dict=True
    )
    assert {"d_loss", "energy_real", "energy_fake"} <= set(logs)
    for variable, old in zip(trainable, before):
        np.testing.assert_array_equal(ops.convert_to_numpy(variable), old)
    # The real energy of evaluate is the inference-mode energy of those images.
    energies = model.energy(tiny_images(32, seed=2))
    assert logs["energy_real"] == pytest.approx(float(energies.mean()), rel=1e-4)


def test_steps_per_epoch_must_divide_into_executions():
    if keras.backend.backend() == "torch":
        pytest.skip("the PyTorch trainer runs one step per call")
    model = tiny_model()
    model.compile(steps_per_execution=4)
    dataset = tf.data.Dataset.from_tensor_slices(tiny_images(32)).batch(4).repeat()
    with pytest.raises(ValueError, match="Received: steps_per_epoch=3"):
        model.fit(dataset, epochs=1, steps_per_epoch=3, verbose=0)
    model.fit(dataset, epochs=2, steps_per_epoch=8, verbose=0)
    assert int(value(model.g_optimizer.iterations)) == 16


def test_energy_takes_generator_outputs_outside_the_data_range():
    # BEGAN's generator has no tanh: its samples may leave [-1, 1] and their
    # energy is what the samplers use; `fit` still refuses such data.
    model = tiny_model(ek.BEGAN)
    images = tiny_images(4) * 1.5
    energies = model.energy(images)
    assert energies.shape == (4,) and np.all(np.isfinite(energies))
    model.compile()
    with pytest.raises(ValueError, match="must hold values in \\[-1, 1\\]"):
        model.fit(images, batch_size=4, epochs=1, verbose=0)
