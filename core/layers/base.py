"""What every layer kind provides: its hand-written NumPy forward and backward.

A layer is built from its :class:`~backprop_tui.core.spec.types.LayerSpec`
(which already holds its shapes and parameter names, worked out where the
scenario is read). ``forward`` returns what it computed and the cache its
backward needs; nothing is kept inside the layer, so one layer object serves
every step, the gradient check and prediction alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..spec.types import LayerSpec

Array = NDArray[Any]


@dataclass(frozen=True, eq=False)
class Forward:
    """One layer's forward pass.

    ``z``: (batch, *output_shape), before the activation; ``cache``: what the
    backward pass reads; ``state``: new values of the layer's non-trainable
    numbers (batch normalization's moving statistics), applied with the update.
    """

    z: Array
    cache: Any
    state: dict[str, Array] = field(default_factory=dict)


class Layer(ABC):
    """A named piece with parameters, a forward and a backward (NumPy, by hand)."""

    def __init__(self, spec: LayerSpec) -> None:
        self.spec = spec
        self.name = spec.name

    @abstractmethod
    def forward(
        self,
        params: Mapping[str, Array],
        a_prev: Array,
        training: bool = True,
        mask: Array | None = None,
    ) -> Forward:
        """``z`` from ``a_prev`` (batch, *input_shape). ``mask``: dropout's, when training."""

    @abstractmethod
    def backward(
        self, cache: Any, dL_dz: Array, need_input_grad: bool = True
    ) -> tuple[dict[str, Array], Array | None]:
        """(gradients of the layer's parameters, dL/da of its input or None)."""

    def kinks(self, cache: Any) -> NDArray[np.bool_] | None:
        """A pattern that changes where the forward pass has no derivative (max pooling's
        choice of winner); None for layers that are smooth in their input."""
        return None
