"""Tests of the latent samplers on toy models whose answers are known in closed form."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
from scipy import stats

import ebgan_keras as ek
from ebgan_keras import samplers

# The quadratic toy: G(z) = W z, the discriminator reconstructs the constant
# image b, so E(G(z)) = |W z - b|^2 ("sum" energy) and, with a normal prior,
# U(z) = |z|^2 / 2 + |W z - b|^2 / T is a Gaussian with precision
# I + 2 W^T W / T and mean (I + 2 W^T W / T)^-1 (2 / T) W^T b.
DIAGONAL = np.array([1.0, 0.5], "float32")
TARGET = np.array([1.0, -1.0], "float32")


class ScaledEnergyEBGAN(ek.EBGAN):
    """The toy EBGAN with every energy multiplied by `energy_scale`."""

    energy_scale = 1.0

    def compute_energy(self, images, training=False):
        energy, code = super().compute_energy(images, training=training)
        return energy * self.energy_scale, code


def quadratic_model(
    target=TARGET, diagonal=DIAGONAL, latent_distribution="normal", cls=ek.EBGAN
):
    """An EBGAN with a linear generator and a constant reconstruction."""
    dim = len(diagonal)
    latents = keras.Input((dim,))
    x = keras.layers.Dense(
        dim,
        kernel_initializer=keras.initializers.Constant(np.diag(diagonal)),
        bias_initializer="zeros",
    )(latents)
    generator = keras.Model(latents, keras.layers.Reshape((1, 1, dim))(x))
    images = keras.Input((1, 1, dim))
    flat = keras.layers.Flatten()(images)
    reconstruction = keras.layers.Dense(
        dim,
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(np.asarray(target)),
        name="reconstruction",
    )(flat)
    discriminator = keras.Model(
        images, [keras.layers.Reshape((1, 1, dim))(reconstruction), flat]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(
            generator,
            discriminator,
            margin=1.0,
            energy_reduction="sum",
            latent_distribution=latent_distribution,
        )


def gaussian_target(target=TARGET, temperature=1.0):
    """Mean and per-coordinate precision of U for the diagonal toy."""
    precision = 1.0 + 2.0 * DIAGONAL**2 / temperature
    mean = 2.0 * DIAGONAL * np.asarray(target) / temperature / precision
    return mean, precision


def identity_model(dim=2, cls=ek.EBGAN):
    """G(z) = z and E(x) = |x|^2: with real data N(0, s^2 I) the log density
    ratio log p_data / p_G = -(1/s^2 - 1) |x|^2 / 2 - dim log s is affine in E."""
    return quadratic_model(
        target=np.zeros(dim, "float32"), diagonal=np.ones(dim, "float32"), cls=cls
    )


# ----------------------------------------------------------------------
# DDLS
# ----------------------------------------------------------------------
def test_ddls_matches_known_gaussian():
    model = quadratic_model()
    step_size = 0.02
    sampler = samplers.DDLS(step_size=step_size, num_steps=300, seed=0, batch_size=2000)
    _, z = sampler.sample(model, 2000)
    mean, precision = gaussian_target()
    # The unadjusted chain's exact stationary variance on a Gaussian.
    variance = 1.0 / (precision * (1.0 - step_size * precision / 4.0))
    np.testing.assert_allclose(z.mean(axis=0), mean, atol=0.06)
    np.testing.assert_allclose(z.var(axis=0), variance, rtol=0.08)
    assert sampler.acceptance_rate == 1.0


def test_ddls_temperature_scales_the_energy():
    model = quadratic_model()
    sampler = samplers.DDLS(
        step_size=0.02, num_steps=300, temperature=4.0, seed=1, batch_size=2000
    )
    _, z = sampler.sample(model, 2000)
    mean, precision = gaussian_target(temperature=4.0)
    np.testing.assert_allclose(z.mean(axis=0), mean, atol=0.07)
    np.testing.assert_allclose(z.var(axis=0), 1.0 / precision, rtol=0.1)


def test_ddls_temperature_scale_multiplies_the_temperature():
    model = quadratic_model()
    kwargs = dict(step_size=0.05, num_steps=20, seed=5, batch_size=64)
    scaled = samplers.DDLS(temperature=8.0, temperature_scale=0.5, **kwargs)
    assert scaled.chain_temperature == 4.0
    _, z_scaled = scaled.sample(model, 64)
    _, z_plain = samplers.DDLS(temperature=4.0, **kwargs).sample(model, 64)
    np.testing.assert_allclose(z_scaled, z_plain, atol=1e-5)
    # With a calibration: T stays 1 / slope, the chain runs at T * s.
    calibrated = samplers.DDLS.from_calibration(
        {"slope": 0.125, "intercept": 0.0}, temperature_scale=0.5, **kwargs
    )
    assert (calibrated.temperature, calibrated.chain_temperature) == (8.0, 4.0)
    clone = samplers.DDLS.from_config(calibrated.get_config())
    assert clone.temperature_scale == 0.5 and clone.chain_temperature == 4.0
    with pytest.raises(ValueError, match="temperature_scale"):
        samplers.DDLS(temperature_scale=0.0)


def test_metropolis_corrects_a_large_step():
    model = quadratic_model()
    mean, precision = gaussian_target()
    kwargs = dict(step_size=0.3, num_steps=150, seed=2, batch_size=2000)
    unadjusted = samplers.DDLS(**kwargs)
    _, z_unadjusted = unadjusted.sample(model, 2000)
    mala = samplers.DDLS(metropolis=True, **kwargs)
    _, z_mala = mala.sample(model, 2000)
    # The unadjusted chain over-disperses on the stiff coordinate (by about
    # 1 / (1 - eps * p / 4) = 1.29); MALA targets exp(-U) exactly.
    assert z_unadjusted.var(axis=0)[0] > 1.15 / precision[0]
    np.testing.assert_allclose(z_mala.var(axis=0), 1.0 / precision, rtol=0.1)
    np.testing.assert_allclose(z_mala.mean(axis=0), mean, atol=0.06)
    assert 0.3 < mala.acceptance_rate < 1.0


def test_zero_noise_converges_to_the_minimum():
    model = quadratic_model()
    sampler = samplers.DDLS(step_size=0.1, num_steps=300, noise_scale=0.0, seed=3)
    _, z = sampler.sample(model, 64)
    mean, _ = gaussian_target()
    np.testing.assert_allclose(z, np.broadcast_to(mean, z.shape), atol=1e-4)


def test_uniform_prior_matches_truncated_gaussian_and_stays_in_the_box():
    model = quadratic_model(latent_distribution="uniform")
    sampler = samplers.DDLS(
        step_size=0.05, num_steps=300, metropolis=True, seed=4, batch_size=2000
    )
    _, z = sampler.sample(model, 2000)
    assert np.all(np.abs(z) <= 1.0)
    # The prior is flat on [-1, 1]: the target is exp(-|W z - b|^2) there,
    # per coordinate a normal with mean b_i / w_i and variance 1 / (2 w_i^2).
    for i in range(2):
        center = TARGET[i] / DIAGONAL[i]
        scale = 1.0 / (np.sqrt(2.0) * DIAGONAL[i])
        low, high = (-1.0 - center) / scale, (1.0 - center) / scale
        truncated = stats.truncnorm(low, high, loc=center, scale=scale)
        assert abs(z[:, i].mean() - truncated.mean()) < 0.04
        assert abs(z[:, i].var() - truncated.var()) < 0.1 * truncated.var()


def test_compiled_and_eager_chains_agree():
    model = quadratic_model()
    for metropolis in (False, True):
        kwargs = dict(step_size=0.2, num_steps=15, metropolis=metropolis)
        _, z_compiled = samplers.DDLS(jit_compile=True, **kwargs).sample(
            model, 50, seed=7
        )
        _, z_eager = samplers.DDLS(jit_compile=False, **kwargs).sample(
            model, 50, seed=7
        )
        np.testing.assert_allclose(z_compiled, z_eager, atol=1e-5)


def test_ddls_any_number_of_samples():
    """Batches of 256 chains and a last batch of another size: the chain is
    retraced for the second shape (TensorFlow once crashed there, for n
    neither <= 256 nor a multiple of 256)."""
    model = quadratic_model()
    sampler = samplers.DDLS(
        step_size=0.05, num_steps=2, seed=0, metropolis=True, record_energy=True
    )
    for n in (1, 255, 257, 300, 1000):
        images, z = sampler.sample(model, n, seed=3)
        assert images.shape == (n, 1, 1, 2) and z.shape == (n, 2)
        assert np.all(np.isfinite(z))
        assert sampler.energy_trace.shape == (3, n)
        # The trace's last row is the energy of the returned latents.
        np.testing.assert_allclose(
            sampler.energy_trace[-1], sampler.latent_energy(model, z), rtol=1e-4
        )


def test_same_seed_same_samples():
    model = quadratic_model()
    first = samplers.DDLS(num_steps=10, seed=11)
    second = samplers.DDLS(num_steps=10, seed=11)
    images_a, z_a = first.sample(model, 8)
    images_b, z_b = second.sample(model, 8)
    np.testing.assert_array_equal(z_a, z_b)
    np.testing.assert_array_equal(images_a, images_b)
    # The stream moves on: a second call gives new samples, and so does
    # another seed.
    _, z_next = first.sample(model, 8)
    assert not np.allclose(z_a, z_next)
    _, z_other = samplers.DDLS(num_steps=10, seed=12).sample(model, 8)
    assert not np.allclose(z_a, z_other)
    np.testing.assert_array_equal(
        first.sample(model, 8, seed=5)[1], second.sample(model, 8, seed=5)[1]
    )


def test_cached_chain_sees_changed_weights():
    model = quadratic_model()
    sampler = samplers.DDLS(step_size=0.1, num_steps=200, noise_scale=0.0, seed=0)
    _, z = sampler.sample(model, 4)
    np.testing.assert_allclose(z[0], gaussian_target()[0], atol=1e-4)
    new_target = np.array([-2.0, 0.5], "float32")
    layer = model.discriminator.get_layer("reconstruction")
    layer.bias.assign(new_target)
    _, z = sampler.sample(model, 4)
    np.testing.assert_allclose(z[0], gaussian_target(new_target)[0], atol=1e-4)


def test_step_follows_the_langevin_update():
    model = quadratic_model()
    z = np.array([[0.5, -1.5], [2.0, 0.0]], "float32")
    step_size = 0.1
    sampler = samplers.DDLS(step_size=step_size, noise_scale=0.0)
    gradient = z + 2.0 * DIAGONAL * (DIAGONAL * z - TARGET)
    np.testing.assert_allclose(
        sampler.step(model, z), z - 0.5 * step_size * gradient, rtol=1e-5
    )
    noisy = samplers.DDLS(step_size=step_size)
    difference = noisy.step(model, z, seed=1) - (z - 0.5 * step_size * gradient)
    assert np.all(np.abs(difference) > 0)
    np.testing.assert_array_equal(
        noisy.step(model, z, seed=1), noisy.step(model, z, seed=1)
    )


def test_energy_trace_is_recorded_and_descends_without_noise():
    model = quadratic_model()
    sampler = samplers.DDLS(
        step_size=0.05, num_steps=20, noise_scale=0.0, record_energy=True, seed=0
    )
    _, z = sampler.sample(model, 16)
    trace = sampler.energy_trace
    assert trace.shape == (21, 16)
    assert np.all(np.diff(trace, axis=0) <= 1e-5)
    np.testing.assert_allclose(trace[-1], sampler.latent_energy(model, z), rtol=1e-4)


def test_record_every_records_the_same_chain():
    model = quadratic_model()
    kwargs = dict(step_size=0.1, num_steps=10, metropolis=True, seed=5)
    _, z_plain = samplers.DDLS(**kwargs).sample(model, 200)
    sampler = samplers.DDLS(record_every=4, record_energy=True, **kwargs)
    _, z = sampler.sample(model, 200)
    # Recording does not change the chain; frames at steps 0, 4, 8 and 10.
    np.testing.assert_array_equal(z, z_plain)
    assert sampler.path_steps == [0, 4, 8, 10]
    assert sampler.latent_path.shape == (4, 200, 2)
    np.testing.assert_array_equal(sampler.latent_path[-1], z)
    for frame, step in zip(sampler.latent_path, sampler.path_steps):
        np.testing.assert_allclose(
            sampler.latent_energy(model, frame), sampler.energy_trace[step], rtol=1e-4
        )
    # A uniform prior's path stays in the box.
    uniform = quadratic_model(latent_distribution="uniform")
    sampler = samplers.DDLS(step_size=0.1, num_steps=3, record_every=1, seed=0)
    _, z = sampler.sample(uniform, 8)
    assert sampler.latent_path.shape == (4, 8, 2)
    assert np.all(np.abs(sampler.latent_path) <= 1.0)
    np.testing.assert_allclose(sampler.latent_path[-1], z, atol=1e-6)


def test_calibrated_temperature_scales_with_the_energy():
    """Energies c times larger: a temperature c times larger, the same chain."""
    scale = 1000.0
    models = [identity_model(cls=ScaledEnergyEBGAN) for _ in range(2)]
    models[1].energy_scale = scale
    real = real_toy_images(500)
    kwargs = dict(step_size=0.05, num_steps=30, seed=3)
    first, second = (samplers.DDLS.calibrate(m, real, **kwargs) for m in models)
    np.testing.assert_allclose(second.temperature / first.temperature, scale, rtol=1e-5)
    np.testing.assert_allclose(
        second.calibration.slope * scale, first.calibration.slope, rtol=1e-5
    )
    _, z_first = first.sample(models[0], 64)
    _, z_second = second.sample(models[1], 64)
    np.testing.assert_allclose(z_first, z_second, atol=1e-4)


def test_calibrated_temperature_recovers_the_log_density_ratio():
    """Real data N(0, s^2 I), G(z) = z, E = |x|^2: the log density ratio is
    -a |x|^2 + const with a = (1/s^2 - 1) / 2, so the calibrated temperature
    is 1 / a and DDLS samples the data: z ~ N(0, s^2 I)."""
    model = identity_model()
    sampler = samplers.DDLS.calibrate(
        model,
        real_toy_images(4000),
        step_size=0.02,
        num_steps=300,
        seed=0,
        batch_size=2000,
    )
    slope = (1.0 / REAL_SCALE**2 - 1.0) / 2.0
    assert abs(sampler.temperature - 1.0 / slope) < 0.1 / slope
    assert sampler.temperature == 1.0 / sampler.calibration.slope
    _, z = sampler.sample(model, 2000)
    np.testing.assert_allclose(z.var(axis=0), REAL_SCALE**2, rtol=0.1)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=0.05)


def test_ddls_on_the_mlp_networks():
    model = ek.EBGAN(
        ek.networks.ebgan_mlp_generator(latent_dim=8, hidden_units=(16,)),
        ek.networks.ebgan_mlp_discriminator(encoder_units=(16, 8)),
        margin=1.0,
        energy_reduction="mean",
    )
    sampler = samplers.DDLS(step_size=1e-2, num_steps=5, seed=0, record_energy=True)
    images, z = sampler.sample(model, 5)
    assert images.shape == (5, 28, 28, 1) and z.shape == (5, 8)
    assert np.all(np.isfinite(images)) and np.all(np.isfinite(sampler.energy_trace))


# ----------------------------------------------------------------------
# Rejection sampling and MH-GAN
# ----------------------------------------------------------------------
REAL_SCALE = 0.7


def real_toy_images(num, seed=0):
    rng = np.random.default_rng(seed)
    return (REAL_SCALE * rng.standard_normal((num, 1, 1, 2))).astype("float32")


def test_calibration_recovers_the_log_density_ratio():
    model = identity_model()
    sampler = samplers.RejectionSampler.calibrate(
        model, real_toy_images(4000), burn_in=100, seed=0
    )
    slope = (1.0 / REAL_SCALE**2 - 1.0) / 2.0
    intercept = -2.0 * np.log(REAL_SCALE)
    assert abs(sampler.calibration.slope - slope) < 0.12 * slope
    assert abs(sampler.calibration.intercept - intercept) < 0.12 * intercept


def test_rejection_sampling_accepts_at_the_right_rate_and_corrects():
    model = identity_model()
    sampler = samplers.RejectionSampler.calibrate(
        model, real_toy_images(4000), burn_in=4000, gamma=0.0, seed=0
    )
    _, z = sampler.sample(model, 2000)
    # gamma = 0 is exact rejection sampling: accept exp(d - d_max), so the
    # rate is 1 / max(p_data / p_G) = s^dim and the kept samples follow p_data.
    assert abs(sampler.acceptance_rate - REAL_SCALE**2) < 0.06
    np.testing.assert_allclose(z.var(axis=0), REAL_SCALE**2, rtol=0.12)
    _, plain = samplers.Prior(seed=0).sample(model, 2000)
    assert plain.var(axis=0).min() > 0.85


def test_rejection_score_formula_and_gamma_percentile():
    model = identity_model()
    sampler = samplers.RejectionSampler.calibrate(
        model, real_toy_images(500), burn_in=1000, gamma_percentile=50.0, seed=0
    )
    logits = np.array([sampler.d_max - 3.0, sampler.d_max - 0.5])
    expected = sigmoid(
        logits
        - sampler.d_max
        - np.log(1.0 - np.exp(logits - sampler.d_max - 1e-6))
        - sampler.gamma
    )
    np.testing.assert_allclose(sampler.acceptance_probability(logits), expected)
    np.testing.assert_allclose(
        sampler.acceptance_probability(logits, gamma=0.0),
        np.exp(logits - sampler.d_max),
        rtol=1e-5,
    )
    # gamma is the median of F over a burn-in: about half the burn-in has
    # F > gamma, i.e. an acceptance probability above one half.
    _, z = samplers.Prior(seed=99).sample(model, 4000)
    images = z.reshape(-1, 1, 1, 2)
    energy = np.sum(np.square(images.reshape(len(z), -1)), axis=1)
    probability = sampler.acceptance_probability(sampler.calibration.logit(energy))
    assert abs(np.mean(probability > 0.5) - 0.5) < 0.05


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_mh_acceptance_matches_its_formula():
    from ebgan_keras.samplers.metropolis_hastings import acceptance_probability

    d_current = np.array([-2.0, 0.3, 1.5, 4.0])
    d_proposal = np.array([1.0, 0.3, -0.5, 2.0])
    real_current, real_proposal = sigmoid(d_current), sigmoid(d_proposal)
    expected = np.minimum(1.0, (1.0 / real_current - 1.0) / (1.0 / real_proposal - 1.0))
    np.testing.assert_allclose(acceptance_probability(d_current, d_proposal), expected)


def test_metropolis_hastings_corrects_the_distribution():
    model = identity_model()
    sampler = samplers.MetropolisHastings.calibrate(
        model, real_toy_images(4000), chain_length=40, seed=0
    )
    _, z = sampler.sample(model, 2000)
    np.testing.assert_allclose(z.var(axis=0), REAL_SCALE**2, rtol=0.12)
    # At stationarity the current state follows p_data and the proposal p_G:
    # the mean acceptance is E[min(1, exp(d(x') - d(x)))].
    from ebgan_keras.samplers.metropolis_hastings import acceptance_probability

    rng = np.random.default_rng(1)
    current = REAL_SCALE * rng.standard_normal((100_000, 2))
    proposal = rng.standard_normal((100_000, 2))
    logit = sampler.calibration.logit
    expected = acceptance_probability(
        logit(np.sum(current**2, axis=1)), logit(np.sum(proposal**2, axis=1))
    ).mean()
    assert abs(sampler.acceptance_rate - expected) < 0.04


# ----------------------------------------------------------------------
# Truncation, prior, registry and errors
# ----------------------------------------------------------------------
def test_truncation_normal_resamples_out_of_range_entries():
    model = quadratic_model()
    _, z = samplers.Truncation(threshold=0.5, seed=0).sample(model, 4000)
    assert np.all(np.abs(z) <= 0.5)
    truncated = stats.truncnorm(-0.5, 0.5)
    np.testing.assert_allclose(z.var(axis=0), truncated.var(), rtol=0.08)


def test_truncation_uniform_shrinks_the_box():
    model = quadratic_model(latent_distribution="uniform")
    _, z = samplers.Truncation(threshold=0.4, seed=0).sample(model, 4000)
    assert np.all(np.abs(z) <= 0.4)
    np.testing.assert_allclose(z.var(axis=0), 0.4**2 / 3.0, rtol=0.08)


def test_prior_sampler_follows_the_prior_and_returns_matching_images():
    model = quadratic_model()
    images, z = samplers.Prior(seed=0).sample(model, 1000)
    np.testing.assert_allclose(z.var(axis=0), 1.0, rtol=0.12)
    np.testing.assert_allclose(images.reshape(1000, 2), z * DIAGONAL, rtol=1e-5)


@pytest.mark.parametrize(
    "sampler",
    [
        samplers.Prior(seed=1),
        samplers.Truncation(threshold=0.7, seed=2),
        samplers.DDLS(step_size=0.05, num_steps=7, metropolis=True, seed=3),
        samplers.DDLS(
            calibration={"slope": 0.25, "intercept": 0.5}, record_every=3, seed=4
        ),
        samplers.RejectionSampler(
            calibration={"slope": 1.0, "intercept": 0.5}, d_max=2.0, gamma=0.1
        ),
        samplers.MetropolisHastings(
            calibration={"slope": 1.0, "intercept": 0.5}, chain_length=3
        ),
    ],
)
def test_config_round_trip_and_string_ids(sampler):
    restored = samplers.get(samplers.serialize(sampler))
    assert type(restored) is type(sampler)
    assert restored.get_config() == sampler.get_config()
    assert type(samplers.get(sampler.name)) is type(sampler)
    restored_by_keras = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(sampler)
    )
    assert restored_by_keras.get_config() == sampler.get_config()


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match="Received: identifier='nope'"):
        samplers.get("nope")
    with pytest.raises(ValueError, match="step_size"):
        samplers.DDLS(step_size=-1.0)
    with pytest.raises(ValueError, match="noise_scale"):
        samplers.DDLS(metropolis=True, noise_scale=0.0)
    with pytest.raises(ValueError, match="Received: record_every=0"):
        samplers.DDLS(record_every=0)
    calibration = {"slope": 0.5, "intercept": 0.0}
    with pytest.raises(ValueError, match="disagree.*Received: temperature=3.0"):
        samplers.DDLS(temperature=3.0, calibration=calibration)
    with pytest.raises(ValueError, match="Received: calibration.slope=-0.5"):
        samplers.DDLS(calibration={"slope": -0.5, "intercept": 0.0})
    with pytest.raises(ValueError, match="threshold"):
        samplers.Truncation(threshold=0.0)
    model = quadratic_model()
    with pytest.raises(RuntimeError, match="calibrate"):
        samplers.RejectionSampler().sample(model, 4)
    with pytest.raises(RuntimeError, match="calibrate"):
        samplers.MetropolisHastings().sample(model, 4)
    with pytest.raises(ValueError, match="num_samples"):
        samplers.Prior().sample(model, 0)
    with pytest.raises(ValueError, match="shape"):
        samplers.DDLS().step(model, np.zeros((3, 5), "float32"))
    with pytest.raises(ValueError, match="real_images"):
        samplers.MetropolisHastings.calibrate(model, np.zeros((4, 2), "float32"))
    real = real_toy_images(20)
    with pytest.raises(ValueError, match="sets `temperature`.*temperature=2.0"):
        samplers.DDLS.calibrate(model, real, temperature=2.0)
    # An energy higher on real images than on generated ones is no logit.
    with pytest.raises(ValueError, match="slope must be > 0"):
        samplers.DDLS.calibrate(identity_model(), 3.0 * real_toy_images(200), seed=0)
    with pytest.raises(TypeError, match="Missing"):
        samplers.Prior().sample(object(), 4)


# ----------------------------------------------------------------------
# The factory: settings (a card's, a recipe's, the CLI's) -> a sampler
# ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sampler", "settings", "match"),
    [
        ("ddls", {"step_size": float("nan")}, r"`step_size` must be a finite"),
        ("ddls", {"num_steps": 1e9}, r"`num_steps` must be an int >= 1 and <= 10000"),
        ("ddls", {"num_steps": 2.5}, r"`num_steps` must be an int"),
        ("ddls", {"temperature_scale": -1.0}, r"`temperature_scale` must be a fin"),
        ("ddls", {"temperature_scale": "x"}, r"`temperature_scale` must be a fin"),
        ("ddls", {"temperature": "hot"}, r"'calibrated' or a finite number > 0"),
        ("ddls", {"temperature": float("inf")}, r"'calibrated' or a finite number"),
        ("ddls", {"noise_scale": -0.1}, r"`noise_scale` must be a finite number >= 0"),
        ("ddls", {"calibration": {"slope": 1.0}}, r"`calibration` must be an object"),
        ("ddls", {"metropolis": "yes"}, r"`metropolis` must be true or false"),
        ("ddls", {"steps": 3}, r"unknown setting\(s\) \['steps'\]"),
        ("truncation", {"threshold": 0.0}, r"`threshold` must be a finite number > 0"),
        ("mh", {"chain_length": 10**9}, r"`chain_length` must be an int >= 1 and"),
    ],
)
def test_factory_checks_every_setting_by_name(sampler, settings, match):
    from ebgan_keras.samplers import factory

    with pytest.raises(ValueError, match=match) as caught:
        factory.check_settings(sampler, settings, "zoo entry 'x' metadata.json")
    assert str(caught.value).startswith("zoo entry 'x' metadata.json: ")
    with pytest.raises(ValueError, match=match):
        factory.make_sampler(sampler, settings, seed=0)


def test_factory_takes_a_cards_ddls_at_its_chain_temperature():
    from ebgan_keras import zoo
    from ebgan_keras.samplers import factory

    description = zoo.describe("ebgan_pt_mnist")
    card = description["metrics"]["ddls"]["sampler"]
    settings = factory.card_settings(description, "ddls")
    assert settings["temperature"] == "calibrated"
    assert settings["temperature_scale"] == card["temperature_scale"] == 0.125
    sampler = factory.make_sampler("ddls", settings, seed=0)
    assert sampler.temperature == pytest.approx(card["temperature"], rel=1e-12)
    assert sampler.chain_temperature == pytest.approx(
        card["temperature"] * card["temperature_scale"], rel=1e-12
    )
    assert (sampler.step_size, sampler.num_steps) == (card["step_size"], 50)
    # The exporter reads the same settings through the same factory.
    exported = ek.run.export.check_sampler("ddls", settings)
    assert exported["temperature"] * exported["temperature_scale"] == pytest.approx(
        sampler.chain_temperature, rel=1e-12
    )
    # A calibrated temperature with neither a fit nor real images is refused.
    with pytest.raises(ValueError, match="calibrates the energy on real images"):
        factory.make_sampler("ddls", {"temperature": "calibrated"}, seed=0)


def test_factory_refuses_a_malformed_card():
    from ebgan_keras import zoo
    from ebgan_keras.samplers import factory

    description = zoo.describe("ebgan_pt_mnist")
    broken = {**description, "metrics": []}
    with pytest.raises(ValueError, match=r"`metrics` must be an object"):
        factory.card_settings(broken, "ddls", "zoo entry 'e'")
    metrics = json_copy(description["metrics"])
    metrics["ddls"]["sampler"]["num_steps"] = 1e9
    with pytest.raises(ValueError, match=r"zoo entry 'e' metadata.json: `num_steps`"):
        factory.card_settings(
            {**description, "metrics": metrics}, "ddls", "zoo entry 'e'"
        )


def json_copy(value):
    import json

    return json.loads(json.dumps(value))
