"""BiGAN and BigBiGAN: three optimizers, joint losses, encode/reconstruct, saving."""

from __future__ import annotations

import io
import json
import zipfile

import h5py
import keras
import numpy as np
import pytest
from helpers import IMAGE_SHAPE
from helpers import LATENT_DIM
from helpers import run_in_step
from helpers import slow_off_tensorflow
from helpers import tiny_generator
from helpers import tiny_images
from helpers import tiny_model
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
    from ebgan_keras.run import builder
    from ebgan_keras.run import config

    for name, unary in (("bigan", False), ("bigbigan", True)):
        settings = config.validate(config.load_config(name))
        model = builder.build_model(settings, (28, 28, 1))
        assert isinstance(model, ek.BiGAN)
        assert model.unary_terms is unary
        assert model.encoder.output_shape == (None, model.latent_dim)


# ----------------------------------------------------------------------------
# Encoders for the other models: the latent regressor, discriminator codes
# ----------------------------------------------------------------------------
def test_fit_encoder_inverts_a_frozen_generator():
    model = tiny_model(ek.EBGANPT)
    generator_before = [ops.convert_to_numpy(v).copy() for v in model.generator.weights]
    regressor = ek.inversion.fit_encoder(
        model,
        tiny_images(64, seed=5),
        encoder=tiny_encoder(batch_norm=False),
        epochs=6,
        batch_size=16,
        learning_rate=1e-2,
        reconstruction_weight=0.5,
        seed=0,
    )
    logs = regressor.history.history
    # ||E(G(z)) - z||^2 falls; both terms are logged.
    assert logs["latent_loss"][-1] < 0.7 * logs["latent_loss"][0]
    assert all(value > 0 for value in logs["reconstruction_loss"])
    np.testing.assert_allclose(
        logs["loss"][-1],
        logs["latent_loss"][-1] + 0.5 * logs["reconstruction_loss"][-1],
        rtol=1e-5,
    )
    # The model's generator (shared, BN statistics included) is untouched.
    for before, variable in zip(generator_before, model.generator.weights):
        np.testing.assert_array_equal(before, ops.convert_to_numpy(variable))
    images = tiny_images(3, seed=6)
    assert regressor.encode(images).shape == (3, LATENT_DIM)
    assert regressor.reconstruct(images).shape == (3, *IMAGE_SHAPE)
    with pytest.raises(ValueError, match="encoder") as error:
        ek.inversion.fit_encoder(model, images, encoder=tiny_encoder(3))
    assert f"(N, {LATENT_DIM})" in str(error.value) and "(None, 3)" in str(error.value)


def test_hidden_encoder_features_are_the_last_hidden_layer(trained):
    """`features="hidden"`: the input of the encoder's output layer.

    It is the last hidden layer's activation, so the output layer applied to
    it gives `E(x)` back; odd sizes and n = 1 go through.
    """
    model, _, _ = trained
    images = tiny_images(5, seed=8)
    hidden = model.encode(images, batch_size=2, features="hidden")
    assert hidden.shape == (5, 16) and hidden.dtype == np.float32
    head = model.encoder.get_layer("latents")
    np.testing.assert_allclose(
        ops.convert_to_numpy(head(hidden)), model.encode(images), rtol=1e-5, atol=1e-5
    )
    # Leaky ReLU's output: negative values are 0.2 x positive pre-activations.
    assert (hidden < 0).any() and (hidden > 0).any()
    assert model.encode(images[:1], features="hidden").shape == (1, 16)
    regressor = ek.inversion.LatentRegressor(model.encoder, model.generator)
    np.testing.assert_allclose(
        regressor.encode(images, features="hidden"), hidden, rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="`features` must be one of") as error:
        model.encode(images, features="penultimate")
    assert "'penultimate'" in str(error.value)

    class Subclassed(keras.Model):
        def call(self, x):
            return ops.reshape(x, (ops.shape(x)[0], -1))[:, :LATENT_DIM]

    with pytest.raises(ValueError, match="features='hidden'") as error:
        ek.inversion.encoder_features(Subclassed(name="sub"), images, "hidden")
    assert "'sub'" in str(error.value)


def test_zoo_pictures_show_reconstructions_of_a_model_with_an_encoder(
    trained, tmp_path
):
    """A BiGAN entry's card gets `reconstructions.png`: x, then G(E(x))."""
    from PIL import Image

    from ebgan_keras.zoo import card
    from ebgan_keras.zoo import stages

    model, _, _ = trained
    config = {
        "evaluation": {"reference": "mnist_subset", "reference_split": "test"},
        "training": {"image_size": IMAGE_SHAPE[0]},
        "image_shape": list(IMAGE_SHAPE),
    }
    stages.pictures(model, config, {}, str(tmp_path))
    with Image.open(tmp_path / "reconstructions.png") as picture:
        # 32 pairs, 8 images a row (scale 2): 8 rows.
        assert picture.size == (8 * IMAGE_SHAPE[1] * 2, 8 * IMAGE_SHAPE[0] * 2)
        pixels = np.asarray(picture, "float32") / 127.5 - 1.0
    real = stages._reference_images(config, None, 32)
    first = pixels[: 2 * IMAGE_SHAPE[0] : 2, : 2 * IMAGE_SHAPE[1] : 2]
    np.testing.assert_allclose(first, real[0, ..., 0], atol=0.01)
    second = pixels[: 2 * IMAGE_SHAPE[0] : 2, 2 * IMAGE_SHAPE[1] :: 2][
        :, : IMAGE_SHAPE[1]
    ]
    np.testing.assert_allclose(
        second, np.clip(model.reconstruct(real[:1])[0, ..., 0], -1, 1), atol=0.01
    )
    assert "![reconstructions](reconstructions.png)" in "\n".join(
        card._picture_lines(str(tmp_path))
    )
    # A model without an encoder gets none.
    other = tmp_path / "other"
    stages.pictures(tiny_model(ek.EBGANPT), config, {}, str(other))
    assert (other / "interpolation.png").exists()
    assert not (other / "reconstructions.png").exists()


@pytest.mark.parametrize("cls", [ek.EBGANPT, ek.BEGAN])
def test_discriminator_code_is_the_flattened_encoder_output(cls):
    if cls is ek.BEGAN:
        model = ek.BEGAN(
            ek.networks.began_generator(LATENT_DIM, 8, 1, filters=4),
            ek.networks.began_discriminator(8, 1, filters=4, hidden_dim=5),
        )
        size = 5
    else:
        model = tiny_model(cls)
        size = 8
    images = tiny_images(5, seed=8)
    codes = model.discriminator_code(images, batch_size=2)
    assert codes.shape == (5, size) and codes.dtype == np.float32
    _, expected = model.discriminator(images, training=False)
    np.testing.assert_allclose(codes, ops.convert_to_numpy(expected), atol=1e-6)
    with pytest.raises(ValueError, match="images") as error:
        model.discriminator_code(np.zeros((2, 8, 8, 3), "float32"))
    assert "(N, 8, 8, 1)" in str(error.value) and "(2, 8, 8, 3)" in str(error.value)


# ----------------------------------------------------------------------------
# Representation probes on toys with known answers
# ----------------------------------------------------------------------------
def _clusters(num: int, seed: int, classes: int = 4, dim: int = 6):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, num)
    features = 3.0 * np.eye(classes, dim)[labels] + 0.2 * rng.normal(size=(num, dim))
    return features.astype("float32"), labels


def test_probes_score_separable_features_perfectly():
    train, test = _clusters(200, 0), _clusters(100, 1)
    assert ek.metrics.linear_probe(*train, *test) == 1.0
    for metric in ("cosine", "euclidean"):
        accuracy = ek.metrics.nearest_neighbor_accuracy(*train, *test, metric=metric)
        assert accuracy == 1.0
    # Features may be any (N, ...) array: images are flattened.
    images = train[0].reshape(200, 2, 3, 1)
    assert ek.metrics.linear_probe(images, train[1], images, train[1]) == 1.0


def test_probes_on_shuffled_labels_are_near_chance():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(1500, 8))
    labels = rng.integers(0, 10, 1500)
    train, test = (features[:1000], labels[:1000]), (features[1000:], labels[1000:])
    for accuracy in (
        ek.metrics.linear_probe(*train, *test),
        ek.metrics.nearest_neighbor_accuracy(*train, *test),
    ):
        # Chance is 0.1; 500 test samples: standard deviation ~0.013.
        assert 0.05 < accuracy < 0.16, accuracy


def test_nearest_neighbor_metric_matters_and_bad_input_is_refused():
    reference = np.array([[1.0, 0.0], [10.0, 1.0]])
    query = np.array([[2.0, 0.3]])
    # Closest in angle to [10, 1]; closest in distance to [1, 0].
    assert ek.metrics.nearest_neighbor_accuracy(reference, [0, 1], query, [1]) == 1.0
    euclidean = ek.metrics.nearest_neighbor_accuracy(
        reference, [0, 1], query, [1], metric="euclidean"
    )
    assert euclidean == 0.0
    with pytest.raises(ValueError, match="metric='manhattan'"):
        ek.metrics.nearest_neighbor_accuracy(
            reference, [0, 1], query, [1], metric="manhattan"
        )
    with pytest.raises(ValueError, match="train_labels") as error:
        ek.metrics.linear_probe(reference, [0, 1, 1], query, [1])
    assert "(2,)" in str(error.value) and "(3,)" in str(error.value)
    with pytest.raises(ValueError, match="same size"):
        ek.metrics.linear_probe(reference, [0, 1], np.ones((1, 3)), [1])
    with pytest.raises(ValueError, match="two classes"):
        ek.metrics.linear_probe(reference, [0, 0], query, [1])


# ----------------------------------------------------------------------------
# Zoo: an entry with an encoder ships and loads its third network
# ----------------------------------------------------------------------------
@slow_off_tensorflow
def test_zoo_entry_with_an_encoder_round_trip(tmp_path):
    from ebgan_keras import zoo
    from ebgan_keras.zoo import stages

    config = stages.read_config("bigbigan_mnist")
    config["name"] = "tiny_bigbigan"
    config["generator"]["kwargs"]["hidden_units"] = [16]
    config["encoder"]["kwargs"]["hidden_units"] = [16]
    config["discriminator"]["kwargs"].update(
        image_units=[16], latent_units=[8], joint_units=[16]
    )
    config["training"].update({"data": "mnist_subset", "epochs": 1})
    config["evaluation"].update(
        {"reference": "mnist_subset", "num_samples": 30, "samplers": {"prior": {}}}
    )
    (tmp_path / "recipe").mkdir()
    (tmp_path / "recipe" / "config.json").write_text(json.dumps(config))
    out = tmp_path / "tiny_bigbigan"
    metadata = zoo.build(
        str(tmp_path / "recipe"), out_dir=str(out), steps_per_epoch=2, verbose=0
    )
    assert "encoder.weights.h5" in metadata["files"]
    assert metadata["parameters"]["encoder"] > 0
    assert "Encoder" in (out / "README.md").read_text()
    model = zoo.load(str(out))
    assert isinstance(model, ek.BiGAN) and model.unary_terms
    zoo.check_golden(model, out)  # the energies go through E(x)
    images = tiny_images(3, seed=4).repeat(4, 1).repeat(4, 2)[:, :28, :28]
    trained = keras.saving.load_model(out / "run" / "model.keras")
    np.testing.assert_allclose(model.encode(images), trained.encode(images), atol=1e-5)
    # A damaged encoder file is refused by its sha256.
    damaged = bytearray((out / "encoder.weights.h5").read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (out / "encoder.weights.h5").write_bytes(bytes(damaged))
    with pytest.raises(zoo.entries.IntegrityError, match="encoder.weights.h5"):
        zoo.load(str(out))
