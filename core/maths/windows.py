"""Sliding windows over the two spatial axes of channels-last images, as Keras lays them out.

The shape rules of conv2d and pooling (TensorFlow's ``valid`` and ``same``
padding) and the strided window view both read. ``same`` pads
``max((out − 1)·stride + size − length, 0)`` in all, the smaller half before:
TensorFlow's rule, which Keras follows and which can be one-sided.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

PADDINGS = ("valid", "same")


def output_length(length: int, size: int, stride: int, padding: str) -> int:
    """Positions along one axis: ``floor((length − size)/stride) + 1`` valid, ``ceil(length/stride)`` same."""
    if padding == "same":
        return math.ceil(length / stride)
    return (length - size) // stride + 1 if length >= size else 0


def pad_amounts(length: int, size: int, stride: int, padding: str) -> tuple[int, int]:
    """(before, after) padding along one axis."""
    if padding != "same":
        return (0, 0)
    out = output_length(length, size, stride, padding)
    total = max((out - 1) * stride + size - length, 0)
    return (total // 2, total - total // 2)


def padding_of(
    shape: tuple[int, ...], size: tuple[int, int], strides: tuple[int, int], padding: str
) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) for an (H, W, C) input."""
    return (
        pad_amounts(shape[0], size[0], strides[0], padding),
        pad_amounts(shape[1], size[1], strides[1], padding),
    )


def pad(
    x: NDArray[Any], pads: tuple[tuple[int, int], tuple[int, int]], value: float = 0.0
) -> NDArray[Any]:
    """``x`` (batch, H, W, C) padded on its spatial axes (no copy when there is no padding)."""
    if pads == ((0, 0), (0, 0)):
        return x
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value)


def windows(x: NDArray[Any], size: tuple[int, int], strides: tuple[int, int]) -> NDArray[Any]:
    """A read-only view (batch, out_h, out_w, C, size_h, size_w) of the strided windows of
    ``x`` (batch, H, W, C), already padded. No copy."""
    view = np.lib.stride_tricks.sliding_window_view(x, size, axis=(1, 2))
    return view[:, :: strides[0], :: strides[1]]


def scatter_windows(
    pieces: NDArray[Any],
    padded_shape: tuple[int, ...],
    strides: tuple[int, int],
) -> NDArray[Any]:
    """The adjoint of :func:`windows`: ``pieces`` (batch, out_h, out_w, C, size_h, size_w)
    summed back onto an array of ``padded_shape`` (batch, H, W, C).

    One vectorised addition per offset inside the window (kh·kw of them), never a
    loop over positions.
    """
    out = np.zeros(padded_shape, dtype=pieces.dtype)
    _, out_h, out_w, _, size_h, size_w = pieces.shape
    sh, sw = strides
    for i in range(size_h):
        for j in range(size_w):
            out[:, i : i + sh * out_h : sh, j : j + sw * out_w : sw, :] += pieces[..., i, j]
    return out


def crop(x: NDArray[Any], pads: tuple[tuple[int, int], tuple[int, int]]) -> NDArray[Any]:
    """Undo :func:`pad` on (batch, H, W, C)."""
    (top, bottom), (left, right) = pads
    return x[:, top : x.shape[1] - bottom, left : x.shape[2] - right, :]
