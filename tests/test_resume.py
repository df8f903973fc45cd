"""Exact resume after `kill -9`: `ek.callbacks.BackupAndRestore`.

A training process is killed with SIGKILL in the middle of an epoch, right
after a backup; a second process runs the same script again and finishes.
Its final weights (both networks, both optimizers, BEGAN's `k`, MAGAN's
margin and phase, the seed generator) must equal those of a run that was
never interrupted. A corrupt partial file, as a kill during a write leaves
it, lies in the backup folder and must be ignored.

Script usage: `python tests/test_resume.py OUT_DIR BACKUP_DIR [KILLS]`.
Trains BEGAN, then MAGAN, each for 3 epochs of 4 steps, backing up every
step to BACKUP_DIR/<name>, and writes each one's final variables to
OUT_DIR/<name>.npz (a model whose file exists is not trained again). KILLS
like `began:6,magan:7` makes the process SIGKILL itself at the start of
that model's global step (unless it resumed at or after that step).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS_PER_EPOCH = 4
EPOCHS = 3
NAMES = ("began", "magan")


def _model(name):
    import ebgan_keras as ek

    generator = ek.networks.ebgan_mlp_generator(
        latent_dim=4, image_shape=(8, 8, 1), hidden_units=(16,)
    )
    discriminator = ek.networks.ebgan_mlp_discriminator(
        image_shape=(8, 8, 1), encoder_units=(16, 8)
    )
    if name == "began":
        return ek.BEGAN(
            generator, discriminator, gamma=1.0, lambda_k=0.5, initial_k=0.2, seed=3
        )
    # Pre-training for one epoch, then adversarial: the kill falls in the
    # second epoch, so the phase, margin and epoch sums must all come back.
    return ek.MAGAN(generator, discriminator, pretrain_epochs=1, seed=3)


def main(out_dir: str, backup_dir: str, kills: str = "") -> None:
    """Trains (or resumes) each model and writes its final variables."""
    kill_at = dict(item.split(":") for item in kills.split(",") if item)
    for name in NAMES:
        if not os.path.exists(os.path.join(out_dir, f"{name}.npz")):
            _train(name, out_dir, os.path.join(backup_dir, name), kill_at.get(name, 0))


def _train(name: str, out_dir: str, backup_dir: str, kill_at) -> None:
    import keras
    import numpy as np

    import ebgan_keras.callbacks as ek_callbacks

    kill_at = int(kill_at)
    keras.utils.set_random_seed(0)
    model = _model(name)
    model.compile(
        d_optimizer=keras.optimizers.Adam(0.01),
        g_optimizer=keras.optimizers.Adam(0.01),
    )
    images = np.random.default_rng(5).uniform(-1, 1, (32, 8, 8, 1)).astype("float32")

    def steps_done():
        return int(keras.ops.convert_to_numpy(model.optimizer.iterations))

    class KillAt(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            # After the backup was restored: a resumed run is not killed again.
            self.start = steps_done()

        def on_train_batch_begin(self, batch, logs=None):
            if kill_at and steps_done() == kill_at > self.start:
                os.kill(os.getpid(), signal.SIGKILL)

    model.fit(
        images,
        batch_size=8,
        epochs=EPOCHS,
        shuffle=False,
        verbose=0,
        callbacks=[
            ek_callbacks.BackupAndRestore(backup_dir, save_freq=1),
            KillAt(),
        ],
    )
    record = {
        f"var_{i}": np.array(keras.ops.convert_to_numpy(v))
        for i, v in enumerate(model.weights)
    }
    for role, optimizer in (("d", model.d_optimizer), ("g", model.g_optimizer)):
        for i, v in enumerate(optimizer.variables):
            record[f"{role}_optimizer_{i}"] = np.array(keras.ops.convert_to_numpy(v))
    record["iterations"] = np.array(
        keras.ops.convert_to_numpy(model.optimizer.iterations)
    )
    np.savez(os.path.join(out_dir, f"{name}.npz"), **record)


if __name__ != "__main__":
    import keras
    import numpy as np
    import pytest

    BACKEND = keras.backend.backend()

    def _script(*args, expect_kill=False):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.dirname(HERE), env.get("PYTHONPATH", "")]
        )
        done = subprocess.run(
            [sys.executable, os.path.abspath(__file__), *map(str, args)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if expect_kill:
            assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
        else:
            assert done.returncode == 0, done.stderr[-3000:]

    @pytest.mark.skipif(
        BACKEND == "torch",
        reason="covered on TensorFlow and JAX (the issue's scope); the runs "
        "are subprocesses, too slow to repeat for every backend",
    )
    # Four subprocesses (a minute or more): CI's slow step runs it; the
    # in-process resume tests (test_training.py) run by default.
    @pytest.mark.slow
    def test_resume_after_kill_equals_uninterrupted(tmp_path):
        reference, resumed = tmp_path / "reference", tmp_path / "resumed"
        reference.mkdir()
        resumed.mkdir()
        backup = tmp_path / "backup"
        _script(reference, tmp_path / "backup_reference")
        # BEGAN killed at step 6, in the middle of epoch 2; MAGAN at step 7,
        # in the middle of its first adversarial epoch (after pre-training).
        kills = "began:6,magan:7"
        _script(resumed, backup, kills, expect_kill=True)
        assert not (resumed / "began.npz").exists()
        # What the kill left: the backup of the last completed step.
        assert (backup / "began" / "latest.weights.h5").exists()
        # A checkpoint half-written at the moment of a kill must never load.
        (backup / "began" / "partial.weights.h5").write_bytes(b"\x89HDF\r\n cut")
        # Resumes BEGAN to the end, then is killed in MAGAN.
        _script(resumed, backup, kills, expect_kill=True)
        assert (resumed / "began.npz").exists()
        assert not (resumed / "magan.npz").exists()
        _script(resumed, backup, kills)
        for name in NAMES:
            expected = dict(np.load(reference / f"{name}.npz"))
            actual = dict(np.load(resumed / f"{name}.npz"))
            assert set(actual) == set(expected)
            assert int(actual["iterations"]) == STEPS_PER_EPOCH * EPOCHS
            for key in sorted(expected):
                np.testing.assert_allclose(
                    actual[key],
                    expected[key],
                    rtol=1e-5,
                    atol=1e-6,
                    err_msg=f"{name}: {key}",
                )
        # The backups are removed once each run has finished.
        assert not (backup / "magan").exists()

    def test_backup_files_are_replaced_atomically(tmp_path):
        from helpers import tiny_images
        from helpers import tiny_model

        import ebgan_keras.callbacks as ek_callbacks

        model = tiny_model()
        model.compile()
        backup = ek_callbacks.BackupAndRestore(
            str(tmp_path), save_freq=1, delete_checkpoint=False
        )
        model.fit(
            tiny_images(16), batch_size=8, epochs=1, verbose=0, callbacks=[backup]
        )
        # Only the final names remain: every write went through a rename.
        assert sorted(os.listdir(tmp_path)) == [
            "latest.weights.h5",
            "training_metadata.json",
        ]
        other = tiny_model()
        other.compile()
        other.optimizer.build(other.trainable_variables)
        other.load_weights(str(tmp_path / "latest.weights.h5"))
        assert int(keras.ops.convert_to_numpy(other.optimizer.iterations)) == 2
        for a, b in zip(other.weights, model.weights):
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b)
            )


if __name__ == "__main__":
    main(*sys.argv[1:])
