"""Images of the digits 0–9, drawn by the project from a 5×7 bitmap font.

Each sample is a digit placed with a random scale, shift and slant, sampled
with bilinear interpolation (so strokes have soft edges, like scanned digits)
and with Gaussian noise added. At size 28 this gives MNIST-shaped inputs
(784 values in [0, 1]) so the classic 784→64→10 network trains with no download.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

SIZES = (8, 28)

_FONT = {
    0: ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    1: ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    2: ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    3: ("11111", "00010", "00100", "00010", "00001", "10001", "01110"),
    4: ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    5: ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    6: ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    7: ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    8: ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    9: ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
}


def font() -> NDArray[np.float64]:
    """The bitmaps, shape (10, 7, 5), 1.0 where the stroke is."""
    return np.array(
        [[[float(c) for c in row] for row in _FONT[d]] for d in range(10)], dtype=np.float64
    )


# Samples drawn at once: the per-pixel intermediates of a chunk stay a few MB.
CHUNK = 256


def draw(
    rng: np.random.Generator, n: int, size: int = 28, noise: float = 0.1
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """``n`` random digit images, shape (n, size, size), and their labels (n,).

    The per-sample draws (label, size, slant, place, ink) come first, for all
    samples, then the pixels chunk by chunk with each chunk's noise: the same
    random stream as drawing everything at once, in memory of the output's
    size plus one chunk's intermediates.
    """
    bitmaps = np.pad(font(), ((0, 0), (1, 1), (1, 1)))  # (10, 9, 7): a blank border
    labels = rng.integers(0, 10, n)
    if size == 8:
        height = rng.uniform(6.0, 7.5, n)
    else:
        height = rng.uniform(0.55, 0.8, n) * size
    width = height * rng.uniform(0.6, 0.8, n)
    slant = rng.uniform(-0.25, 0.25, n)
    room_y = np.maximum(size - height, 0.0)
    room_x = np.maximum(size - width, 0.0)
    top = rng.uniform(0.25, 0.75, n) * room_y
    left = rng.uniform(0.25, 0.75, n) * room_x
    ink = rng.uniform(0.7, 1.0, (n, 1, 1))
    rows, cols = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
    flat = bitmaps.reshape(10, -1)  # a pixel (v, u) of glyph d is flat[d, v * 7 + u]
    images = np.empty((n, size, size), dtype=np.float64)
    for start in range(0, n, CHUNK):
        part = slice(start, min(start + CHUNK, n))
        # Map each output pixel back into the glyph's 7×5 cell grid (+1 for the border).
        v = (rows[None] - top[part, None, None]) / height[part, None, None] * 7.0
        u = (cols[None] - left[part, None, None]) / width[part, None, None] * 5.0
        u = u + slant[part, None, None] * (v - 3.5)
        v, u = v + 1.0 - 0.5, u + 1.0 - 0.5
        v = np.clip(v, 0.0, 8.0)
        u = np.clip(u, 0.0, 6.0)
        v0 = np.minimum(np.floor(v).astype(np.intp), 7)
        u0 = np.minimum(np.floor(u).astype(np.intp), 5)
        fv, fu = v - v0, u - u0
        glyph = flat[labels[part]][:, None, None, :]  # (chunk, 1, 1, 63)
        at = v0 * 7 + u0

        def pixel(
            offset: int, at: NDArray[np.intp] = at, glyph: NDArray[np.float64] = glyph
        ) -> NDArray[np.float64]:
            return np.take_along_axis(glyph, (at + offset)[..., None], axis=-1)[..., 0]

        image = (
            pixel(0) * (1 - fv) * (1 - fu)
            + pixel(1) * (1 - fv) * fu
            + pixel(7) * fv * (1 - fu)
            + pixel(8) * fv * fu
        )
        image = image * ink[part]
        image = image + noise * rng.standard_normal(image.shape)
        np.clip(image, 0.0, 1.0, out=images[part])
    return images, labels.astype(np.int64)
