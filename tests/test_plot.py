"""Pictures and visual callbacks: the files exist and are not blank."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import ebgan_keras as ek
from ebgan_keras import plot
from ebgan_keras.visual_callbacks import EnergyDiagnostics
from ebgan_keras.visual_callbacks import SampleGrid
from tests import helpers


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.float32)


def event_tags(log_dir) -> set:
    tags = set()
    for path in glob.glob(os.path.join(str(log_dir), "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def tiny_model(cls=ek.EBGANPT, **kwargs):
    return cls(helpers.tiny_generator(), helpers.tiny_discriminator(), seed=0, **kwargs)


def test_grid_tiles_images_in_order(tmp_path):
    images = np.stack([np.full((4, 4, 3), v, "float32") for v in (-1, 0, 1, 0.5, -0.5)])
    picture = plot.grid(images, str(tmp_path / "g.png"), nrow=3, scale=1, padding=1)
    assert picture.size == (3 * 5 + 1, 2 * 5 + 1)
    written = np.asarray(Image.open(tmp_path / "g.png"))
    assert written.shape == (11, 16, 3)
    # Second image (value 0) at row 0, column 1; last cell empty (black).
    assert tuple(written[1 + 1, 6 + 1]) == (128, 128, 128)
    assert tuple(written[6 + 1, 1 + 1]) == (191, 191, 191)
    assert written[6:, 11:].max() == 0


def test_grid_scales_and_writes_grey_png(tmp_path):
    images = np.linspace(-1, 1, 4 * 8 * 8).reshape(4, 8, 8, 1)
    picture = plot.grid(images, str(tmp_path / "sub" / "g.png"))
    assert picture.mode == "L" and picture.size == (32, 32)
    assert pixels(tmp_path / "sub" / "g.png").std() > 10


@pytest.mark.parametrize(
    ("images", "kwargs", "message"),
    [
        (np.zeros((4, 4)), {}, r"Received: images with shape \(4, 4\)"),
        (np.zeros((2, 4, 4, 2)), {}, "C of 1 or 3"),
        (np.full((1, 4, 4, 1), np.nan), {}, "NaN or infinite"),
        (np.zeros((2, 4, 4, 1)), {"nrow": 0}, "Received: nrow=0"),
        (np.zeros((2, 4, 4, 1)), {"scale": 1.5}, "Received: scale=1.5"),
    ],
)
def test_grid_rejects_bad_input(images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        plot.grid(images, **kwargs)


def test_reconstructions_puts_each_image_next_to_its_reconstruction(tmp_path):
    # 3 pairs (odd n) on rows of 4 images: x0 r0 x1 r1 / x2 r2, then black.
    images = np.stack([np.full((2, 2, 1), v, "float32") for v in (-1.0, 0.0, 1.0)])
    rebuilt = -images + 0.5
    picture = plot.reconstructions(
        images, rebuilt, str(tmp_path / "r.png"), nrow=4, scale=1
    )
    assert picture.size == (4 * 2, 2 * 2)
    written = np.asarray(Image.open(tmp_path / "r.png"))
    tops = written[::2, ::2]
    expected = plot.to_uint8(np.array([[-1.0, 1.5, 0.0, 0.5], [1.0, -0.5, -1.0, -1.0]]))
    np.testing.assert_array_equal(tops, expected)


def test_reconstructions_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="rebuilt.*shape"):
        plot.reconstructions(np.zeros((2, 4, 4, 1)), np.zeros((3, 4, 4, 1)))
    with pytest.raises(ValueError, match="images.*N, H, W, C"):
        plot.reconstructions(np.zeros((4, 4)), np.zeros((4, 4)))


def test_animation_writes_a_gif_of_every_frame(tmp_path, rng):
    # 5 frames of 6 chains (a 3 x 2 grid) of 8x8 images.
    frames = rng.uniform(-1, 1, (5, 6, 8, 8, 1)).astype("float32")
    path = tmp_path / "sub" / "chains.gif"
    pictures = plot.animation(frames, str(path), nrow=3, scale=2, duration=50)
    assert len(pictures) == 5
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.is_animated
        assert gif.n_frames == 5 and gif.size == (3 * 8 * 2, 2 * 8 * 2)
        assert gif.info["duration"] == 50 and gif.info["loop"] == 0
        gif.seek(3)
        expected = np.asarray(plot.grid(frames[3], nrow=3, scale=2))
        np.testing.assert_array_equal(np.asarray(gif.convert("L")), expected)
    colour = plot.animation(list(rng.uniform(-1, 1, (2, 4, 4, 4, 3))), scale=1)
    assert [picture.mode for picture in colour] == ["RGB", "RGB"]
    for bad, kwargs, message in (
        (np.zeros((6, 8, 8, 1)), {}, r"Received: frames with shape \(6, 8, 8, 1\)"),
        ([np.zeros((2, 4, 4, 1)), np.zeros((3, 4, 4, 1))], {}, "one shape"),
        (frames, {"duration": 0}, "Received: duration=0"),
    ):
        with pytest.raises(ValueError, match=message):
            plot.animation(bad, **kwargs)


def test_history_draws_every_models_logs(tmp_path):
    epochs = np.arange(1, 6, dtype=float)
    logs = {
        "d_loss": 1 / epochs,
        "g_loss": 2 / epochs,
        "energy_real": 0.5 / epochs,
        "energy_fake": 0.9 / epochs,
        "convergence": 0.3 / epochs,
        "k": 0.01 * epochs,
        "margin": [None, 3.0, 2.0, 2.0, 1.5],  # a JSON null: a gap
        "val_d_loss": 1.1 / epochs,
    }
    figure = plot.history(logs, str(tmp_path / "curves.png"))
    titles = [axis.get_title() for axis in figure.axes]
    assert titles == [
        "Losses",
        "Energies (low = looks real)",
        "BEGAN convergence measure and k",
        "MAGAN margin",
    ]
    assert [line.get_label() for line in figure.axes[0].lines] == [
        "d_loss",
        "val_d_loss",
        "g_loss",
    ]
    margin_line = figure.axes[3].lines[0].get_ydata()
    assert np.isnan(margin_line[0]) and margin_line[-1] == 1.5
    picture = pixels(tmp_path / "curves.png")
    assert picture.std() > 5
    with pytest.raises(ValueError, match="no logs to draw"):
        plot.history({})
    with pytest.raises(TypeError, match="Received: list"):
        plot.history([1, 2])


def test_callbacks_and_energy_histogram_write_their_files(tmp_path, rng):
    real = rng.uniform(-1, 1, (64, *helpers.IMAGE_SHAPE)).astype("float32")
    model = tiny_model(ek.BEGAN)
    model.compile()
    grid_dir, log_dir = tmp_path / "samples", tmp_path / "logs"
    sample_grid = SampleGrid(str(grid_dir), num=9, log_dir=str(log_dir / "grid"))
    diagnostics = EnergyDiagnostics(
        real[:16], log_dir=str(log_dir / "energy"), every_n_epochs=2,
        directory=str(tmp_path / "diagnostics"),
    )  # fmt: skip
    model.fit(
        real, epochs=2, batch_size=16, verbose=0, callbacks=[sample_grid, diagnostics]
    )

    grids = sorted(os.listdir(grid_dir))
    assert grids == ["epoch_0001.png", "epoch_0002.png"]
    first, second = (pixels(grid_dir / name) for name in grids)
    assert first.shape == (3 * 8 * 2, 3 * 8 * 2) and first.std() > 1
    assert not np.array_equal(first, second)  # the model moved, latents did not
    assert sample_grid.latents.shape == (9, helpers.LATENT_DIM)
    assert "samples" in event_tags(log_dir / "grid")

    assert sorted(os.listdir(tmp_path / "diagnostics")) == [
        "energy_epoch_0002.png",
        "sorted_epoch_0002.png",
    ]
    tags = event_tags(log_dir / "energy")
    for tag in ("energy/real", "energy/fake", "samples_by_energy", "model/k",
                "model/convergence", "energy/real_mean"):  # fmt: skip
        assert tag in tags
    values = diagnostics.last_values
    assert values["model/k"] == pytest.approx(float(np.asarray(model.k)), abs=1e-6)
    np.testing.assert_allclose(
        values["energy/real_mean"], model.energy(real[:16]).mean(), rtol=1e-5
    )

    figure = plot.energy_histogram(model, real[:32], path=str(tmp_path / "e.png"))
    assert len(figure.axes[0].patches) > 0
    assert pixels(tmp_path / "e.png").std() > 5


def test_energy_diagnostics_logs_the_margin(tmp_path, rng):
    real = rng.uniform(-1, 1, (32, *helpers.IMAGE_SHAPE)).astype("float32")
    model = tiny_model(ek.MAGAN, pretrain_epochs=1)
    model.compile()
    diagnostics = EnergyDiagnostics(real, log_dir=str(tmp_path), num=8)
    model.fit(real, epochs=1, batch_size=16, verbose=0, callbacks=[diagnostics])
    margin = float(np.asarray(model.margin))
    assert margin > 0
    assert diagnostics.last_values["model/margin"] == pytest.approx(margin)
    assert "model/margin" in event_tags(tmp_path)


def test_callbacks_reject_bad_arguments(rng):
    with pytest.raises(ValueError, match="Received: directory=None"):
        SampleGrid()
    with pytest.raises(ValueError, match="Received: every_n_epochs=0"):
        SampleGrid("x", every_n_epochs=0)
    with pytest.raises(ValueError, match="Received: num=0"):
        SampleGrid("x", num=0)
    with pytest.raises(ValueError, match=r"Received: real_images with shape \(3,\)"):
        EnergyDiagnostics(np.zeros(3), log_dir="x")
