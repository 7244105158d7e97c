"""MaxPooling2D and AveragePooling2D, channels last, with Keras' ``valid`` and ``same`` padding.

Max pooling passes each window's gradient to its largest input (the first of
equals, in row-major order, as torch does); ``same`` padding pads with −inf so
the padding never wins. Average pooling divides by the number of real inputs
in the window (Keras/TensorFlow leave the padding out of the count).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..maths.windows import crop, pad, padding_of, scatter_windows, windows
from .base import Array, Forward, Layer


class MaxPooling2D(Layer):
    def forward(
        self,
        params: Mapping[str, Array],
        a_prev: Array,
        training: bool = True,
        mask: Array | None = None,
    ) -> Forward:
        spec = self.spec
        pads = padding_of(spec.input_shape, spec.kernel_size, spec.strides, spec.padding)
        padded = pad(a_prev, pads, value=-np.inf)
        patches = windows(padded, spec.kernel_size, spec.strides)  # (n, oh, ow, c, ph, pw)
        flat = patches.reshape(*patches.shape[:4], -1)
        winner = flat.argmax(axis=-1)
        z = np.take_along_axis(flat, winner[..., None], axis=-1)[..., 0]
        return Forward(z, (winner, padded.shape, pads))

    def backward(
        self, cache: Any, dL_dz: Array, need_input_grad: bool = True
    ) -> tuple[dict[str, Array], Array | None]:
        winner, padded_shape, pads = cache
        ph, pw = self.spec.kernel_size
        chosen = winner[..., None] == np.arange(ph * pw)  # (n, oh, ow, c, ph·pw)
        pieces = (chosen * dL_dz[..., None]).reshape(*winner.shape, ph, pw)
        return {}, crop(scatter_windows(pieces, padded_shape, self.spec.strides), pads)

    def kinks(self, cache: Any) -> Any:
        winner: Any = cache[0]
        return winner


class AveragePooling2D(Layer):
    def _counts(self, dtype: Any) -> tuple[Array, Any]:
        """Real inputs per window (1, oh, ow, 1) and the padding."""
        spec = self.spec
        pads = padding_of(spec.input_shape, spec.kernel_size, spec.strides, spec.padding)
        ones = np.ones((1, *spec.input_shape[:2], 1), dtype=dtype)
        counts = windows(pad(ones, pads), spec.kernel_size, spec.strides).sum(axis=(-2, -1))
        return counts, pads

    def forward(
        self,
        params: Mapping[str, Array],
        a_prev: Array,
        training: bool = True,
        mask: Array | None = None,
    ) -> Forward:
        spec = self.spec
        counts, pads = self._counts(a_prev.dtype)
        padded = pad(a_prev, pads)
        total = windows(padded, spec.kernel_size, spec.strides).sum(axis=(-2, -1))
        return Forward(total / counts, (counts, padded.shape, pads))

    def backward(
        self, cache: Any, dL_dz: Array, need_input_grad: bool = True
    ) -> tuple[dict[str, Array], Array | None]:
        counts, padded_shape, pads = cache
        ph, pw = self.spec.kernel_size
        share = dL_dz / counts
        pieces = np.broadcast_to(share[..., None, None], (*share.shape, ph, pw))
        return {}, crop(scatter_windows(pieces, padded_shape, self.spec.strides), pads)
