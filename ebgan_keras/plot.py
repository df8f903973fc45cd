"""Pictures of samples: image grids as PNG files."""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image


def grid(images, path: str | None = None, nrow: int | None = None, scale: int = 2):
    """Tiles images into one grid picture, optionally written as a PNG.

    Args:
        images: array `(N, H, W, C)` of floats in `[-1, 1]`, `C` 1 or 3.
        path: str. Where to write the PNG. Defaults to `None` (no file).
        nrow: int. Images per row. Defaults to `ceil(sqrt(N))`.
        scale: int. Nearest-neighbour magnification. Defaults to `2`.

    Returns:
        The grid as a `PIL.Image.Image`.

    Example:

    >>> import numpy as np
    >>> grid(np.zeros((4, 8, 8, 1), "float32")).size
    (32, 32)
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or len(images) == 0:
        raise ValueError(
            "`images` must be a non-empty array (N, H, W, C) with C of 1 or 3. "
            f"Received: images with shape {images.shape}"
        )
    if not np.all(np.isfinite(images)):
        raise ValueError("`images` contains NaN or infinite values. Received: NaN/Inf")
    num, height, width, channels = images.shape
    nrow = nrow or math.ceil(math.sqrt(num))
    rows = math.ceil(num / nrow)
    canvas = np.full((rows * height, nrow * width, channels), -1.0, "float32")
    for i, image in enumerate(images):
        r, c = divmod(i, nrow)
        canvas[r * height : (r + 1) * height, c * width : (c + 1) * width] = image
    pixels = np.round((np.clip(canvas, -1.0, 1.0) + 1.0) * 127.5).astype("uint8")
    picture = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
    if scale > 1:
        picture = picture.resize(
            (picture.width * scale, picture.height * scale), Image.NEAREST
        )
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        picture.save(path)
    return picture
