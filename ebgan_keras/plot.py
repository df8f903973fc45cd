"""Pictures of a GAN's training: sample grids, training curves, energy histograms.

`grid` and `animation` need only numpy and Pillow. `history` and
`energy_histogram` draw with matplotlib (a `Figure` rendered by Agg, without
pyplot), imported when first used.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import numpy as np

__all__ = [
    "animation",
    "energy_histogram",
    "grid",
    "history",
    "reconstructions",
    "to_uint8",
]


def to_uint8(images) -> np.ndarray:
    """Converts float images in `[-1, 1]` to uint8 pixels in `[0, 255]`.

    Args:
        images: array `(N, H, W, C)` (or `(H, W, C)`) of floats in `[-1, 1]`.
            Values outside are clipped.

    Returns:
        A uint8 numpy array of the same shape.

    Example:

    >>> to_uint8(np.array([-1.0, 0.0, 1.0])).tolist()
    [0, 128, 255]
    """
    images = np.asarray(images, dtype=np.float32)
    if not np.all(np.isfinite(images)):
        raise ValueError(
            "`images` contains NaN or infinite values "
            f"({int(np.size(images) - np.isfinite(images).sum())} of "
            f"{np.size(images)}). Received: NaN/Inf"
        )
    return np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def grid(
    images,
    path=None,
    nrow: int | None = None,
    scale: int = 2,
    padding: int = 0,
):
    """Tiles a batch of images into one picture, optionally written as a PNG.

    Args:
        images: array `(N, H, W, C)` of floats in `[-1, 1]` (NHWC), with 1 or 3
            channels; values outside `[-1, 1]` are clipped.
        path: str or None. Where to write the PNG; its folder is created.
            Defaults to `None` (no file).
        nrow: int or None. Images per row. Defaults to `ceil(sqrt(N))`.
        scale: int. Nearest-neighbour magnification. Defaults to `2`.
        padding: int. Black pixels between and around images (before
            scaling). Defaults to `0`.

    Returns:
        The grid as a `PIL.Image.Image` (mode `"L"` or `"RGB"`).

    Example:

    >>> import numpy as np
    >>> grid(np.zeros((16, 28, 28, 1)), nrow=4, scale=1).size
    (112, 112)
    """
    from PIL import Image

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or len(images) == 0:
        raise ValueError(
            "`images` must be a non-empty array (N, H, W, C) with C of 1 or 3. "
            f"Received: images with shape {images.shape}"
        )
    count, height, width, channels = images.shape
    if nrow is None:
        nrow = math.ceil(math.sqrt(count))
    for name, value, low in (
        ("nrow", nrow, 1),
        ("scale", scale, 1),
        ("padding", padding, 0),
    ):
        if isinstance(value, bool) or int(value) != value or value < low:
            raise ValueError(
                f"`{name}` must be an int >= {low}. Received: {name}={value!r}"
            )
    nrow, scale, padding = int(nrow), int(scale), int(padding)
    rows = math.ceil(count / nrow)
    pixels = to_uint8(images)
    canvas = np.zeros(
        (
            rows * (height + padding) + padding,
            nrow * (width + padding) + padding,
            channels,
        ),
        dtype=np.uint8,
    )
    for index in range(count):
        row, col = divmod(index, nrow)
        top = padding + row * (height + padding)
        left = padding + col * (width + padding)
        canvas[top : top + height, left : left + width] = pixels[index]
    picture = Image.fromarray(canvas[..., 0] if channels == 1 else canvas)
    if scale > 1:
        picture = picture.resize(
            (picture.width * scale, picture.height * scale), Image.NEAREST
        )
    if path is not None:
        _make_parent(path)
        picture.save(path)
    return picture


def reconstructions(images, rebuilt, path=None, nrow: int = 8, scale: int = 2):
    """Each image followed by its reconstruction, tiled into one picture.

    With the default `nrow=8`, every row shows four pairs `x, G(E(x))`.

    Args:
        images: array `(N, H, W, C)` of floats in `[-1, 1]`: the originals.
        rebuilt: array of the same shape: their reconstructions.
        path: str or None. Where to write the PNG. Defaults to `None`.
        nrow: int. Images per row (an even number keeps pairs on one row).
            Defaults to `8`.
        scale: int. Nearest-neighbour magnification. Defaults to `2`.

    Returns:
        The picture as a `PIL.Image.Image`.

    Example:

    >>> import numpy as np
    >>> x = np.zeros((3, 28, 28, 1))
    >>> reconstructions(x, x, nrow=2, scale=1).size
    (56, 84)
    """
    images, rebuilt = np.asarray(images), np.asarray(rebuilt)
    if images.shape != rebuilt.shape:
        raise ValueError(
            "`rebuilt` must have the shape of `images`. Received: images with "
            f"shape {images.shape} and rebuilt with shape {rebuilt.shape}"
        )
    if images.ndim != 4:
        raise ValueError(
            "`images` must be an array (N, H, W, C). "
            f"Received: images with shape {images.shape}"
        )
    pairs = np.stack([images, rebuilt], axis=1).reshape(-1, *images.shape[1:])
    return grid(pairs, path, nrow=nrow, scale=scale)


def animation(
    frames,
    path=None,
    nrow: int | None = None,
    scale: int = 2,
    padding: int = 0,
    duration: int = 100,
    loop: int = 0,
):
    """Tiles each frame's images into a grid; optionally writes an animated GIF.

    Made for chains that move through latent space (`DDLS(record_every=k)`:
    generate `latent_path[f]` for each frame `f`), so that every cell of the
    grid follows one chain.

    Args:
        frames: array `(F, N, H, W, C)` (or a sequence of `F` arrays
            `(N, H, W, C)`) of floats in `[-1, 1]`, with 1 or 3 channels.
        path: str or None. Where to write the GIF (Pillow picks the format
            from the name: end it in `.gif`); its folder is created. Defaults
            to `None` (no file).
        nrow: int or None. Images per row. Defaults to `ceil(sqrt(N))`.
        scale: int. Nearest-neighbour magnification. Defaults to `2`.
        padding: int. Black pixels between and around images. Defaults to
            `0`.
        duration: int. Milliseconds per frame (GIF stores hundredths of a
            second). Defaults to `100`.
        loop: int. Times the GIF repeats; `0` loops forever. Defaults to `0`.

    Returns:
        The frames as a list of `PIL.Image.Image`. A GIF merges consecutive
        identical frames into one longer frame, so a file may hold fewer.

    Example:

    >>> import numpy as np
    >>> frames = animation(np.zeros((3, 4, 8, 8, 1)), nrow=2, scale=1)
    >>> len(frames), frames[0].size
    (3, (16, 16))
    """
    if isinstance(frames, (list, tuple)):
        if not frames:
            raise ValueError("`frames` must hold at least one frame. Received: []")
        shapes = {np.shape(frame) for frame in frames}
        if len(shapes) != 1:
            raise ValueError(
                "Every frame must hold images of one shape (N, H, W, C). "
                f"Received: frames with shapes {sorted(shapes)}"
            )
    frames = np.asarray(frames)
    if frames.ndim != 5 or len(frames) == 0:
        raise ValueError(
            "`frames` must be a non-empty array (F, N, H, W, C). "
            f"Received: frames with shape {frames.shape}"
        )
    for name, value, low in (("duration", duration, 1), ("loop", loop, 0)):
        if isinstance(value, bool) or int(value) != value or value < low:
            raise ValueError(
                f"`{name}` must be an int >= {low}. Received: {name}={value!r}"
            )
    pictures = [
        grid(images, nrow=nrow, scale=scale, padding=padding) for images in frames
    ]
    if path is not None:
        _make_parent(path)
        pictures[0].save(
            path,
            save_all=True,
            append_images=pictures[1:],
            duration=int(duration),
            loop=int(loop),
        )
    return pictures


def slerp(start, end, num_steps: int) -> np.ndarray:
    """Spherical interpolation between latents, `num_steps` points per pair.

    The path of choice between Gaussian latents: it keeps the norm near the
    prior's typical radius, where a straight line passes through the
    low-norm region the generator rarely saw (White, 2016).

    Args:
        start: array `(N, D)`. First latents.
        end: array `(N, D)`. Last latents.
        num_steps: int. Points per path, both ends included, `>= 2`.

    Returns:
        array `(N, num_steps, D)`, float32.

    Example:

    >>> import numpy as np
    >>> path = slerp(np.eye(2)[:1], np.eye(2)[1:], 3)
    >>> [round(float(v), 3) for v in path[0, 1]]
    [0.707, 0.707]
    """
    start = np.asarray(start, dtype=np.float64)
    end = np.asarray(end, dtype=np.float64)
    if start.shape != end.shape or start.ndim != 2:
        raise ValueError(
            "`start` and `end` must be latents of one shape (N, D). Received: "
            f"shapes {start.shape} and {end.shape}"
        )
    if isinstance(num_steps, bool) or int(num_steps) != num_steps or num_steps < 2:
        raise ValueError(f"`num_steps` must be an int >= 2. Received: {num_steps!r}")
    t = np.linspace(0.0, 1.0, int(num_steps))[None, :, None]
    norms = np.linalg.norm(start, axis=1) * np.linalg.norm(end, axis=1)
    cosine = np.sum(start * end, axis=1) / np.maximum(norms, 1e-12)
    omega = np.arccos(np.clip(cosine, -1.0, 1.0))[:, None, None]
    sin = np.sin(omega)
    safe = np.where(sin < 1e-6, 1.0, sin)
    spherical = (
        np.sin((1 - t) * omega) * start[:, None] + np.sin(t * omega) * end[:, None]
    ) / safe
    linear = (1 - t) * start[:, None] + t * end[:, None]
    return np.where(sin < 1e-6, linear, spherical).astype(np.float32)


def interpolation(
    model, path=None, num_rows: int = 8, num_steps: int = 10, seed: int = 0
):
    """A grid of latent interpolations: each row walks from one sample to another.

    Args:
        model: a model of the library (`generate`, `sample_latents`).
        path: str or None. Where to write the PNG. Defaults to `None`.
        num_rows: int. Interpolations (rows). Defaults to `8`.
        num_steps: int. Images per row, both ends included. Defaults to `10`.
        seed: int. Seed of the end points. Defaults to `0`.

    Returns:
        The grid as a `PIL.Image.Image`.

    Example:

    ```python
    import ebgan_keras as ek

    ek.plot.interpolation(ek.zoo.load("ebgan_mnist"), "interpolation.png")
    ```
    """
    import keras

    ends = keras.ops.convert_to_numpy(model.sample_latents(2 * num_rows, seed=seed))
    if model.latent_distribution == "normal":
        paths = slerp(ends[:num_rows], ends[num_rows:], num_steps)
    else:  # a uniform cube is convex: straight lines stay in the prior's support
        t = np.linspace(0.0, 1.0, num_steps)[None, :, None]
        paths = ((1 - t) * ends[:num_rows, None] + t * ends[num_rows:, None]).astype(
            np.float32
        )
    images = np.asarray(model.generate(paths.reshape(-1, paths.shape[-1])))
    return grid(images, path, nrow=num_steps)


# Curves drawn by `history`, in panels: (title, log names).
_PANELS = (
    ("Losses", ("d_loss", "g_loss")),
    ("Energies (low = looks real)", ("energy_real", "energy_fake")),
    ("Pulling-away term", ("pt",)),
    ("BEGAN convergence measure and k", ("convergence", "k")),
    ("MAGAN margin", ("margin",)),
)


def history(history_or_dict, path=None):
    """Draws training curves: losses, energies and each model's own scalars.

    Panels appear for the logs that are present: `d_loss`/`g_loss`,
    `energy_real`/`energy_fake`, EBGAN-PT's `pt`, BEGAN's `convergence` and
    `k`, MAGAN's `margin`. Validation logs (`val_*`) are drawn dashed.

    Args:
        history_or_dict: `keras.callbacks.History` (what `fit` returns) or a
            dict of log name to list of per-epoch values (e.g. a
            `history.json` written by `ebgan-keras train`; `None` values
            are gaps).
        path: str or None. Where to write the PNG. Defaults to `None`.

    Returns:
        The matplotlib `Figure`.

    Example:

    ```python
    from ebgan_keras import plot

    history = model.fit(images, epochs=10)
    plot.history(history, "curves.png")
    ```
    """
    logs = getattr(history_or_dict, "history", history_or_dict)
    if not isinstance(logs, Mapping):
        raise TypeError(
            "`history_or_dict` must be a keras History or a dict of log name to "
            f"per-epoch values. Received: {type(history_or_dict).__name__}"
        )
    logs = {str(k): _float_array(v) for k, v in logs.items()}
    panels = []
    used = set()
    for title, names in _PANELS:
        present = [n for n in names if n in logs or f"val_{n}" in logs]
        if present:
            panels.append((title, present))
            used.update(names)
    others = sorted(n for n in logs if not n.startswith("val_") and n not in used)
    if others:
        panels.append(("Other logs", others))
    if not panels:
        raise ValueError(
            "`history_or_dict` has no logs to draw. Received: an empty history"
        )
    from matplotlib.ticker import MaxNLocator

    figure = _figure(figsize=(7, 2.6 * len(panels)))
    axes = figure.subplots(len(panels), 1, squeeze=False)
    for axis, (title, names) in zip(axes[:, 0], panels, strict=True):
        for name in names:
            for key, style in ((name, "-"), (f"val_{name}", "--")):
                if key in logs:
                    values = logs[key]
                    epochs = np.arange(1, len(values) + 1)
                    axis.plot(epochs, values, style, marker=".", label=key)
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend(loc="best", fontsize="small")
    figure.tight_layout()
    if path is not None:
        _make_parent(path)
        figure.savefig(path, dpi=100)
    return figure


def energy_histogram(model, real, fake=None, path=None, bins: int = 50, seed: int = 0):
    """Histograms of the energies of real and generated images.

    A discriminator that separates them puts real images at low energy and
    generated ones higher; overlapping histograms mean it cannot tell them
    apart.

    Args:
        model: an `ek` GAN (anything with `energy(images)` and `generate(n,
            seed=)`).
        real: array `(N, H, W, C)` of real images in `[-1, 1]`.
        fake: array of generated images, or None to generate as many as
            `real` with `seed`. Defaults to `None`.
        path: str or None. Where to write the PNG. Defaults to `None`.
        bins: int. Histogram bins. Defaults to `50`.
        seed: int. Seed of the generated images when `fake` is None.
            Defaults to `0`.

    Returns:
        The matplotlib `Figure`.

    Example:

    ```python
    from ebgan_keras import plot

    plot.energy_histogram(model, real_images[:1000], path="energies.png")
    ```
    """
    for name in ("energy", "generate"):
        if not callable(getattr(model, name, None)):
            raise TypeError(
                "`model` must be an ebgan_keras GAN with `energy` and `generate`. "
                f"Received: model={type(model).__name__}"
            )
    real = np.asarray(real, dtype=np.float32)
    if fake is None:
        fake = model.generate(len(real), seed=seed)
    fake = np.asarray(fake, dtype=np.float32)
    energy_real = np.asarray(model.energy(real))
    energy_fake = np.asarray(model.energy(fake))
    figure = _figure(figsize=(6, 3.5))
    axis = figure.subplots()
    low = float(min(energy_real.min(), energy_fake.min()))
    high = float(max(energy_real.max(), energy_fake.max()))
    edges = np.linspace(low, high if high > low else low + 1.0, int(bins) + 1)
    axis.hist(
        energy_real,
        bins=edges,
        alpha=0.6,
        label=f"real (mean {energy_real.mean():.3g})",
    )
    axis.hist(
        energy_fake,
        bins=edges,
        alpha=0.6,
        label=f"generated (mean {energy_fake.mean():.3g})",
    )
    margin = getattr(model, "margin", None)
    if margin is not None:
        value = float(np.asarray(_to_numpy(margin)))
        if value > 0:
            axis.axvline(value, color="k", linestyle="--", label=f"margin {value:.3g}")
    axis.set_xlabel("energy (low = looks real)")
    axis.set_ylabel("images")
    axis.legend(loc="best", fontsize="small")
    figure.tight_layout()
    if path is not None:
        _make_parent(path)
        figure.savefig(path, dpi=100)
    return figure


def _float_array(values) -> np.ndarray:
    values = np.asarray(values, dtype=object).reshape(-1)
    return np.array([np.nan if v is None else float(v) for v in values])


def _to_numpy(value):
    try:
        import keras

        return keras.ops.convert_to_numpy(value)
    except Exception:  # noqa: BLE001 - plain numbers
        return np.asarray(value)


def _figure(figsize):
    # A pyplot-free Figure: no global state, no GUI backend is touched.
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "Plotting curves and histograms needs matplotlib: "
            "`pip install matplotlib`. (`ebgan_keras.plot.grid` works without it.)"
        ) from None
    return Figure(figsize=figsize)


def _make_parent(path) -> None:
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)
