"""Data-parallel training: one step on several devices equals one on one device.

TensorFlow: `tf.distribute.MirroredStrategy` over 2 logical CPU devices.
JAX: `keras.distribution.DataParallel` over 4 host devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=4`). Device layout is
process-wide, so each case runs this file as a script in a subprocess, once,
under the backend it concerns. PyTorch has no Keras data-parallel engine.

Script usage: `python tests/test_distribution.py OUT_DIR`; it writes
`OUT_DIR/<model>.npz` with the single-device and the data-parallel results.
"""

from __future__ import annotations

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ("ebgan", "ebgan_pt", "began", "magan")
GLOBAL_BATCH = 8


def _configs():
    import ebgan_keras as ek

    def networks():
        generator = ek.networks.ebgan_mlp_generator(
            latent_dim=4, image_shape=(8, 8, 1), hidden_units=(16,), batch_norm=False
        )
        discriminator = ek.networks.ebgan_mlp_discriminator(
            image_shape=(8, 8, 1), encoder_units=(16, 8)
        )
        return generator, discriminator

    return {
        "ebgan": lambda: ek.EBGAN(*networks(), margin=3.0, seed=1),
        "ebgan_pt": lambda: ek.EBGANPT(*networks(), margin=3.0, seed=1),
        "began": lambda: ek.BEGAN(
            *networks(), gamma=1.0, initial_k=0.3, lambda_k=0.5, seed=1
        ),
        # One epoch of pre-training, then adversarial: the margin comes from
        # the epoch's energy sums, which must be the global ones.
        "magan": lambda: ek.MAGAN(*networks(), pretrain_epochs=1, seed=1),
    }


def _run(name, scope):
    """Builds `name` with fixed weights, trains 2 epochs of 2 steps, returns state."""
    import keras
    import numpy as np

    rng = np.random.default_rng(123)
    with scope:
        model = _configs()[name]()
        model.compile(
            d_optimizer=keras.optimizers.Adam(0.01),
            g_optimizer=keras.optimizers.Adam(0.01),
        )
    initial = []
    for variable in model.trainable_variables:
        initial.append(rng.normal(scale=0.2, size=variable.shape).astype("float32"))
        variable.assign(initial[-1])
    images = rng.uniform(-1, 1, (2 * GLOBAL_BATCH, 8, 8, 1)).astype("float32")
    history = model.fit(
        images, batch_size=GLOBAL_BATCH, epochs=2, shuffle=False, verbose=0
    )
    record = {f"log_{k}": np.float32(v[-1]) for k, v in history.history.items()}
    for i, variable in enumerate(model.weights):
        record[f"var_{i}"] = np.array(keras.ops.convert_to_numpy(variable))
    for state in ("k", "margin"):
        if hasattr(model, state):
            record[f"state_{state}"] = record[f"var_{_index(model, state)}"]
    record["largest_update"] = np.float32(
        max(
            np.abs(keras.ops.convert_to_numpy(v) - initial[i]).max()
            for i, v in enumerate(model.trainable_variables)
        )
    )
    return model, record


def _index(model, state):
    target = getattr(model, state)
    return next(i for i, v in enumerate(model.weights) if v is target)


def main(out_dir: str) -> None:
    """Runs every model on one device and data-parallel; writes the results."""
    import keras
    import numpy as np

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        devices = ["/cpu:0", "/cpu:1"]
        strategy = tf.distribute.MirroredStrategy(devices)
        single_scope = tf.distribute.get_strategy().scope
        parallel_scope = strategy.scope
    else:
        import contextlib

        import jax

        single_scope = parallel_scope = contextlib.nullcontext
    os.makedirs(out_dir, exist_ok=True)
    for name in NAMES:
        keras.utils.clear_session()
        if backend == "jax":
            keras.distribution.set_distribution(None)
        _, single = _run(name, single_scope())
        if backend == "jax":
            keras.distribution.set_distribution(
                keras.distribution.DataParallel(devices=jax.devices())
            )
        model, parallel = _run(name, parallel_scope())
        record = {f"single/{k}": v for k, v in single.items()}
        record.update({f"parallel/{k}": v for k, v in parallel.items()})
        if backend == "tensorflow":
            record["num_devices"] = np.int32(strategy.num_replicas_in_sync)
        else:  # the devices the trained weights actually live on
            kernel = model.generator.trainable_variables[0].value
            record["num_devices"] = np.int32(len(kernel.sharding.device_set))
        if backend == "tensorflow":
            # Every replica's copy of the model state holds the same value.
            for state in ("k", "margin"):
                if hasattr(model, state):
                    copies = strategy.experimental_local_results(
                        getattr(model, state).value
                    )
                    record[f"replicas/{state}"] = np.array(
                        [float(c.numpy()) for c in copies]
                    )
        np.savez(os.path.join(out_dir, f"{name}.npz"), **record)


# ----------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------
if __name__ != "__main__":
    import keras
    import numpy as np
    import pytest

    BACKEND = keras.backend.backend()
    # Device layouts are process-wide: each case is a subprocess of a minute
    # or more, so the file runs in CI's step of slow tests (`--run-slow`).
    pytestmark = pytest.mark.slow

    @pytest.fixture(scope="module")
    def results(tmp_path_factory):
        if BACKEND == "torch":
            pytest.skip(
                "Keras has no data-parallel engine for PyTorch (use "
                "torch.distributed yourself); see the README"
            )
        out = tmp_path_factory.mktemp("distribution")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.dirname(HERE), env.get("PYTHONPATH", "")]
        )
        if BACKEND == "jax":
            env["XLA_FLAGS"] = (
                env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
            )
        done = subprocess.run(
            [sys.executable, os.path.abspath(__file__), str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        return {name: dict(np.load(out / f"{name}.npz")) for name in NAMES}

    @pytest.mark.parametrize("name", NAMES)
    def test_data_parallel_equals_one_device(results, name):
        record = results[name]
        assert int(record["num_devices"]) == (2 if BACKEND == "tensorflow" else 4)
        single = {k[len("single/") :]: v for k, v in record.items() if "single/" in k}
        parallel = {
            k[len("parallel/") :]: v for k, v in record.items() if "parallel/" in k
        }
        assert set(single) == set(parallel)
        assert {"log_d_loss", "log_g_loss"} <= set(single)
        variables = [key for key in single if key.startswith("var_")]
        assert len(variables) >= 8
        for key in sorted(single):
            np.testing.assert_allclose(
                parallel[key], single[key], rtol=1e-4, atol=1e-5, err_msg=key
            )
        # The step did train: not a comparison of two untouched copies.
        assert single["largest_update"] > 1e-3
        if name == "began":
            assert abs(float(single["state_k"]) - 0.3) > 1e-4
        if name == "magan":
            assert 0 < float(single["state_margin"]) < np.inf

    @pytest.mark.skipif(BACKEND != "tensorflow", reason="tf.distribute replicas")
    @pytest.mark.parametrize("state", ("k", "margin"))
    def test_model_state_is_one_value_across_replicas(results, state):
        name = "began" if state == "k" else "magan"
        copies = results[name][f"replicas/{state}"]
        assert len(copies) == 2
        assert copies[0] == copies[1]
        np.testing.assert_allclose(
            copies[0], results[name][f"single/state_{state}"], rtol=1e-5
        )


if __name__ == "__main__":
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        import tensorflow as tf

        # Before anything else touches the devices.
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
    main(*sys.argv[1:])
