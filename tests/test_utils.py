"""The shared helpers: the numpy prior draw and the batched predict loop."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from ebgan_keras.utils import predict_in_batches
from ebgan_keras.utils import prior_latents


def test_prior_latents_equal_the_golden_file_draws():
    # What the zoo's golden files were drawn with: the helper must not move them.
    expected_normal = np.random.default_rng(1234).standard_normal((16, 5))
    expected_uniform = np.random.default_rng(1234).uniform(-1, 1, (16, 5))
    normal = prior_latents("normal", 16, 5, 1234)
    uniform = prior_latents("uniform", 16, 5, 1234)
    assert normal.dtype == uniform.dtype == np.float32
    np.testing.assert_array_equal(normal, expected_normal.astype("float32"))
    np.testing.assert_array_equal(uniform, expected_uniform.astype("float32"))


def test_prior_latents_advances_a_given_generator():
    rng, reference = np.random.default_rng(3), np.random.default_rng(3)
    first = prior_latents("normal", 2, 3, rng)
    second = prior_latents("normal", 2, 3, rng)
    for drawn in (first, second):
        expected = reference.standard_normal((2, 3)).astype("float32")
        np.testing.assert_array_equal(drawn, expected)


def test_prior_latents_rejects_an_unknown_prior():
    with pytest.raises(ValueError, match="Received: distribution='laplace'"):
        prior_latents("laplace", 2, 3, 0)


def test_predict_in_batches_covers_every_row_once():
    inputs = np.arange(14, dtype="float32").reshape(7, 2)
    calls = []

    def double(chunk):
        calls.append(int(ops.shape(chunk)[0]))
        return chunk * 2.0

    outputs = predict_in_batches(double, inputs, batch_size=3)
    assert calls == [3, 3, 1]
    assert isinstance(outputs, np.ndarray)
    np.testing.assert_array_equal(outputs, inputs * 2.0)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_predict_in_batches_rejects_bad_batch_sizes(batch_size):
    with pytest.raises(ValueError, match="Received: batch_size="):
        predict_in_batches(lambda x: x, np.zeros((2, 1)), batch_size)


def test_predict_in_batches_rejects_empty_inputs():
    with pytest.raises(ValueError, match="at least one sample"):
        predict_in_batches(lambda x: x, np.zeros((0, 3)), 4)
