"""Keras' weight initializers, drawn with NumPy so every backend starts from the same numbers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Keras draws its *_normal initializers from a normal truncated at two standard
# deviations, scaled up by this factor so the result keeps the wanted variance.
_TRUNCATED_STDDEV_FIX = 0.87962566103423978

NAMES = (
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "zeros",
    "ones",
    "constant",
    "random_normal",
    "random_uniform",
    "truncated_normal",
)
OPTIONS = {
    "random_normal": {"mean", "stddev"},
    "truncated_normal": {"mean", "stddev"},
    "random_uniform": {"minval", "maxval"},
    "constant": {"value"},
}


def _truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> NDArray[Any]:
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    result: NDArray[Any] = out * std
    return result


def initialize(
    name: str, shape: tuple[int, ...], rng: np.random.Generator, options: dict[str, float]
) -> NDArray[np.float64]:
    """Draw an array of ``shape`` (inputs, units), (units,) or a conv kernel
    (kh, kw, in, filters) in float64, with Keras' fans: a conv kernel's are
    kh·kw·in and kh·kw·filters."""
    if len(shape) > 2:
        receptive = math.prod(shape[:-2])
        fan_in, fan_out = receptive * shape[-2], receptive * shape[-1]
    else:
        fan_in = shape[0]
        fan_out = shape[1] if len(shape) == 2 else shape[0]
    if name == "zeros":
        return np.zeros(shape)
    if name == "ones":
        return np.ones(shape)
    if name == "constant":
        return np.full(shape, float(options.get("value", 0.0)))
    if name == "random_normal":
        return options.get("mean", 0.0) + options.get("stddev", 0.05) * rng.standard_normal(shape)
    if name == "truncated_normal":
        std = options.get("stddev", 0.05)
        return options.get("mean", 0.0) + _truncated_normal(rng, shape, std)
    if name == "random_uniform":
        return rng.uniform(options.get("minval", -0.05), options.get("maxval", 0.05), shape)
    scale = {
        "glorot": 2.0 / (fan_in + fan_out),
        "he": 2.0 / fan_in,
        "lecun": 1.0 / fan_in,
    }[name.split("_")[0]]
    if name.endswith("_uniform"):
        limit = math.sqrt(3.0 * scale)
        return rng.uniform(-limit, limit, shape)
    return _truncated_normal(rng, shape, math.sqrt(scale) / _TRUNCATED_STDDEV_FIX)
