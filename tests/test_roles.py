"""Networks by role: a model declares its networks, and the ring loops over them.

- Batch-norm synchronisation (`run.training._synchronized_batch_norm`) reaches
  every network of a model, BiGAN's encoder included: under a
  `tf.distribute.MirroredStrategy` over 2 logical CPU devices its encoder's
  batch-norm statistics equal one device's (global-batch statistics), where
  per-replica statistics differ. Device layout is process-wide, so that case
  runs this file as a script in a subprocess (TensorFlow only: JAX's
  `DataParallel` runs one global step, and PyTorch has no Keras data-parallel
  engine, so neither has the synchronisation path).
- A model with a third network is one file plus a config: a tiny model
  defined here builds from a config, exports one `{role}.weights.h5` per
  role and loads back through the zoo's entry loader.

Script usage: `python tests/test_roles.py OUT_DIR` writes `OUT_DIR/bn.npz`.
"""

from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GLOBAL_BATCH = 8


def _bigan():
    import ebgan_keras as ek

    generator = ek.networks.ebgan_mlp_generator(
        latent_dim=4, image_shape=(8, 8, 1), hidden_units=(16,), batch_norm=False
    )
    discriminator = ek.networks.bigan_mlp_discriminator(
        image_shape=(8, 8, 1),
        latent_dim=4,
        image_units=(16,),
        latent_units=(8,),
        joint_units=(16,),
    )
    encoder = ek.networks.bigan_mlp_encoder(
        image_shape=(8, 8, 1), latent_dim=4, hidden_units=(16,)
    )
    return ek.BiGAN(generator, discriminator, encoder, seed=1)


def _encoder_statistics(scope, cluster, synchronized: bool) -> dict:
    """Trains a BiGAN one step in `scope`; returns its encoder's BN statistics."""
    import keras
    import numpy as np

    from ebgan_keras.backend.keras_internals import walk_layers
    from ebgan_keras.run import training

    rng = np.random.default_rng(123)
    with scope:
        model = _bigan()
        model.compile(
            d_optimizer=keras.optimizers.Adam(0.01),
            g_optimizer=keras.optimizers.Adam(0.01),
        )
    for variable in model.trainable_variables:
        variable.assign(rng.normal(scale=0.2, size=variable.shape).astype("float32"))
    # Each replica gets half of the batch; the halves differ in mean, so
    # per-replica variances differ from the global batch's.
    images = rng.uniform(-1, 1, (GLOBAL_BATCH, 8, 8, 1)).astype("float32")
    images[GLOBAL_BATCH // 2 :] = np.clip(
        images[GLOBAL_BATCH // 2 :] * 0.2 + 0.7, -1, 1
    )
    if synchronized:
        training._synchronized_batch_norm(model, cluster, True)
    model.fit(images, batch_size=GLOBAL_BATCH, epochs=1, shuffle=False, verbose=0)
    layers = [
        layer
        for layer in walk_layers(model.encoder)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert layers, "the encoder has batch norm"
    record = {}
    for i, layer in enumerate(layers):
        for name in ("moving_mean", "moving_variance"):
            value = keras.ops.convert_to_numpy(getattr(layer, name))
            record[f"{i}/{name}"] = np.array(value)
    return record


def main(out_dir: str) -> None:
    """One device, 2 replicas with and without synchronisation; writes bn.npz."""
    import keras
    import numpy as np
    import tensorflow as tf

    from ebgan_keras.run import distribute

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    cluster = distribute.Cluster("mirrored", 1, 0, 2, strategy)
    record = {}
    runs = {
        "single": (tf.distribute.get_strategy().scope(), False),
        "synchronized": (strategy.scope(), True),
        "per_replica": (strategy.scope(), False),
    }
    for run, (scope, synchronized) in runs.items():
        keras.utils.clear_session()
        for key, value in _encoder_statistics(scope, cluster, synchronized).items():
            record[f"{run}/{key}"] = value
    os.makedirs(out_dir, exist_ok=True)
    np.savez(os.path.join(out_dir, "bn.npz"), **record)


if __name__ != "__main__":
    import json

    import keras
    import numpy as np
    import pytest

    BACKEND = keras.backend.backend()

    @pytest.mark.skipif(
        BACKEND != "tensorflow",
        reason="batch-norm synchronisation is tf.distribute's (JAX's DataParallel "
        "takes global statistics; PyTorch has no Keras data-parallel engine)",
    )
    def test_bigan_encoder_batch_norm_is_synchronized_across_replicas(tmp_path):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.dirname(HERE), env.get("PYTHONPATH", "")]
        )
        done = subprocess.run(
            [sys.executable, os.path.abspath(__file__), str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        record = dict(np.load(tmp_path / "bn.npz"))
        keys = sorted(k[len("single/") :] for k in record if k.startswith("single/"))
        assert any(key.endswith("moving_variance") for key in keys)
        for key in keys:
            # The step moved the statistics off their initial values.
            initial = 0.0 if key.endswith("moving_mean") else 1.0
            assert np.abs(record[f"single/{key}"] - initial).max() > 1e-4, key
            np.testing.assert_allclose(
                record[f"synchronized/{key}"],
                record[f"single/{key}"],
                rtol=1e-4,
                atol=1e-6,
                err_msg=key,
            )
        # Without synchronisation the replicas' statistics are per-replica:
        # the variances differ from the global batch's (what was the bug).
        variance = [key for key in keys if key.endswith("moving_variance")]
        assert any(
            np.abs(record[f"per_replica/{k}"] - record[f"single/{k}"]).max() > 1e-4
            for k in variance
        )

    # ------------------------------------------------------------------
    # A model with a third network: its file (the class below) and a config
    # ------------------------------------------------------------------
    @pytest.fixture
    def triple_gan_class():
        """A GAN with a third network, `projector` (not trained by its losses:
        the ring must carry it through configs, files and saving), registered
        for the test only."""
        import ebgan_keras as ek

        @keras.saving.register_keras_serializable(package="ebgan_keras")
        class TinyTripleGAN(ek.GAN):
            network_roles = ("generator", "discriminator", "projector")

            def __init__(self, generator, discriminator, projector, **kwargs):
                super().__init__(generator, discriminator, **kwargs)
                self.projector = projector

        yield TinyTripleGAN
        keras.saving.get_custom_objects().pop("ebgan_keras>TinyTripleGAN")

    TRIPLE_CONFIG = {
        "class": "TinyTripleGAN",
        "generator": {
            "builder": "ebgan_mlp_generator",
            "kwargs": {"latent_dim": 4, "hidden_units": [8], "batch_norm": False},
        },
        "discriminator": {
            "builder": "gan_mlp_discriminator",
            "kwargs": {"hidden_units": [8]},
        },
        "projector": {
            "builder": "bigan_mlp_encoder",
            "kwargs": {"latent_dim": 3, "hidden_units": [8]},
        },
        "image_shape": [6, 6, 1],
        "training": {"batch_size": 4, "epochs": 1, "seed": 3},
    }

    def test_a_third_network_is_its_file_plus_a_config(triple_gan_class, tmp_path):
        from ebgan_keras import files
        from ebgan_keras import zoo
        from ebgan_keras.run import builder
        from ebgan_keras.run import config as run_config
        from ebgan_keras.zoo import entries

        config = run_config.validate(TRIPLE_CONFIG)
        assert run_config.network_roles("TinyTripleGAN") == (
            "generator",
            "discriminator",
            "projector",
        )
        model = builder.build_model(config)
        assert isinstance(model, triple_gan_class)
        assert list(model.networks()) == ["generator", "discriminator", "projector"]
        assert model.projector.output_shape == (None, 3)
        builder.compile_model(model, config)
        images = np.random.default_rng(0).uniform(-1, 1, (8, 6, 6, 1))
        model.fit(images.astype("float32"), batch_size=4, epochs=1, verbose=0)

        # Saving: `get_config` / `from_config` carry every role.
        saved = tmp_path / "model.keras"
        model.save(saved)
        restored = keras.saving.load_model(saved)
        for role, network in model.networks().items():
            for a, b in zip(network.weights, restored.networks()[role].weights):
                np.testing.assert_array_equal(
                    keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
                )

        # The zoo's files: `{role}.weights.h5` per role, loaded by the entry
        # loader (sha256 checked), no code naming the third network.
        folder = tmp_path / "tiny_triple"
        folder.mkdir()
        files.write_json(folder / entries.CONFIG_FILE, config)
        for role, network in model.networks().items():
            network.save_weights(str(folder / entries.weight_file(role)))
        names = [entries.CONFIG_FILE, *map(entries.weight_file, model.network_roles)]
        files.write_json(
            folder / entries.METADATA_FILE,
            {
                "format_version": 1,
                "class": "TinyTripleGAN",
                "image_shape": [6, 6, 1],
                "weights": {"status": "shipped"},
                "files": {name: files.file_sha256(folder / name) for name in names},
            },
        )
        loaded = zoo.load(str(folder), compile=False)
        latents = model.sample_latents(4, seed=1)
        np.testing.assert_allclose(
            loaded.generate(latents), model.generate(latents), atol=1e-6
        )
        probe = images[:4].astype("float32")
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(loaded.projector(probe)),
            keras.ops.convert_to_numpy(model.projector(probe)),
            atol=1e-6,
        )
        # A missing role file is named, not skipped.
        (folder / entries.weight_file("projector")).unlink()
        with pytest.raises(FileNotFoundError, match="projector.weights.h5"):
            zoo.load(str(folder), compile=False)

    def test_a_config_without_a_role_of_its_class_is_refused(triple_gan_class):
        from ebgan_keras.run import config as run_config

        broken = {k: v for k, v in TRIPLE_CONFIG.items() if k != "projector"}
        with pytest.raises(run_config.ConfigError, match="`projector` is required"):
            run_config.validate(broken)

    def test_bigan_declares_its_encoder_and_legacy_configs_keep_encoder_null():
        from ebgan_keras.run import config as run_config

        assert run_config.network_roles("BiGAN") == (
            "generator",
            "discriminator",
            "encoder",
        )
        assert run_config.network_roles("EBGAN") == ("generator", "discriminator")
        # The previous schema's `"encoder": null` still validates, and stays
        # (shipped entries' recipe hashes were taken over it).
        config = run_config.load_config("ebgan_pt")
        assert config["encoder"] is None
        assert run_config.validate(config) == config
        assert json.dumps(config)  # plain JSON


if __name__ == "__main__":
    import tensorflow as tf

    # Before anything else touches the devices.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    main(*sys.argv[1:])
