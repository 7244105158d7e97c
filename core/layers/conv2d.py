"""Conv2D, channels last: ``z[n, y, x, f] = Σ_{i, j, c} a_prev[n, y·s + i, x·s + j, c] · kernel[i, j, c, f] + bias[f]``.

The kernel is (kernel_h, kernel_w, in_channels, filters), as Keras stores it.
Forward and backward contract a strided window view of the (padded) input with
the kernel (``numpy.lib.stride_tricks.sliding_window_view`` + ``tensordot``):
no Python loop over positions; the input gradient loops over the kh·kw offsets
inside the window only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..maths.windows import crop, pad, padding_of, scatter_windows, windows
from .base import Array, Forward, Layer


class Conv2D(Layer):
    def forward(
        self,
        params: Mapping[str, Array],
        a_prev: Array,
        training: bool = True,
        mask: Array | None = None,
    ) -> Forward:
        spec = self.spec
        kernel = params[f"{self.name}.kernel"]
        pads = padding_of(spec.input_shape, spec.kernel_size, spec.strides, spec.padding)
        padded = pad(a_prev, pads)
        patches = windows(padded, spec.kernel_size, spec.strides)  # (n, oh, ow, c, kh, kw)
        z: Array = np.tensordot(patches, kernel, axes=([3, 4, 5], [2, 0, 1]))
        if spec.use_bias:
            z += params[f"{self.name}.bias"]
        return Forward(z, (patches, padded.shape, pads, kernel))

    def backward(
        self, cache: Any, dL_dz: Array, need_input_grad: bool = True
    ) -> tuple[dict[str, Array], Array | None]:
        patches, padded_shape, pads, kernel = cache
        # dL/dkernel[i, j, c, f] = Σ over the batch and output positions of
        # input patch[n, y, x, c, i, j] · dL/dz[n, y, x, f].
        dk = np.tensordot(patches, dL_dz, axes=([0, 1, 2], [0, 1, 2]))  # (c, kh, kw, f)
        grads = {f"{self.name}.kernel": np.ascontiguousarray(dk.transpose(1, 2, 0, 3))}
        if self.spec.use_bias:
            grads[f"{self.name}.bias"] = dL_dz.sum(axis=(0, 1, 2))
        if not need_input_grad:
            return grads, None
        # Each output position hands dL/dz · kernelᵀ back to the inputs of its patch.
        pieces = np.tensordot(dL_dz, kernel, axes=([3], [3]))  # (n, oh, ow, kh, kw, c)
        pieces = pieces.transpose(0, 1, 2, 5, 3, 4)
        dL_da = crop(scatter_windows(pieces, padded_shape, self.spec.strides), pads)
        return grads, dL_da
