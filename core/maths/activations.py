"""Activation functions and their derivatives, written out for the NumPy backend.

Each entry maps ``z`` to ``a`` and gives ``dL/dz`` from ``dL/da``. All but softmax
act element by element, so ``dL/dz = dL/da · f'(z)``; softmax mixes the units of
a sample and uses its Jacobian.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]

LEAKY_SLOPE = 0.2  # Keras 3's default negative_slope for leaky_relu
_SQRT_2 = math.sqrt(2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_erf = np.frompyfunc(math.erf, 1, 1)


def sigmoid(z: Array) -> Array:
    # Two branches so neither exp overflows: exp(-|z|) is at most 1.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def softmax(z: Array) -> Array:
    shifted = z - z.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    out: Array = e / e.sum(axis=-1, keepdims=True)
    return out


def erf(x: Array) -> Array:
    """Error function element by element, exact to the platform's libm."""
    return np.asarray(_erf(x), dtype=x.dtype)


def _gelu(z: Array) -> Array:
    out: Array = 0.5 * z * (1.0 + erf(z / _SQRT_2))
    return out


def _gelu_grad(z: Array, a: Array) -> Array:
    cdf = 0.5 * (1.0 + erf(z / _SQRT_2))
    pdf = np.exp(-0.5 * z * z) / _SQRT_2PI
    out: Array = cdf + z * pdf
    return out


@dataclass(frozen=True)
class Activation:
    """``forward(z) -> a``; ``derivative(z, a) -> f'(z)`` for element-wise ones."""

    name: str
    forward: Callable[[Array], Array]
    derivative: Callable[[Array, Array], Array] | None
    saturating: bool = False

    def backward(self, z: Array, a: Array, dL_da: Array) -> Array:
        """dL/dz from dL/da, all of shape (batch, units)."""
        if self.derivative is None:  # softmax: Jacobian-vector product per sample
            dot = (dL_da * a).sum(axis=-1, keepdims=True)
            out: Array = a * (dL_da - dot)
            return out
        if self.name == "relu":
            # Pass dL/da where z > 0 and exactly 0 elsewhere, as autograd does:
            # 0 · inf would make a NaN where no gradient flows at all.
            masked: Array = np.where(z > 0, dL_da, 0).astype(dL_da.dtype, copy=False)
            return masked
        result: Array = dL_da * self.derivative(z, a)
        return result


def _relu(z: Array) -> Array:
    return np.maximum(z, 0).astype(z.dtype, copy=False)


def _relu_grad(z: Array, a: Array) -> Array:
    return (z > 0).astype(z.dtype)


def _leaky(z: Array) -> Array:
    return np.where(z > 0, z, LEAKY_SLOPE * z).astype(z.dtype, copy=False)


def _leaky_grad(z: Array, a: Array) -> Array:
    return np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype, copy=False)


def _elu(z: Array) -> Array:
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0))).astype(z.dtype, copy=False)


def _elu_grad(z: Array, a: Array) -> Array:
    return np.where(z > 0, 1.0, a + 1.0).astype(z.dtype, copy=False)


def _softplus(z: Array) -> Array:
    return (np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))).astype(z.dtype, copy=False)


def _swish(z: Array) -> Array:
    out: Array = z * sigmoid(z)
    return out


def _swish_grad(z: Array, a: Array) -> Array:
    s = sigmoid(z)
    out: Array = s * (1.0 + z * (1.0 - s))
    return out


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation("linear", lambda z: z, lambda z, a: np.ones_like(z)),
    "relu": Activation("relu", _relu, _relu_grad),
    "leaky_relu": Activation("leaky_relu", _leaky, _leaky_grad),
    "elu": Activation("elu", _elu, _elu_grad),
    "sigmoid": Activation("sigmoid", sigmoid, lambda z, a: a * (1.0 - a), saturating=True),
    "tanh": Activation("tanh", np.tanh, lambda z, a: 1.0 - a * a, saturating=True),
    "softmax": Activation("softmax", softmax, None),
    "softplus": Activation("softplus", _softplus, lambda z, a: sigmoid(z)),
    "swish": Activation("swish", _swish, _swish_grad),
    "gelu": Activation("gelu", _gelu, _gelu_grad),
}
ALIASES = {"silu": "swish", "identity": "linear", None: "linear"}


def get_activation(name: str) -> Activation:
    return ACTIVATIONS[ALIASES.get(name, name)]


def derivative_text(name: str) -> str:
    """How f'(z) is written, for the chain-rule pane."""
    return {
        "linear": "1",
        "relu": "1 if z > 0 else 0",
        "leaky_relu": f"1 if z > 0 else {LEAKY_SLOPE}",
        "elu": "1 if z > 0 else a + 1",
        "sigmoid": "a·(1 − a)",
        "tanh": "1 − a²",
        "softmax": "a·(dL/da − Σ dL/da·a)",
        "softplus": "sigmoid(z)",
        "swish": "s·(1 + z·(1 − s)), s = sigmoid(z)",
        "gelu": "Φ(z) + z·φ(z)",
    }[name]
