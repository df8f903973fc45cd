"""The maths of SPEC.md, each trap with a test that catches it."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from ebgan_keras import losses


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def numpy_pt(codes: np.ndarray) -> float:
    n = codes.shape[0]
    flat = codes.reshape(n, -1)
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                cosine = flat[i] @ flat[j]
                cosine /= np.linalg.norm(flat[i]) * np.linalg.norm(flat[j])
                total += cosine**2
    return total / (n * (n - 1))


def test_pulling_away_term_orthogonal_codes_give_zero():
    assert float(to_numpy(losses.pulling_away_term(np.eye(5, dtype="float32")))) == (
        pytest.approx(0.0, abs=1e-7)
    )


def test_pulling_away_term_identical_codes_give_one():
    codes = np.tile(np.array([[1.0, -2.0, 3.0]], "float32"), (4, 1))
    assert float(to_numpy(losses.pulling_away_term(codes))) == pytest.approx(1.0, 1e-6)


def test_pulling_away_term_matches_double_loop(rng):
    codes = rng.normal(size=(6, 2, 3, 4)).astype("float32")
    value = float(to_numpy(losses.pulling_away_term(codes)))
    assert value == pytest.approx(numpy_pt(codes), rel=1e-5)


def test_pulling_away_term_normalises_each_sample_not_the_batch(rng):
    codes = rng.normal(size=(5, 7)).astype("float32")
    base = float(to_numpy(losses.pulling_away_term(codes)))
    # Rescaling one sample leaves every cosine unchanged ...
    scaled = codes.copy()
    scaled[2] *= 37.0
    assert float(to_numpy(losses.pulling_away_term(scaled))) == pytest.approx(
        base, rel=1e-5
    )
    # ... while rescaling one feature across the batch changes them.
    stretched = codes.copy()
    stretched[:, 0] *= 37.0
    assert abs(float(to_numpy(losses.pulling_away_term(stretched))) - base) > 1e-2


def test_pulling_away_term_squares_the_cosine():
    # Opposite codes have cosine -1: squared it counts as 1, never as -1.
    codes = np.array([[1.0, 0.0], [-1.0, 0.0]], "float32")
    assert float(to_numpy(losses.pulling_away_term(codes))) == pytest.approx(1.0)


def test_hinge_is_per_sample_not_of_the_batch_mean():
    energy_real = np.array([1.0, 1.0], "float32")
    energy_fake = np.array([0.0, 20.0], "float32")
    loss = float(
        to_numpy(losses.ebgan_discriminator_loss(energy_real, energy_fake, 10))
    )
    # mean(E(x)) + mean(max(0, 10 - [0, 20])) = 1 + 5; the hinge of the batch
    # mean would give 1 + max(0, 10 - 10) = 1.
    assert loss == pytest.approx(6.0)


@pytest.mark.parametrize(
    ("reduction", "power", "expected"),
    [
        ("sum", 2.0, 4 * 0.25 * 2 + 4 * 1.0),
        ("mean", 2.0, (2 + 4) / 8),
        ("l2", 2.0, 6**0.5),
    ],
)
def test_reconstruction_energy_reductions(reduction, power, expected):
    target = np.zeros((1, 2, 2, 2), "float32")
    reconstruction = target.copy()
    reconstruction[0, :, :, 0] = 0.5 * np.sqrt(2.0)  # 4 pixels of squared error 0.5
    reconstruction[0, :, :, 1] = 1.0  # 4 pixels of squared error 1
    energy = to_numpy(
        losses.reconstruction_energy(reconstruction, target, reduction, power)
    )
    assert energy.shape == (1,)
    assert float(energy[0]) == pytest.approx(expected, rel=1e-5)


def test_reconstruction_energy_l1_and_per_sample(rng):
    a = rng.normal(size=(3, 4, 4, 1)).astype("float32")
    b = rng.normal(size=(3, 4, 4, 1)).astype("float32")
    energy = to_numpy(losses.reconstruction_energy(a, b, "mean", 1.0))
    np.testing.assert_allclose(energy, np.abs(a - b).mean(axis=(1, 2, 3)), rtol=1e-5)


def test_max_energy_bounds():
    assert losses.max_energy((28, 28, 1), "mean", 2.0) == 4.0
    assert losses.max_energy((28, 28, 1), "sum", 2.0) == 4.0 * 784
    assert losses.max_energy((28, 28, 1), "l2", 2.0) == pytest.approx(56.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reduction": "median"}, "energy_reduction"),
        ({"reduction": "l2", "power": 1.0}, "energy_power=1.0"),
        ({"reduction": "sum", "power": 0.0}, "energy_power=0.0"),
    ],
)
def test_bad_reduction_arguments_are_named(kwargs, message):
    x = np.zeros((1, 2, 2, 1), "float32")
    with pytest.raises(ValueError, match=message):
        losses.reconstruction_energy(x, x, **kwargs)
