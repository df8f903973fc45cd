"""Mixed precision: every model trains under `mixed_bfloat16` and `mixed_float16`.

The networks compute in the low-precision dtype; energies, margins, `k` and
the pulling-away term stay float32, and under `mixed_float16` each of the two
optimizers scales its own loss (a static `loss_scale_factor`).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from helpers import tiny_images
from helpers import tiny_model

import ebgan_keras as ek
import ebgan_keras.models.base

MODELS = {
    "ebgan": (ek.EBGAN, {}),
    "ebgan_pt": (ek.EBGANPT, {}),
    "began": (ek.BEGAN, {"lambda_k": 0.1}),
    "magan": (ek.MAGAN, {"pretrain_epochs": 1}),
}


@pytest.fixture
def policy(request):
    keras.mixed_precision.set_dtype_policy(request.param)
    yield request.param
    keras.mixed_precision.set_dtype_policy("float32")


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"], indirect=True)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_mixed_precision_fit_stays_finite(policy, name):
    cls, kwargs = MODELS[name]
    model = tiny_model(cls, **kwargs)
    model.compile()
    compute_dtype = policy.split("_")[1]
    assert model.generator.compute_dtype == compute_dtype
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    scaled = policy == "mixed_float16"
    for optimizer in (model.d_optimizer, model.g_optimizer):
        factor = optimizer.loss_scale_factor
        assert factor == (ek.models.base.FLOAT16_LOSS_SCALE if scaled else None)

    before = [keras.ops.convert_to_numpy(v).copy() for v in model.trainable_variables]
    history = model.fit(tiny_images(32), batch_size=8, epochs=2, verbose=0)
    for key, values in history.history.items():
        assert np.all(np.isfinite(values)), key
    after = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    assert all(np.all(np.isfinite(v)) for v in after)
    assert any(not np.allclose(a, b) for a, b in zip(after, before))
    # Energies are float32 even though the networks computed in low precision.
    energy, _ = model.compute_energy(keras.ops.convert_to_tensor(tiny_images(4)))
    assert keras.backend.standardize_dtype(energy.dtype) == "float32"
    assert np.all(np.isfinite(model.energy(tiny_images(4))))
    for state in ("k", "margin"):
        if hasattr(model, state):
            assert getattr(model, state).dtype == "float32"
    if scaled:
        # Both optimizers stepped (2 epochs of 4 steps; MAGAN pre-trains 1).
        steps = 4 if name == "magan" else 8
        assert int(keras.ops.convert_to_numpy(model.g_optimizer.iterations)) == steps
        assert int(keras.ops.convert_to_numpy(model.d_optimizer.iterations)) == 8


def test_pulling_away_term_is_float32_under_mixed_precision():
    codes = keras.ops.cast(np.eye(3, dtype="float32"), "bfloat16")
    value = ek.losses.pulling_away_term(codes)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
