"""One module per layer kind: shapes come from the spec, parameters, NumPy forward and backward."""

from __future__ import annotations

from ..spec.types import LayerSpec
from .base import Forward, Layer
from .conv2d import Conv2D
from .dense import Dense
from .dropout import Dropout, draw_masks
from .flatten import Flatten
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, MaxPooling2D

KINDS: dict[str, type[Layer]] = {
    "dense": Dense,
    "conv2d": Conv2D,
    "max_pooling2d": MaxPooling2D,
    "average_pooling2d": AveragePooling2D,
    "flatten": Flatten,
    "dropout": Dropout,
    "batch_normalization": BatchNormalization,
}


def make_layer(spec: LayerSpec) -> Layer:
    """The layer object of a scenario layer."""
    return KINDS[spec.type](spec)


__all__ = [
    "KINDS",
    "AveragePooling2D",
    "BatchNormalization",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Forward",
    "Layer",
    "MaxPooling2D",
    "draw_masks",
    "make_layer",
]
