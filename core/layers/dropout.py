"""Dropout, inverted as in Keras: in training ``z = a_prev · mask``, where the mask holds
``1/(1 − rate)`` for kept inputs and 0 for dropped ones; at prediction ``z = a_prev``.

The masks are drawn here, with NumPy, from the scenario's seed and the step's
number, and handed to the backend: both backends, the gradient check and time
travel see the same masks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..spec.types import Scenario
from .base import Array, Forward, Layer


def draw_masks(scenario: Scenario, step_index: int, batch: int) -> dict[int, Array]:
    """The dropout masks of training step ``step_index`` (0-based) by layer index,
    each (batch, *input_shape) in float64."""
    masks: dict[int, Array] = {}
    indices = scenario.dropout_layers
    if not indices:
        return masks
    rng = np.random.default_rng([scenario.seed, 3, step_index])
    for i in indices:
        layer = scenario.layers[i]
        keep = rng.random((batch, *layer.input_shape)) >= layer.rate
        masks[i] = keep / (1.0 - layer.rate)
    return masks


class Dropout(Layer):
    def forward(
        self,
        params: Mapping[str, Array],
        a_prev: Array,
        training: bool = True,
        mask: Array | None = None,
    ) -> Forward:
        if not training or mask is None:
            return Forward(a_prev, None)
        return Forward(a_prev * mask, mask)

    def backward(
        self, cache: Any, dL_dz: Array, need_input_grad: bool = True
    ) -> tuple[dict[str, Array], Array | None]:
        return {}, dL_dz if cache is None else dL_dz * cache
