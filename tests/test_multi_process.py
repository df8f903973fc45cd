"""Training across processes equals one process; a dead process fails the rest.

TensorFlow: `tf.distribute.MultiWorkerMirroredStrategy`, two worker processes
on localhost described by `TF_CONFIG`. JAX: `jax.distributed.initialize` of
two processes (gloo CPU collectives) and `keras.distribution.DataParallel`
over their devices. Both through the one training driver
(`ebgan_keras.run.training.train`, `cluster` from `ek.run.distribute.setup`), with a
global batch of 8 (4 per process), against the same driver in one process
with batch 8.

Script usage (what the tests spawn): `python tests/test_multi_process.py
MODE OUT_DIR [COORDINATOR NUM_PROCESSES PROCESS_ID]`, `MODE` one of `none`,
`multi-worker` (with `TF_CONFIG` set) or `multi-process`. Each process
trains every model of `MODELS` and writes its own copy of the model's state
(weights, batch-norm statistics, both optimizers, `k`, the seed generator)
to `OUT_DIR/<model>_process<i>.npz`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GLOBAL_BATCH = 8
STEPS, EPOCHS = 3, 2
#: The death test's epochs are long enough to kill a worker in the middle.
STEPS_PER_EPOCH = 50
IMAGE_SIZE = 8

MODELS = {
    # Batch norm in the generator: its statistics must be the global batch's.
    "ebgan_pt_mlp": {
        "class": "EBGANPT",
        "model": {"margin": 3.0},
        "generator": {
            "builder": "ebgan_mlp_generator",
            "kwargs": {"latent_dim": 4, "hidden_units": [16]},
        },
        "discriminator": {
            "builder": "ebgan_mlp_discriminator",
            "kwargs": {"encoder_units": [16, 8]},
        },
    },
    "ebgan_pt_conv": {
        "class": "EBGANPT",
        "model": {"margin": 3.0},
        "generator": {
            "builder": "dcgan_generator",
            "kwargs": {"latent_dim": 4, "filters": 8},
        },
        "discriminator": {
            "builder": "ebgan_conv_discriminator",
            "kwargs": {"filters": [4, 8]},
        },
    },
    "began": {
        "class": "BEGAN",
        "model": {"gamma": 1.0, "initial_k": 0.3, "lambda_k": 0.5},
        "generator": {
            "builder": "began_generator",
            "kwargs": {"latent_dim": 4, "filters": 4},
        },
        "discriminator": {
            "builder": "began_discriminator",
            "kwargs": {"filters": 4, "hidden_dim": 4},
        },
    },
}


def run_config(name: str) -> dict:
    """The validated run config of `name`: tiny nets, 8x8 MNIST, 2 x 3 steps."""
    from ebgan_keras.run import config as schema

    config = dict(MODELS[name], format_version=1, name=name)
    config["training"] = {
        "data": "mnist_subset",
        "image_size": IMAGE_SIZE,
        "batch_size": GLOBAL_BATCH,
        "epochs": EPOCHS,
        "steps_per_epoch": STEPS,
        "seed": 3,
        "learning_rate": 0.01,
    }
    return schema.validate(config)


def _callbacks(name: str, out_dir: str, process_index: int) -> list:
    import keras
    import numpy as np

    class WellConditionedStart(keras.callbacks.Callback):
        """Random weights of scale 0.2 at a fresh start, the same everywhere.

        Zero biases give gradients near zero, whose sign Adam's first steps
        amplify from float noise; these start from gradients well above it.
        """

        def on_train_begin(self, logs=None):
            if int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)):
                return
            rng = np.random.default_rng(123)
            for variable in self.model.trainable_variables:
                value = rng.normal(scale=0.2, size=variable.shape)
                variable.assign(value.astype("float32"))

    class DumpState(keras.callbacks.Callback):
        """Writes this process's copy of the whole state at the end."""

        def on_train_end(self, logs=None):
            record = {}
            model = self.model
            for group, variables in (
                ("model", model.weights),
                ("optimizer", model.optimizer.variables),
            ):
                for i, variable in enumerate(variables):
                    value = keras.ops.convert_to_numpy(variable.value)
                    record[f"{group}/{i:03d}/{variable.path}"] = np.array(value)
            for state in ("k",):
                if hasattr(model, state):
                    record[f"state/{state}"] = np.array(
                        keras.ops.convert_to_numpy(getattr(model, state).value)
                    )
            record["state/seed"] = np.array(
                keras.ops.convert_to_numpy(model.seed_generator.state.value)
            )
            for optimizer in ("d_optimizer", "g_optimizer"):
                record[f"state/{optimizer}_iterations"] = np.array(
                    keras.ops.convert_to_numpy(getattr(model, optimizer).iterations)
                )
            path = os.path.join(out_dir, f"{name}_process{process_index}.npz")
            np.savez(path, **record)

    return [WellConditionedStart(), DumpState()]


def main(mode: str, out_dir: str, *coordinator) -> None:
    """Trains every model of `MODELS` in this process of a `mode` run."""
    import ebgan_keras as ek
    from ebgan_keras.run import training

    settings = {}
    if coordinator:
        settings = {
            "coordinator": coordinator[0],
            "num_processes": int(coordinator[1]),
            "process_id": int(coordinator[2]),
        }
    cluster = ek.run.distribute.setup(mode, timeout_s=20, **settings)
    for name in MODELS:
        training.train(
            run_config(name),
            os.path.join(out_dir, f"run_{name}"),
            verbose=0,
            callbacks=_callbacks(name, out_dir, cluster.process_index),
            cluster=cluster,
        )


# ----------------------------------------------------------------------------
# Launching processes (also used by benchmarks/scaling.py)
# ----------------------------------------------------------------------------
def free_ports(count: int) -> list[int]:
    """Ports free on localhost now (bound to port 0, then released)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("localhost", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def process_envs(backend: str, num_processes: int) -> list[tuple[dict, list[str]]]:
    """`(environment, extra arguments)` of each process of a localhost run."""
    base = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    base["PYTHONPATH"] = os.pathsep.join([ROOT, base.get("PYTHONPATH", "")])
    base.pop("XLA_FLAGS", None)
    if backend == "tensorflow":
        workers = [f"localhost:{port}" for port in free_ports(num_processes)]
        return [
            (
                dict(
                    base,
                    TF_CONFIG=json.dumps(
                        {
                            "cluster": {"worker": workers},
                            "task": {"type": "worker", "index": i},
                        }
                    ),
                ),
                [],
            )
            for i in range(num_processes)
        ]
    (port,) = free_ports(1)
    return [
        (base, [f"localhost:{port}", str(num_processes), str(i)])
        for i in range(num_processes)
    ]


# ----------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------
if __name__ != "__main__":
    import keras
    import numpy as np
    import pytest

    BACKEND = keras.backend.backend()
    MODE = {"tensorflow": "multi-worker", "jax": "multi-process"}.get(BACKEND)
    # Two or three processes of a minute each: CI's step of slow tests.
    pytestmark = [
        pytest.mark.slow,
        pytest.mark.skipif(
            MODE is None,
            reason="Keras has no multi-process engine for PyTorch (see the README)",
        ),
    ]

    def _spawn(args, env):
        return subprocess.Popen(
            [sys.executable, *args],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def _kill(processes):
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    def _outputs(processes, timeout):
        """Each process's output; all are killed if one outlives `timeout`."""
        try:
            return [p.communicate(timeout=timeout)[0] for p in processes]
        finally:
            _kill(processes)

    @pytest.fixture(scope="module")
    def results(tmp_path_factory):
        single_dir = tmp_path_factory.mktemp("one_process")
        multi_dir = tmp_path_factory.mktemp("two_processes")
        script = os.path.abspath(__file__)
        envs = process_envs(BACKEND, 2)
        # The workers' temporary folders go here, to be checked afterwards.
        worker_tmp = tmp_path_factory.mktemp("worker_tmp")
        start = time.perf_counter()
        processes = [
            _spawn(
                [script, MODE, str(multi_dir), *extra],
                dict(env, TMPDIR=str(worker_tmp)),
            )
            for env, extra in envs
        ]
        single_env = dict(envs[0][0])
        single_env.pop("TF_CONFIG", None)
        single = _spawn([script, "none", str(single_dir)], single_env)
        outputs = _outputs([*processes, single], timeout=900)
        seconds = time.perf_counter() - start
        for process, output in zip([*processes, single], outputs):
            assert process.returncode == 0, output[-4000:]
        load = lambda folder, name, i: dict(  # noqa: E731
            np.load(folder / f"{name}_process{i}.npz")
        )
        return {
            name: {
                "single": load(single_dir, name, 0),
                "workers": [load(multi_dir, name, i) for i in range(2)],
                "run_dir": multi_dir / f"run_{name}",
                "single_run_dir": single_dir / f"run_{name}",
            }
            for name in MODELS
        } | {"seconds": seconds, "worker_tmp": worker_tmp}

    @pytest.mark.parametrize("name", sorted(MODELS))
    def test_two_processes_train_to_the_weights_of_one(results, name):
        record = results[name]
        single, workers = record["single"], record["workers"]
        assert set(workers[0]) == set(single) == set(workers[1])
        # Every piece of state, on every process: weights, batch-norm moving
        # statistics, both optimizers' moments and iterations, k, the seed.
        largest = 0.0
        for key in sorted(single):
            for worker in workers:
                np.testing.assert_allclose(
                    worker[key], single[key], rtol=1e-4, atol=1e-5, err_msg=key
                )
                if worker[key].dtype.kind == "f":
                    difference = np.abs(worker[key] - single[key]).max(initial=0)
                    largest = max(largest, float(difference))
        print(f"{name}: largest difference to one process {largest:.2e}")
        # The processes hold bit-identical copies of the state.
        for key in single:
            np.testing.assert_array_equal(workers[0][key], workers[1][key], key)
        assert int(single["state/d_optimizer_iterations"]) == STEPS * EPOCHS
        assert int(single["state/g_optimizer_iterations"]) == STEPS * EPOCHS
        if name == "began":
            assert abs(float(single["state/k"]) - 0.3) > 1e-3
        if name == "ebgan_pt_mlp":
            moving = [k for k in single if "moving_mean" in k]
            assert moving and all(np.abs(single[k]).max() > 0 for k in moving)

    def test_only_the_chief_writes_the_run_folder(results):
        run_dir = results["ebgan_pt_mlp"]["run_dir"]
        names = sorted(os.listdir(run_dir))
        assert "model.keras" in names and "history.json" in names
        assert "backup" not in names  # removed once model.keras is written
        single = sorted(os.listdir(results["ebgan_pt_mlp"]["single_run_dir"]))
        assert names == single
        info = json.loads((run_dir / "train_info.json").read_text())
        assert info["distribute"] == {"mode": MODE, "processes": 2, "replicas": 2}
        # No worker's temporary folder is left behind.
        leftovers = [
            name
            for name in os.listdir(results["worker_tmp"])
            if name.startswith("ebgan_keras_worker_")
        ]
        assert not leftovers

    def _cli(out, extra, env, timeout_s, epochs):
        command = [
            "-m",
            "ebgan_keras",
            "train",
            "ebgan_pt",
            "--data",
            "mnist_subset",
            "--image-size",
            "8",
            "--batch-size",
            "8",
            "--epochs",
            str(epochs),
            "--steps-per-epoch",
            str(STEPS_PER_EPOCH),
            "--config",
            str(out.parent / "tiny.json"),
            "--out",
            str(out),
            "--verbose",
            "2",
            "--distribute",
            MODE,
            "--collective-timeout",
            str(timeout_s),
        ]
        if extra:
            command += [
                "--coordinator",
                extra[0],
                "--num-processes",
                extra[1],
                "--process-id",
                extra[2],
            ]
        return _spawn(command, env)

    def test_a_dead_worker_fails_the_others_in_bounded_time_and_rerun_resumes(
        tmp_path,
    ):
        timeout_s = 10
        (tmp_path / "tiny.json").write_text(
            json.dumps(
                {
                    "generator": {"hidden_units": [16], "latent_dim": 4},
                    "discriminator": {"encoder_units": [16, 8]},
                }
            )
        )
        out = tmp_path / "run"
        # Many epochs, so that the kill lands in the middle of the run; the
        # rerun then asks for one epoch more than the checkpoint holds.
        epochs = 20
        processes = [
            _cli(out, extra, env, timeout_s, epochs)
            for env, extra in process_envs(BACKEND, 2)
        ]
        try:
            checkpoint = out / "backup" / "latest.weights.h5"
            deadline = time.monotonic() + 300
            while not checkpoint.exists() and time.monotonic() < deadline:
                assert processes[0].poll() is None, processes[0].communicate()[0]
                time.sleep(0.1)
            assert checkpoint.exists(), "no checkpoint within 300 s"
            processes[1].send_signal(signal.SIGKILL)
            killed = time.monotonic()
            output = _outputs(processes, timeout=timeout_s * 6)[0]
        finally:
            _kill(processes)
        waited = time.monotonic() - killed
        print(f"{BACKEND}: the chief failed {waited:.1f} s after worker 1 died")
        # Our one-line error, exit code 3, within the bound.
        assert processes[0].returncode == 3, output[-3000:]
        assert "rerun every process with the same command" in output
        assert waited < 3 * timeout_s + 15, waited
        history = json.loads((out / "history.json").read_text())
        epochs_before = len(history["d_loss"])
        assert 1 <= epochs_before < epochs
        # The rerun of both processes resumes from the chief's checkpoint.
        epochs = epochs_before + 1
        processes = [
            _cli(out, extra, env, timeout_s, epochs)
            for env, extra in process_envs(BACKEND, 2)
        ]
        outputs = _outputs(processes, timeout=600)
        for process, text in zip(processes, outputs):
            assert process.returncode == 0, text[-3000:]
        info = json.loads((out / "train_info.json").read_text())
        assert info["segments"] == 2
        assert info["steps_done"] == epochs * STEPS_PER_EPOCH
        history = json.loads((out / "history.json").read_text())
        assert len(history["d_loss"]) == epochs
        assert (out / "model.keras").exists()
        # The rerun started after the checkpointed epochs, not from zero.
        assert f"Epoch {epochs}/{epochs}" in outputs[0]
        assert "Epoch 1/" not in outputs[0]


if __name__ == "__main__":
    main(*sys.argv[1:])
