"""The zoo's convergence curve: recorded in training, resumed, summarised, carded."""

import os

import numpy as np
import pytest

from ebgan_keras.zoo import convergence
from tests import helpers
from tests.helpers import tiny_zoo_config


def rows(*pairs):
    return [{"epoch": i + 1, "step": s, "fid": f} for i, (s, f) in enumerate(pairs)]


def test_summary_compares_the_start_and_end_of_the_last_fifth():
    # Steps 0..100: the window starts at the last record at or before step 80.
    flat = convergence.summary(rows((20, 90.0), (80, 10.0), (90, 30.0), (100, 10.4)))
    assert flat["start_step"] == 80 and flat["end_step"] == 100
    assert flat["change"] == pytest.approx(0.04)
    assert flat["converged"] is True
    assert flat["best_fid"] == 10.0 and flat["best_step"] == 80
    moving = convergence.summary(rows((20, 90.0), (70, 12.0), (100, 10.0)))
    assert moving["start_step"] == 70
    assert moving["change"] == pytest.approx(2 / 12)
    assert moving["converged"] is False
    assert convergence.summary(rows((10, 5.0))) is None


def test_every_epochs_gives_about_fifty_points():
    assert convergence.every_epochs(10) == 1
    assert convergence.every_epochs(50) == 1
    assert convergence.every_epochs(51) == 2
    assert convergence.every_epochs(400) == 8


def test_card_lines_say_whether_the_entry_converged():
    record = {
        "records": rows((80, 10.0), (100, 12.0)),
        "summary": convergence.summary(rows((80, 10.0), (100, 12.0))),
    }
    text = "\n".join(convergence.card_lines(record))
    assert "had not converged" in text and "20.0%" in text
    assert "No convergence curve" in convergence.card_lines(None)[0]


# Backend-independent bookkeeping (the models' steps are tested elsewhere): by
# default on TensorFlow, elsewhere with --run-slow.
@helpers.slow_off_tensorflow
def test_training_stage_records_the_curve_and_a_resumed_run_keeps_it(tmp_path):
    from ebgan_keras.zoo import stages

    config = tiny_zoo_config("curve")
    run_dir = str(tmp_path / "run")
    stages.train(config, run_dir, epochs=2, steps_per_epoch=5, verbose=0)
    path = os.path.join(run_dir, convergence.CONVERGENCE_FILE)
    first = convergence.read_records(path)
    assert [(r["epoch"], r["step"]) for r in first] == [(1, 5), (2, 10)]
    assert all(np.isfinite(r["fid"]) and r["fid"] > 0 for r in first)
    # Trained further in the same folder: the earlier records stay as they were.
    stages.train(config, run_dir, epochs=3, steps_per_epoch=5, verbose=0)
    again = convergence.read_records(path)
    assert again[:2] == first
    assert [r["epoch"] for r in again] == [1, 2, 3]
    record = convergence.card_record(run_dir, str(tmp_path), title="curve")
    assert os.path.getsize(tmp_path / convergence.CONVERGENCE_PLOT) > 1000
    assert record["summary"]["end_step"] == 15
