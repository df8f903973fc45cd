"""BiGAN and BigBiGAN: three optimizers, joint losses, encode/reconstruct, saving."""

from __future__ import annotations

import io
import zipfile

import h5py
import keras
import numpy as np
import pytest
from helpers import IMAGE_SHAPE
from helpers import LATENT_DIM
from helpers import run_in_step
from helpers import tiny_generator
from helpers import tiny_images
from keras import ops

import ebgan_keras as ek
from ebgan_keras import backend
from ebgan_keras.models.bigan import discriminator_term_loss
from ebgan_keras.models.bigan import encoder_generator_term_loss


def value(x) -> float:
    return float(np.asarray(ops.convert_to_numpy(x)))


def tiny_joint_discriminator(unary_terms: bool = False) -> keras.Model:
    return ek.networks.bigan_mlp_discriminator(
        IMAGE_SHAPE,
        LATENT_DIM,
        image_units=(16,),
        latent_units=(8,),
        joint_units=(16,),
        unary_terms=unary_terms,
    )


def tiny_encoder(latent_dim: int = LATENT_DIM, batch_norm: bool = True):
    return ek.networks.bigan_mlp_encoder(
        IMAGE_SHAPE, latent_dim, hidden_units=(16,), batch_norm=batch_norm
    )


def tiny_bigan(unary_terms: bool = False, **kwargs) -> ek.BiGAN:
    kwargs.setdefault("seed", 0)
    return ek.BiGAN(
        tiny_generator(),
        tiny_joint_discriminator(unary_terms),
        tiny_encoder(),
        unary_terms=unary_terms,
        **kwargs,
    )


@pytest.fixture(scope="module")
def trained():
    """A BigBiGAN (unary terms) after 2 epochs of 2 steps; built once per file."""
    keras.utils.set_random_seed(0)
    model = tiny_bigan(unary_terms=True)
    model.compile()
    encoder_before = [ops.convert_to_numpy(v).copy() for v in model.encoder.weights]
    history = model.fit(tiny_images(32), batch_size=16, epochs=2, verbose=0)
    return model, history, encoder_before


# ----------------------------------------------------------------------------
# Three optimizers
# ----------------------------------------------------------------------------
def test_three_optimizers_all_move_in_fit(trained):
    model, history, encoder_before = trained
    # 2 epochs of 2 steps: each of the three optimizers took 4 steps.
    for optimizer in (model.d_optimizer, model.g_optimizer, model.e_optimizer):
        assert int(value(optimizer.iterations)) == 4, optimizer.name
    assert int(value(model.optimizer.iterations)) == 4
    # The encoder's optimizer is carried by `model.optimizer` (the JAX trainer
    # carries only those variables).
    carried = {id(v) for v in model.optimizer.variables}
    assert all(id(v) in carried for v in model.e_optimizer.variables)
    # Default encoder optimizer: the generator's, at 10x its learning rate.
    assert type(model.e_optimizer) is type(model.g_optimizer)
    np.testing.assert_allclose(
        value(model.e_optimizer.learning_rate),
        10 * value(model.g_optimizer.learning_rate),
        rtol=1e-6,
    )
    # Every kernel of the encoder moved (its gradient flows through D(x, E(x))).
    for before, variable in zip(encoder_before, model.encoder.weights):
        if variable.trainable and before.ndim == 2:
            assert not np.allclose(before, ops.convert_to_numpy(variable))
    logs = history.history
    for name in ("d_loss", "g_loss", "d_loss_x", "d_loss_z", "d_loss_xz"):
        assert np.all(np.isfinite(logs[name])), name
    # The per-term losses add up to the discriminator's loss (epoch means).
    np.testing.assert_allclose(
        logs["d_loss"][-1],
        logs["d_loss_x"][-1] + logs["d_loss_z"][-1] + logs["d_loss_xz"][-1],
        rtol=1e-5,
    )


def test_gan_optimizer_routes_three_optimizers_by_identity():
    d_vars = [keras.Variable(np.zeros((2, 3)), name="dense")]
    g_vars = [keras.Variable(np.zeros((4,)), name="dense")]
    e_vars = [keras.Variable(np.zeros((5, 1)), name="dense")]
    d, g, e = (keras.optimizers.Adam(1e-3) for _ in range(3))
    optimizer = ek.models.GANOptimizer(d, g, d_vars, extra_routes=[(e, e_vars)])
    optimizer.build(d_vars + g_vars + e_vars)
    # Same variable names, each optimizer holds slots for its own only.
    for inner, variables in ((d, d_vars), (g, g_vars), (e, e_vars)):
        slots = [v for v in inner.variables if len(v.shape) > 0]
        assert [tuple(v.shape) for v in slots] == [variables[0].shape] * 2
    assert len(optimizer.variables) == 2 + sum(len(o.variables) for o in (d, g, e))
    with pytest.raises(ValueError, match="own optimizer object"):
        ek.models.GANOptimizer(d, g, d_vars, extra_routes=[(d, e_vars)])


def test_explicit_encoder_optimizer_and_schedule_without_one():
    model = tiny_bigan(encoder_learning_rate_multiplier=3.0)
    model.compile(g_optimizer=keras.optimizers.SGD(0.1))
    assert isinstance(model.e_optimizer, keras.optimizers.SGD)
    np.testing.assert_allclose(value(model.e_optimizer.learning_rate), 0.3)
    model.compile(e_optimizer=keras.optimizers.RMSprop(0.05))
    assert isinstance(model.e_optimizer, keras.optimizers.RMSprop)
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.9)
    with pytest.raises(ValueError, match="pass `e_optimizer`"):
        model.compile(g_optimizer=keras.optimizers.Adam(schedule))


# ----------------------------------------------------------------------------
# The losses
# ----------------------------------------------------------------------------
def test_term_losses_known_values():
    real = np.array([2.0, 0.5, -1.0], "float32")
    fake = np.array([-2.0, 0.0, 1.5], "float32")

    def softplus(x):
        return np.log1p(np.exp(x))

    cases = {
        ("hinge", "d"): np.mean(np.maximum(1 - real, 0))
        + np.mean(np.maximum(1 + fake, 0)),
        ("hinge", "eg"): real.mean() - fake.mean(),
        ("logistic", "d"): softplus(-real).mean() + softplus(fake).mean(),
        ("logistic", "eg"): softplus(real).mean() + softplus(-fake).mean(),
    }
    for (loss, side), expected in cases.items():
        fn = discriminator_term_loss if side == "d" else encoder_generator_term_loss
        np.testing.assert_allclose(value(fn(real, fake, loss)), expected, rtol=1e-6)


def _losses_and_gradients(model, real, latents):
    """Both losses of one step and their gradients, without updating."""

    def step(data):
        real, latents = data
        d_loss, d_aux, d_grads = backend.value_and_grad(
            lambda: model.discriminator_loss(real, latents),
            model.discriminator_variables,
        )
        g_loss, _, g_grads = backend.value_and_grad(
            lambda: model.generator_loss(latents, real=real),
            model.generator_variables,
        )
        return {"d": d_loss, "g": g_loss, "dg": d_grads, "gg": g_grads, **d_aux}

    logs = run_in_step(model, step, (real, latents))
    return {
        k: [ops.convert_to_numpy(g) for g in v]
        if isinstance(v, list)
        else ops.convert_to_numpy(v)
        for k, v in logs.items()
    }


def test_bigbigan_with_unary_terms_off_is_bigan():
    """Unary heads switched off (zero weights): BigBiGAN's step is BiGAN's.

    Each zero unary score adds a constant hinge of 1 + 1 to the
    discriminator's loss (real and fake), so `L_D` is BiGAN's + 4 with the
    same gradients; `L_EG` and its gradients are BiGAN's exactly.
    """
    generator, encoder = (
        tiny_generator(batch_norm=False),
        tiny_encoder(batch_norm=False),
    )
    full = tiny_joint_discriminator(unary_terms=True)
    for name in ("score_x", "score_z"):
        for variable in full.get_layer(name).weights:
            variable.assign(np.zeros(variable.shape, "float32"))
    # The same joint head and trunks, without the unary heads.
    joint_only = keras.Model(full.inputs, full.outputs[2])
    bigbigan = ek.BiGAN(generator, full, encoder, unary_terms=True)
    bigan = ek.BiGAN(generator, joint_only, encoder, adversarial_loss="hinge")
    assert bigbigan.adversarial_loss == "hinge"
    real = tiny_images(6, seed=3)
    latents = np.random.default_rng(4).normal(size=(6, LATENT_DIM)).astype("float32")
    big = _losses_and_gradients(bigbigan, real, latents)
    plain = _losses_and_gradients(bigan, real, latents)
    np.testing.assert_allclose(big["d"], plain["d"] + 4.0, rtol=1e-6)
    np.testing.assert_allclose(big["d_loss_xz"], plain["d"], rtol=1e-6)
    np.testing.assert_allclose(big["g"], plain["g"], rtol=1e-6, atol=1e-7)
    # Gradients of the shared variables agree; the unary heads' are their own.
    shared = {id(v) for v in joint_only.trainable_variables}
    big_d = [
        g
        for g, v in zip(big["dg"], bigbigan.discriminator_variables)
        if id(v) in shared
    ]
    assert len(big_d) == len(plain["dg"])
    for a, b in zip(big_d, plain["dg"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    for a, b in zip(big["gg"], plain["gg"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # With BiGAN's own (logistic) loss the step differs: the option is real.
    logistic = ek.BiGAN(generator, joint_only, encoder)
    assert logistic.adversarial_loss == "logistic"
    other = _losses_and_gradients(logistic, real, latents)
    assert not np.allclose(other["d"], plain["d"])


# ----------------------------------------------------------------------------
# encode / reconstruct
# ----------------------------------------------------------------------------
def test_encode_and_reconstruct_shapes(trained):
    model, _, _ = trained
    images = tiny_images(5, seed=7)
    codes = model.encode(images, batch_size=2)
    assert codes.shape == (5, LATENT_DIM) and codes.dtype == np.float32
    np.testing.assert_allclose(
        codes, ops.convert_to_numpy(model.encoder(images, training=False)), atol=1e-6
    )
    again = model.reconstruct(images)
    assert again.shape == (5, *IMAGE_SHAPE)
    np.testing.assert_allclose(again, model.generate(codes), atol=1e-6)
    # Inference is deterministic; the energy is minus the summed scores.
    np.testing.assert_array_equal(model.encode(images), model.encode(images))
    scores = model.joint_scores(images, codes)
    np.testing.assert_allclose(
        model.energy(images),
        -sum(ops.convert_to_numpy(s) for s in scores.values()),
        rtol=1e-5,
        atol=1e-6,
    )


def test_same_seed_same_encoder_other_seed_another():
    keras.utils.set_random_seed(1)
    first = tiny_bigan(seed=0)
    weights = first.get_weights()
    models = [first]
    for seed in (0, 1):
        other = tiny_bigan(seed=seed)
        other.set_weights(weights)
        models.append(other)
    images = tiny_images(16, seed=2)
    codes = []
    for model in models:
        model.compile(
            d_optimizer=keras.optimizers.SGD(0.1),
            g_optimizer=keras.optimizers.SGD(0.1),
            run_eagerly=True,  # one step: no compile
        )
        model.fit(images, batch_size=16, epochs=1, verbose=0)
        codes.append(model.encode(images))
    # Equal up to float rounding (eager JAX may round differently run to run).
    np.testing.assert_allclose(codes[0], codes[1], atol=1e-6)
    assert np.abs(codes[0] - codes[2]).max() > 1e-3


# ----------------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------------
def test_save_and_load_round_trip_with_the_encoder(trained, tmp_path):
    model, _, _ = trained
    images = tiny_images(4, seed=9)
    model.save(tmp_path / "bigbigan.keras")
    loaded = keras.saving.load_model(tmp_path / "bigbigan.keras")
    assert isinstance(loaded, ek.BiGAN) and loaded.unary_terms
    assert loaded.adversarial_loss == "hinge"
    np.testing.assert_allclose(loaded.encode(images), model.encode(images), atol=1e-6)
    np.testing.assert_allclose(
        loaded.reconstruct(images), model.reconstruct(images), atol=1e-6
    )
    # All three optimizers come back, counters and slots.
    for name in ("d_optimizer", "g_optimizer", "e_optimizer"):
        original, restored = getattr(model, name), getattr(loaded, name)
        assert type(restored) is type(original)
        for a, b in zip(original.variables, restored.variables, strict=True):
            np.testing.assert_array_equal(
                ops.convert_to_numpy(a), ops.convert_to_numpy(b)
            )
    # Each optimizer's state is written once.
    with zipfile.ZipFile(tmp_path / "bigbigan.keras") as archive:
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
        names = []
        weights.visititems(
            lambda n, item: names.append(n) if isinstance(item, h5py.Dataset) else None
        )
    saved = [n for n in names if n.split("/")[0].endswith("optimizer")]
    assert len(saved) == len(model.optimizer.variables)


# ----------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------
def test_encoder_of_the_wrong_width_is_refused():
    with pytest.raises(ValueError, match="encoder") as error:
        ek.BiGAN(tiny_generator(), tiny_joint_discriminator(), tiny_encoder(3))
    message = str(error.value)
    assert f"(N, {LATENT_DIM})" in message and "(None, 3)" in message


def test_images_of_the_wrong_shape_are_refused(trained):
    model, _, _ = trained
    wrong = np.zeros((2, 9, 9, 1), "float32")
    for method in (model.encode, model.reconstruct):
        with pytest.raises(ValueError, match="images") as error:
            method(wrong)
        assert "(N, 8, 8, 1)" in str(error.value)
        assert "(2, 9, 9, 1)" in str(error.value)
    with pytest.raises(ValueError, match="x") as error:
        model.fit(wrong, batch_size=2, epochs=1, verbose=0)
    assert "(2, 9, 9, 1)" in str(error.value)


def test_discriminator_and_options_are_checked():
    with pytest.raises(ValueError, match="three scores") as error:
        ek.BiGAN(
            tiny_generator(),
            tiny_joint_discriminator(False),
            tiny_encoder(),
            unary_terms=True,
        )
    assert "(None, 1)" in str(error.value)
    images_only = ek.networks.gan_mlp_discriminator(IMAGE_SHAPE, hidden_units=(8,))
    with pytest.raises(ValueError, match=r"\[images, latents\]"):
        ek.BiGAN(tiny_generator(), images_only, tiny_encoder())
    with pytest.raises(ValueError, match="adversarial_loss='wasserstein'"):
        tiny_bigan(adversarial_loss="wasserstein")
    with pytest.raises(ValueError, match="encoder_learning_rate_multiplier=0"):
        tiny_bigan(encoder_learning_rate_multiplier=0)
    with pytest.raises(TypeError, match="encoder"):
        ek.BiGAN(tiny_generator(), tiny_joint_discriminator(), encoder="mlp")


def test_builtin_configs_build_bigan_and_bigbigan():
    from ebgan_keras import builder
    from ebgan_keras import config

    for name, unary in (("bigan", False), ("bigbigan", True)):
        settings = config.validate(config.load_config(name))
        model = builder.build_model(settings, (28, 28, 1))
        assert isinstance(model, ek.BiGAN)
        assert model.unary_terms is unary
        assert model.encoder.output_shape == (None, model.latent_dim)
