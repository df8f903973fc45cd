"""Distribution settings: modes, TF_CONFIG, the JAX coordinator, the CLI's flags.

The training itself across processes is `test_multi_process.py` (slow).
"""

from __future__ import annotations

import json

import keras
import pytest

from ebgan_keras import cli
from ebgan_keras.run import distribute

BACKEND = keras.backend.backend()
TWO_WORKERS = {"worker": ["localhost:1001", "localhost:1002"]}


def test_parse_tf_config_gives_the_process_index_and_the_chief():
    text = json.dumps({"cluster": TWO_WORKERS, "task": {"type": "worker", "index": 1}})
    settings = distribute.parse_tf_config(text)
    assert settings["num_processes"] == 2
    assert settings["process_index"] == 1
    with_chief = {"chief": ["localhost:1000"], **TWO_WORKERS}
    for task, index in (
        ({"type": "chief", "index": 0}, 0),
        ({"type": "worker", "index": 0}, 1),
    ):
        text = json.dumps({"cluster": with_chief, "task": task})
        assert distribute.parse_tf_config(text)["process_index"] == index


@pytest.mark.parametrize(
    "text, expected",
    [
        (None, "Received: TF_CONFIG unset or empty"),
        ("{not json", "TF_CONFIG must be JSON"),
        (json.dumps({"task": {"type": "worker", "index": 0}}), "`cluster` must map"),
        (json.dumps({"cluster": {"worker": ["nohost"]}, "task": {}}), "`cluster` must"),
        (
            json.dumps(
                {"cluster": TWO_WORKERS, "task": {"type": "worker", "index": 2}}
            ),
            "`task` must name a job of `cluster`",
        ),
        (
            json.dumps({"cluster": TWO_WORKERS, "task": {"type": "ps", "index": 0}}),
            "`task` must name a job",
        ),
    ],
)
def test_malformed_tf_config_is_refused_with_the_expected_form(text, expected):
    with pytest.raises(distribute.DistributeError, match=expected):
        distribute.parse_tf_config(text)


def test_coordinator_from_arguments_then_environment():
    settings = distribute.coordinator_settings("localhost:1234", 2, 1, environ={})
    assert settings == {
        "coordinator": "localhost:1234",
        "num_processes": 2,
        "process_id": 1,
    }
    environ = {
        distribute.COORDINATOR_ENV: "10.0.0.1:1234,10.0.0.2:1234",
        distribute.NUM_PROCESSES_ENV: "2",
        distribute.PROCESS_ID_ENV: "0",
    }
    settings = distribute.coordinator_settings(environ=environ)
    assert settings == {
        "coordinator": "10.0.0.1:1234",
        "num_processes": 2,
        "process_id": 0,
    }
    # An argument wins over its variable.
    assert (
        distribute.coordinator_settings(process_id=1, environ=environ)["process_id"]
        == 1
    )
    # Nothing given: JAX's own detection (Slurm, Open MPI) decides.
    assert set(distribute.coordinator_settings(environ={}).values()) == {None}


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"coordinator": "localhost:1234"}, "Missing: num_processes, process_id"),
        ({"num_processes": 2, "process_id": 0}, "Missing: coordinator"),
        (
            {"coordinator": "localhost", "num_processes": 2, "process_id": 0},
            "HOST:PORT",
        ),
        ({"coordinator": "h:99999", "num_processes": 2, "process_id": 0}, "HOST:PORT"),
        ({"coordinator": "h:1234", "num_processes": 2, "process_id": 2}, "process_id"),
    ],
)
def test_incomplete_or_wrong_coordinator_is_refused(kwargs, expected):
    with pytest.raises(distribute.DistributeError, match=expected):
        distribute.coordinator_settings(environ={}, **kwargs)


def test_bad_environment_number_names_the_variable():
    with pytest.raises(
        distribute.DistributeError, match="KERAS_DISTRIBUTION_PROCESS_ID"
    ):
        distribute.coordinator_settings(
            "h:1", 2, environ={distribute.PROCESS_ID_ENV: "one"}
        )


def test_modes_of_another_backend_are_refused():
    assert distribute.check_mode("none", "torch") == "none"
    with pytest.raises(distribute.DistributeError, match="runs on the jax backend"):
        distribute.check_mode("multi-process", "tensorflow")
    with pytest.raises(distribute.DistributeError, match="use 'multi-process'"):
        distribute.check_mode("multi-worker", "jax")
    with pytest.raises(distribute.DistributeError, match="must be one of"):
        distribute.check_mode("horovod", "tensorflow")
    assert tuple(cli.options.DISTRIBUTE_MODES) == distribute.MODES


def _train(tmp_path, capsys, *extra, env=None, monkeypatch=None):
    if env is not None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
    code = cli.main(
        [
            "train",
            "ebgan_pt",
            "--data",
            "mnist_subset",
            "--out",
            str(tmp_path / "run"),
            *extra,
        ]
    )
    return code, capsys.readouterr().err


def test_cli_refuses_a_mode_of_another_backend(tmp_path, capsys):
    mode = {"tensorflow": "multi-process", "jax": "multi-worker"}.get(
        BACKEND, "multi-worker"
    )
    code, err = _train(tmp_path, capsys, "--distribute", mode)
    assert code == 2
    assert f"--distribute {mode}" in err and f"with the {BACKEND!r} backend" in err
    assert not (tmp_path / "run").exists()


def test_cli_refuses_coordinator_flags_without_multi_process(tmp_path, capsys):
    code, err = _train(tmp_path, capsys, "--coordinator", "localhost:1234")
    assert code == 2
    assert "--coordinator only apply to --distribute multi-process" in err


@pytest.mark.skipif(BACKEND != "jax", reason="multi-process is JAX's mode")
def test_cli_multi_process_without_all_of_the_coordinator(tmp_path, capsys):
    code, err = _train(
        tmp_path,
        capsys,
        "--distribute",
        "multi-process",
        "--coordinator",
        "localhost:1234",
    )
    assert code == 2
    assert "Missing: num_processes, process_id" in err


@pytest.mark.skipif(BACKEND != "tensorflow", reason="multi-worker is TensorFlow's")
def test_cli_multi_worker_with_a_malformed_tf_config(tmp_path, capsys, monkeypatch):
    code, err = _train(
        tmp_path,
        capsys,
        "--distribute",
        "multi-worker",
        env={"TF_CONFIG": '{"cluster": {}}'},
        monkeypatch=monkeypatch,
    )
    assert code == 2
    assert "TF_CONFIG's `cluster` must map the jobs" in err
    assert "Received: TF_CONFIG='{\"cluster\": {}}'" in err


def test_cli_refuses_an_unknown_policy_and_mode(tmp_path, capsys):
    code, err = _train(tmp_path, capsys, "--mixed-precision", "float8")
    assert code == 2 and "--mixed-precision" in err
    code, err = _train(tmp_path, capsys, "--distribute", "ring")
    assert code == 2 and "--distribute" in err


@pytest.mark.skipif(BACKEND == "torch", reason="bfloat16 matmuls are slow on CPU torch")
def test_cli_trains_under_mixed_precision_and_records_it(tmp_path, capsys):
    code = cli.main(
        [
            "train",
            "ebgan_pt",
            "--data",
            "mnist_subset",
            "--out",
            str(tmp_path / "run"),
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--batch-size",
            "8",
            "--image-size",
            "8",
            "--config",
            str(_tiny_config(tmp_path)),
            "--mixed-precision",
            "mixed_bfloat16",
            "--verbose",
            "0",
        ]
    )
    assert code == 0, capsys.readouterr().err
    info = json.loads((tmp_path / "run" / "train_info.json").read_text())
    assert info["mixed_precision"] == "mixed_bfloat16"
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert model.generator.get_layer("dense_0").dtype_policy.name == "mixed_bfloat16"
    # The global policy is left as it was.
    assert keras.config.dtype_policy().name == "float32"


def _tiny_config(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(
        json.dumps(
            {
                "generator": {"hidden_units": [16], "latent_dim": 4},
                "discriminator": {"encoder_units": [16, 8]},
            }
        )
    )
    return path
