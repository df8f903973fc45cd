"""Saved files: optimizer state written once, and files of release 0.1 still load."""

from __future__ import annotations

import io
import json
import pathlib
import zipfile

import h5py
import keras
import numpy as np
import pytest
from helpers import tiny_images
from helpers import tiny_model
from keras import ops

import ebgan_keras as ek

LEGACY = pathlib.Path(__file__).parent / "data" / "legacy_v0_1"
with open(LEGACY / "expected.json") as _handle:
    EXPECTED = json.load(_handle)


def value(x) -> float:
    return float(np.asarray(ops.convert_to_numpy(x)))


def _datasets(h5_file) -> list[str]:
    names = []
    h5_file.visititems(
        lambda name, item: (
            names.append(name) if isinstance(item, h5py.Dataset) else None
        )
    )
    return names


def _optimizer_datasets(names) -> list[str]:
    return [name for name in names if name.split("/")[0].endswith("optimizer")]


def _keras_file_h5(path) -> h5py.File:
    with zipfile.ZipFile(path) as archive:
        return h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")


@pytest.mark.parametrize("cls", [ek.EBGANPT, ek.BEGAN, ek.MAGAN])
def test_optimizer_state_is_saved_once(cls, tmp_path):
    kwargs = {"pretrain_epochs": 1} if cls is ek.MAGAN else {}
    model = tiny_model(cls, **kwargs)
    model.compile()
    model.fit(tiny_images(32), batch_size=16, epochs=2, verbose=0)
    expected = len(model.optimizer.variables)
    assert expected == 2 + len(model.d_optimizer.variables) + len(
        model.g_optimizer.variables
    )

    model.save(tmp_path / "model.keras")
    with _keras_file_h5(tmp_path / "model.keras") as h5_file:
        assert len(_optimizer_datasets(_datasets(h5_file))) == expected

    model.save_weights(tmp_path / "model.weights.h5")
    with h5py.File(tmp_path / "model.weights.h5", "r") as h5_file:
        assert len(_optimizer_datasets(_datasets(h5_file))) == expected

    # Both optimizers' counters and slots come back from the weights file.
    other = tiny_model(cls, **kwargs)
    other.compile()
    other.load_weights(tmp_path / "model.weights.h5")
    for original, restored in (
        (model.optimizer, other.optimizer),
        (model.d_optimizer, other.d_optimizer),
        (model.g_optimizer, other.g_optimizer),
    ):
        assert len(restored.variables) == len(original.variables)
        for a, b in zip(original.variables, restored.variables):
            np.testing.assert_array_equal(
                ops.convert_to_numpy(a), ops.convert_to_numpy(b)
            )
    assert int(value(other.g_optimizer.iterations)) == int(
        value(model.g_optimizer.iterations)
    )


def _sums(variables) -> list[float]:
    return [float(np.sum(ops.convert_to_numpy(v), dtype="float64")) for v in variables]


@pytest.mark.parametrize("name", sorted(EXPECTED["models"]))
def test_release_0_1_file_loads(name, tmp_path):
    expected = EXPECTED["models"][name]
    path = LEGACY / f"{name}.keras"
    with _keras_file_h5(path) as h5_file:
        # The old layout: both optimizers' state written twice.
        names = _optimizer_datasets(_datasets(h5_file))
    model = keras.saving.load_model(path)
    assert type(model).__name__ == expected["class"]
    assert len(names) == len(model.optimizer.variables) + len(
        model.d_optimizer.variables
    ) + len(model.g_optimizer.variables)

    np.testing.assert_allclose(_sums(model.weights), expected["weights_sum"], rtol=1e-6)
    np.testing.assert_allclose(
        _sums(model.d_optimizer.variables), expected["d_optimizer_sum"], rtol=1e-6
    )
    np.testing.assert_allclose(
        _sums(model.g_optimizer.variables), expected["g_optimizer_sum"], rtol=1e-6
    )
    assert int(value(model.optimizer.iterations)) == expected["iterations"]
    assert int(value(model.d_optimizer.iterations)) == expected["d_iterations"]
    assert int(value(model.g_optimizer.iterations)) == expected["g_iterations"]
    for state in ("k", "margin", "pretrained_epochs"):
        if state in expected:
            assert value(getattr(model, state)) == pytest.approx(expected[state])
    latents = np.asarray(EXPECTED["probe_latents"], "float32")
    generated = model.generate(latents).reshape(len(latents), -1)
    np.testing.assert_allclose(generated, expected["generated"], atol=2e-5)
    images = np.asarray(EXPECTED["probe_images"], "float32")
    np.testing.assert_allclose(model.energy(images), expected["energy"], rtol=1e-4)

    # Training goes on from the restored state (MAGAN: past pre-training).
    model.fit(tiny_images(16), batch_size=16, epochs=1, verbose=0)
    assert int(value(model.d_optimizer.iterations)) == expected["d_iterations"] + 1
    assert int(value(model.g_optimizer.iterations)) == expected["g_iterations"] + 1
    assert model.trains_generator


def test_release_0_1_weights_file_loads_with_load_weights(tmp_path):
    with zipfile.ZipFile(LEGACY / "magan.keras") as archive:
        archive.extract("model.weights.h5", tmp_path)
    reference = keras.saving.load_model(LEGACY / "magan.keras")
    model = ek.MAGAN.from_config(reference.get_config())
    model.compile()
    model.load_weights(tmp_path / "model.weights.h5")
    for a, b in zip(reference.weights, model.weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))
    for a, b in zip(reference.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(ops.convert_to_numpy(a), ops.convert_to_numpy(b))
