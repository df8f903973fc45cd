"""The critic family: WGAN-GP, the loss-sensitive GAN and GLS-GAN, on every backend."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
from helpers import numpy_weights
from helpers import run_in_step
from keras import ops

import ebgan_keras as ek
from ebgan_keras import backend

SHAPE = (6, 6, 1)
PIXELS = int(np.prod(SHAPE))


def value(x) -> float:
    return float(np.asarray(ops.convert_to_numpy(x)))


def linear_critic(weights, bias: float = 0.3):
    """`D(x) = w . flatten(x) + b` on images of SHAPE."""
    images = keras.Input(SHAPE)
    dense = keras.layers.Dense(1, name="score")
    critic = keras.Model(images, dense(keras.layers.Flatten()(images)))
    dense.kernel.assign(np.asarray(weights, "float32").reshape(-1, 1))
    dense.bias.assign(np.array([bias], "float32"))
    return critic


def generator(latent_dim: int = 4):
    return ek.networks.ebgan_mlp_generator(
        latent_dim=latent_dim, image_shape=SHAPE, hidden_units=(16,)
    )


def critic(hidden=(16,)):
    return ek.networks.gan_mlp_discriminator(image_shape=SHAPE, hidden_units=hidden)


def images(num: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (num, *SHAPE)).astype("float32")


W = np.linspace(-0.3, 0.4, PIXELS)


# ----------------------------------------------------------------------------
# The gradient penalty: known answers, second order
# ----------------------------------------------------------------------------
def test_gradient_penalty_of_a_linear_critic_and_its_gradient():
    """|grad_x (w.x + b)| = |w| for every interpolate: the penalty is exact,
    and so is its gradient with respect to w (the gradient of a gradient)."""
    model = linear_critic(W)
    kernel, bias = model.trainable_variables
    real, fake = images(5, 1), images(5, 2)

    def step(data):
        real, fake = data

        def loss_fn():
            penalty, norms = ek.losses.gradient_penalty(model, real, fake, seed=0)
            return 10.0 * penalty, {"norms": norms, "penalty": penalty}

        loss, aux, gradients = backend.value_and_grad(loss_fn, [kernel, bias])
        return {**aux, "loss": loss, "gradients": gradients}

    logs = run_in_step(model, step, (ops.convert_to_tensor(real), fake))
    length = np.linalg.norm(W)
    np.testing.assert_allclose(ops.convert_to_numpy(logs["norms"]), length, rtol=1e-5)
    np.testing.assert_allclose(value(logs["penalty"]), (length - 1) ** 2, rtol=1e-5)
    kernel_gradient, bias_gradient = map(ops.convert_to_numpy, logs["gradients"])
    # d/dw 10 (|w| - 1)^2 = 20 (|w| - 1) w / |w|; the bias does not move the norm.
    np.testing.assert_allclose(
        kernel_gradient[:, 0], 20.0 * (length - 1) * W / length, rtol=1e-4, atol=1e-7
    )
    np.testing.assert_allclose(bias_gradient, 0.0, atol=1e-7)


def test_gradient_penalty_interpolates_per_sample_and_one_sided():
    # A quadratic critic D(x) = sum(x^2)/2 has gradient x_hat: with eps given,
    # the norm of each interpolate is known.
    real, fake = images(4, 3), images(4, 4)
    eps = np.array([0.0, 0.25, 0.5, 1.0], "float32")
    mixed = eps[:, None, None, None] * real + (1 - eps[:, None, None, None]) * fake
    expected = np.linalg.norm(mixed.reshape(4, -1), axis=1)

    def quadratic(x):
        return 0.5 * ops.sum(ops.square(ops.reshape(x, (ops.shape(x)[0], -1))), 1)

    penalty, norms = ek.losses.gradient_penalty(quadratic, real, fake, seed=eps)
    np.testing.assert_allclose(ops.convert_to_numpy(norms), expected, rtol=1e-5)
    np.testing.assert_allclose(value(penalty), np.mean((expected - 1) ** 2), rtol=1e-5)
    one_sided, _ = ek.losses.gradient_penalty(
        quadratic, real, fake, seed=eps, target=3.0, one_sided=True
    )
    np.testing.assert_allclose(
        value(one_sided), np.mean(np.maximum(expected - 3.0, 0) ** 2), rtol=1e-5
    )
    # Seeded weights: the same seed draws the same interpolates.
    first, _ = ek.losses.gradient_penalty(quadratic, real, fake, seed=7)
    second, _ = ek.losses.gradient_penalty(quadratic, real, fake, seed=7)
    assert value(first) == value(second)


# ----------------------------------------------------------------------------
# The losses: GLS-GAN's identities
# ----------------------------------------------------------------------------
def test_generalized_cost_is_the_hinge_the_identity_and_the_absolute_value():
    a = np.array([-2.0, -0.5, 0.0, 0.7, 3.0], "float32")
    cost = ek.losses.generalized_cost
    np.testing.assert_allclose(ops.convert_to_numpy(cost(a, 0.0)), np.maximum(a, 0))
    np.testing.assert_allclose(ops.convert_to_numpy(cost(a, 1.0)), a)
    np.testing.assert_allclose(ops.convert_to_numpy(cost(a, -1.0)), np.abs(a))
    np.testing.assert_allclose(
        ops.convert_to_numpy(cost(a, 0.2)), np.where(a > 0, a, 0.2 * a), rtol=1e-6
    )


def test_loss_sensitive_loss_at_slope_1_is_the_wasserstein_loss_plus_the_margin():
    rng = np.random.default_rng(0)
    loss_real, loss_fake = rng.uniform(0, 2, (2, 7)).astype("float32")
    margins = rng.uniform(0, 1, 7).astype("float32")
    slope_one = ek.losses.loss_sensitive_critic_loss(
        loss_real, loss_fake, margins, slope=1.0
    )
    wasserstein = ek.losses.wasserstein_critic_loss(loss_real, loss_fake)
    np.testing.assert_allclose(
        value(slope_one), value(wasserstein) + margins.mean(), rtol=1e-5
    )
    hinge = ek.losses.loss_sensitive_critic_loss(
        loss_real, loss_fake, margins, gamma=0.5
    )
    expected = np.maximum(margins + loss_real - loss_fake, 0).mean()
    np.testing.assert_allclose(
        value(hinge), expected + 0.5 * loss_real.mean(), rtol=1e-5
    )


def test_l1_distance_sums_over_pixels():
    a, b = images(3, 5), images(3, 6)
    np.testing.assert_allclose(
        ops.convert_to_numpy(ek.losses.l1_distance(a, b)),
        np.abs(a - b).reshape(3, -1).sum(1),
        rtol=1e-5,
    )


# ----------------------------------------------------------------------------
# The models
# ----------------------------------------------------------------------------
def test_wgan_gp_losses_match_their_closed_form_on_a_linear_critic():
    model = ek.WGANGP(generator(), linear_critic(W), seed=0)
    model.compile()
    logs = model.evaluate(images(8), batch_size=8, verbose=0, return_dict=True)
    length = np.linalg.norm(W)
    np.testing.assert_allclose(logs["gradient_penalty"], (length - 1) ** 2, rtol=1e-5)
    # L_D = mean D(G(z)) - mean D(x) + 10 gp, with E = -D.
    np.testing.assert_allclose(
        logs["d_loss"],
        logs["energy_real"] - logs["energy_fake"] + 10 * (length - 1) ** 2,
        rtol=1e-5,
    )
    # The energy of an image is -D(x).
    x = images(3)
    np.testing.assert_allclose(
        model.energy(x), -(x.reshape(3, -1) @ W + 0.3), rtol=1e-5, atol=1e-6
    )


def test_gls_gan_at_slope_0_is_the_loss_sensitive_gan():
    x = images(24)
    runs = []
    for cls, kwargs in ((ek.LossSensitiveGAN, {}), (ek.GLSGAN, {"slope": 0.0})):
        keras.utils.set_random_seed(3)
        model = cls(generator(), critic(), seed=0, **kwargs)
        model.compile()
        history = model.fit(x, batch_size=8, epochs=1, shuffle=False, verbose=0)
        runs.append((history.history, numpy_weights(model)))
    (logs_a, weights_a), (logs_b, weights_b) = runs
    for name in ("d_loss", "g_loss", "margin", "gradient_penalty"):
        np.testing.assert_allclose(logs_a[name], logs_b[name], rtol=1e-6)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_gls_gan_at_slope_1_is_the_wasserstein_loss_on_l_plus_the_margin():
    # A bias above |w|_1 keeps every score of images in [-1, 1] positive.
    scores = linear_critic(W, bias=np.abs(W).sum() + 1)
    model = ek.GLSGAN(generator(), scores, slope=1.0, seed=0)
    model.compile()
    logs = model.evaluate(images(8), batch_size=8, verbose=0, return_dict=True)
    expected = (
        logs["energy_real"]
        - logs["energy_fake"]
        + logs["margin"]
        + 10 * logs["gradient_penalty"]
    )
    np.testing.assert_allclose(logs["d_loss"], expected, rtol=1e-5)
    # Positive scores: L = relu(D) = D, whose gradient norm is |w| > 1, so the
    # one-sided penalty is (|w| - 1)^2.
    length = np.linalg.norm(W)
    assert length > 1
    np.testing.assert_allclose(logs["gradient_penalty"], (length - 1) ** 2, rtol=1e-5)


def test_loss_sensitive_gan_margin_and_default_tau():
    model = ek.LossSensitiveGAN(generator(), critic(), seed=0)
    # The official 0.0002 on 64x64x3 with a summed L1, per pixel here.
    assert model.tau == pytest.approx(0.0002 * 12288 / PIXELS)
    assert ek.models.loss_sensitive_gan.default_tau((28, 28, 1)) == pytest.approx(
        0.0031347, rel=1e-4
    )
    model.compile()
    x = images(8)
    logs = model.evaluate(x, batch_size=8, verbose=0, return_dict=True)
    # The margin is tau * |x - G(z)|_1, from the same latents as the loss.
    assert 0 < logs["margin"] < model.tau * 2 * PIXELS
    # The energy is L(x) = relu(D(x)) >= 0.
    assert np.all(model.energy(x) >= 0)


@pytest.mark.parametrize("critic_steps", [3])
def test_critic_steps_per_generator_step(critic_steps):
    model = ek.WGANGP(generator(), critic(), critic_steps=critic_steps, seed=0)
    model.compile()
    # 19 images in batches of 8: three steps, the last of 3 images.
    history = model.fit(images(19), batch_size=8, epochs=2, verbose=0)
    assert int(value(model.g_optimizer.iterations)) == 6
    assert int(value(model.d_optimizer.iterations)) == 6 * critic_steps
    assert int(value(model.optimizer.iterations)) == 6
    assert all(np.isfinite(history.history["gradient_penalty"]))


def test_wgan_gp_defaults_are_the_papers():
    model = ek.WGANGP(generator(), critic())
    assert model.gradient_penalty_weight == 10.0
    assert model.critic_steps == 5
    d_optimizer, g_optimizer = model.default_optimizers()
    for optimizer in (d_optimizer, g_optimizer):
        assert isinstance(optimizer, keras.optimizers.Adam)
        assert value(optimizer.learning_rate) == pytest.approx(1e-4)
        assert optimizer.beta_1 == 0.0
        assert optimizer.beta_2 == 0.9


@pytest.mark.parametrize(
    "cls",
    # The state is the shared base's: one model by default, all in CI's slow step.
    [
        ek.WGANGP,
        pytest.param(ek.LossSensitiveGAN, marks=pytest.mark.slow),
        pytest.param(ek.GLSGAN, marks=pytest.mark.slow),
    ],
)
def test_resume_from_a_saved_model_continues_exactly(cls, tmp_path):
    """One epoch, save, load, one more epoch == two epochs straight: weights,
    both optimizers and the seed generator (latents and interpolates)."""
    x = images(16)
    keras.utils.set_random_seed(1)
    straight = cls(generator(), critic(), critic_steps=2, seed=5)
    keras.utils.set_random_seed(1)
    halves = cls(generator(), critic(), critic_steps=2, seed=5)
    for model in (straight, halves):
        model.compile()
    straight.fit(x, batch_size=8, epochs=2, shuffle=False, verbose=0)
    halves.fit(x, batch_size=8, epochs=1, shuffle=False, verbose=0)
    halves.save(tmp_path / "half.keras")
    loaded = keras.saving.load_model(tmp_path / "half.keras")
    assert type(loaded) is cls
    assert loaded.critic_steps == 2
    loaded.fit(x, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert int(value(loaded.d_optimizer.iterations)) == 8
    for a, b in zip(numpy_weights(straight), numpy_weights(loaded)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_save_load_keeps_every_setting(tmp_path):
    model = ek.GLSGAN(
        generator(),
        critic(),
        slope=-0.5,
        tau=0.01,
        gamma=0.2,
        gradient_penalty_weight=3.0,
        critic_steps=2,
        latent_distribution="normal",
        seed=4,
    )
    model.compile()
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    for name in (
        "slope",
        "tau",
        "gamma",
        "gradient_penalty_weight",
        "critic_steps",
        "latent_distribution",
    ):
        assert getattr(loaded, name) == getattr(model, name), name
    x = images(5)
    np.testing.assert_allclose(loaded.energy(x), model.energy(x), rtol=1e-6)
    # tau left to its default stays a default (it follows the image shape).
    default = ek.LossSensitiveGAN(generator(), critic())
    assert default.get_config()["tau"] is None


def test_same_seed_same_training():
    x = images(16)
    weights = []
    for _ in range(2):
        keras.utils.set_random_seed(2)
        model = ek.WGANGP(generator(), critic(), critic_steps=2, seed=9)
        model.compile()
        model.fit(x, batch_size=8, epochs=1, shuffle=False, verbose=0)
        weights.append(numpy_weights(model))
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (ek.WGANGP, {"gradient_penalty_weight": -1.0}, "gradient_penalty_weight"),
        (ek.WGANGP, {"critic_steps": 0}, "critic_steps"),
        (ek.WGANGP, {"critic_steps": 2.5}, "critic_steps"),
        (ek.LossSensitiveGAN, {"tau": -0.1}, "tau"),
        (ek.LossSensitiveGAN, {"gamma": float("nan")}, "gamma"),
        (ek.GLSGAN, {"slope": 1.5}, "slope"),
    ],
)
def test_bad_settings_are_refused_by_name(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(generator(), critic(), **kwargs)


def test_a_critic_with_several_outputs_is_refused():
    with pytest.raises(ValueError, match="one score per image"):
        ek.WGANGP(generator(), ek.networks.ebgan_mlp_discriminator(image_shape=SHAPE))


def test_batch_norm_under_a_gradient_penalty_warns_why():
    inputs = keras.Input(SHAPE)
    hidden = keras.layers.BatchNormalization(name="bn")(keras.layers.Flatten()(inputs))
    batch_norm_critic = keras.Model(inputs, keras.layers.Dense(1)(hidden))
    with pytest.warns(UserWarning, match="batch norm makes each score depend"):
        ek.WGANGP(generator(), batch_norm_critic)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # No penalty, no warning (the official LS-GAN's weight-decay form).
        ek.LossSensitiveGAN(generator(), batch_norm_critic, gradient_penalty_weight=0)


def test_layer_norm_critic_gives_the_same_values_as_keras_layer_norm():
    x = np.random.default_rng(0).normal(size=(3, 4, 4, 5)).astype("float32")
    ours = ek.networks.LayerNormalization(epsilon=1e-3)
    reference = keras.layers.LayerNormalization(epsilon=1e-3)
    ours.build(x.shape)
    reference.build(x.shape)
    gamma = np.linspace(0.5, 1.5, 5).astype("float32")
    for layer in (ours, reference):
        layer.gamma.assign(gamma)
        layer.beta.assign(gamma - 1)
    np.testing.assert_allclose(
        ops.convert_to_numpy(ours(x)),
        ops.convert_to_numpy(reference(x)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_ddls_on_wgan_gp_samples_the_reports_energy():
    """U(z) = |z|^2 / 2 - D(G(z)) at temperature 1 (Che et al.)."""
    model = ek.WGANGP(generator(), critic(), seed=0)
    sampler = ek.samplers.DDLS(step_size=0.01, num_steps=3, seed=0, record_energy=True)
    out, z = sampler.sample(model, 5)
    assert out.shape == (5, *SHAPE)
    z = np.asarray(z)
    scores = ops.convert_to_numpy(model.discriminator(model.generate(z)))[:, 0]
    expected = 0.5 * np.sum(z**2, axis=1) - scores
    np.testing.assert_allclose(sampler.energy_trace[-1], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls", [ek.WGANGP, ek.LossSensitiveGAN])
def test_rejection_and_metropolis_hastings_run_on_critic_energies(cls):
    model = cls(generator(), critic(), seed=0)
    real = images(64, 7)
    # gamma = 0: exact rejection (the percentile rule is for trained critics;
    # an untrained ReLU loss ties many energies at 0).
    rejection = ek.samplers.RejectionSampler.calibrate(
        model, real, burn_in=256, gamma=0.0, seed=0
    )
    out, z = rejection.sample(model, 5)
    assert out.shape == (5, *SHAPE) and z.shape == (5, model.latent_dim)
    assert 0 < rejection.acceptance_rate <= 1
    mh = ek.samplers.MetropolisHastings.calibrate(model, real, chain_length=4, seed=0)
    out, z = mh.sample(model, 3)
    assert out.shape == (3, *SHAPE)
    assert np.all(np.isfinite(z))


def test_softplus_loss_never_dies_where_relu_does():
    # A critic whose scores are all negative: the ReLU loss is 0 with no
    # gradient (a dead critic), the softplus loss is positive and moves.
    dead = linear_critic(W, bias=-(np.abs(W).sum() + 1))
    x = images(4)
    relu = ek.LossSensitiveGAN(generator(), dead, seed=0)
    np.testing.assert_array_equal(relu.energy(x), 0.0)
    soft = ek.LossSensitiveGAN(generator(), dead, loss_activation="softplus")
    scores = x.reshape(4, -1) @ W - (np.abs(W).sum() + 1)
    np.testing.assert_allclose(soft.energy(x), np.log1p(np.exp(scores)), rtol=1e-4)
    assert np.all(soft.energy(x) > 0)
    with pytest.raises(ValueError, match="loss_activation"):
        ek.LossSensitiveGAN(generator(), critic(), loss_activation="tanh")
