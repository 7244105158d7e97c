"""Losses, reduced as Keras reduces them, with their gradients.

Keras averages over the last axis for the element-wise losses (mse, mae,
binary cross-entropy) and sums over classes for categorical cross-entropy, then
takes the mean over the batch. When the output layer is sigmoid (binary
cross-entropy) or softmax (categorical), the loss is computed from the logits z
with log-sum-exp, so logits of ±1000 give finite numbers, and dL/dz is the fused
``(p − y) / …`` form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]

# Keras clips probabilities with this epsilon where it cannot use logits.
EPSILON = 1e-7

ALIASES = {
    "mse": "mean_squared_error",
    "mae": "mean_absolute_error",
    "bce": "binary_crossentropy",
    "cce": "categorical_crossentropy",
}
NAMES = (
    "mean_squared_error",
    "mean_absolute_error",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
)
FUSED = {
    "binary_crossentropy": "sigmoid",
    "categorical_crossentropy": "softmax",
    "sparse_categorical_crossentropy": "softmax",
}


def canonical(name: str) -> str:
    return ALIASES.get(name, name)


@dataclass(frozen=True, eq=False)
class LossResult:
    """The loss of one batch and its gradients at the output layer.

    dL_da, dL_dz: (batch, units). ``dL_dz`` is filled when the loss is fused with
    the output activation; otherwise the backward pass derives it from dL_da.
    """

    value: float
    dL_da: Array
    dL_dz: Array | None


def _mean(values: Array) -> float:
    """``np.mean`` to the last bit (the same pairwise sum, divided by the count), without
    its dispatch, which costs more than the sum on a batch-sized array."""
    return float(values.sum() / values.size)


def _log_sigmoid(z: Array) -> Array:
    out: Array = np.minimum(z, 0) - np.log1p(np.exp(-np.abs(z)))
    return out


def _log_softmax(z: Array) -> Array:
    shifted = z - z.max(axis=-1, keepdims=True)
    out: Array = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return out


def compute(name: str, y_true: Array, a: Array, z: Array, fused: bool) -> LossResult:
    """Loss of predictions ``a`` (from logits ``z``) against ``y_true``, all (batch, units)."""
    name = canonical(name)
    batch, units = a.shape
    if name == "mean_squared_error":
        diff = a - y_true
        value = _mean(diff * diff)
        return LossResult(value, (2.0 / (batch * units)) * diff, None)
    if name == "mean_absolute_error":
        diff = a - y_true
        return LossResult(_mean(np.abs(diff)), np.sign(diff) / (batch * units), None)
    if name == "binary_crossentropy":
        if fused:
            elementwise = -(y_true * _log_sigmoid(z) + (1 - y_true) * _log_sigmoid(-z))
            dL_dz = (a - y_true) / (batch * units)
        else:
            p = np.clip(a, EPSILON, 1 - EPSILON)
            elementwise = -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))
            dL_dz = None
        p = np.clip(a, EPSILON, 1 - EPSILON)
        dL_da = (p - y_true) / (p * (1 - p)) / (batch * units)
        return LossResult(_mean(elementwise), dL_da, dL_dz)
    # categorical and sparse categorical: labels are one-hot by now
    if fused:
        per_sample = -(y_true * _log_softmax(z)).sum(axis=-1)
        dL_dz = (a * y_true.sum(axis=-1, keepdims=True) - y_true) / batch
    else:
        p = np.clip(a, EPSILON, 1.0)
        per_sample = -(y_true * np.log(p)).sum(axis=-1)
        dL_dz = None
    p = np.clip(a, EPSILON, 1.0)
    dL_da = -(y_true / p) / batch
    return LossResult(_mean(per_sample), dL_da, dL_dz)
