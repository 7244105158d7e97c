"""Flatten: (batch, H, W, C) → (batch, H·W·C) in row-major (channels-last) order, as Keras."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Array, Forward, Layer


class Flatten(Layer):
    def forward(
        self,
        params: Mapping[str, Array],
        a_prev: Array,
        training: bool = True,
        mask: Array | None = None,
    ) -> Forward:
        return Forward(a_prev.reshape(len(a_prev), -1), a_prev.shape)

    def backward(
        self, cache: Any, dL_dz: Array, need_input_grad: bool = True
    ) -> tuple[dict[str, Array], Array | None]:
        return {}, dL_dz.reshape(cache)
