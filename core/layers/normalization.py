"""BatchNormalization over the last axis (channels or units), as Keras computes it.

Training: ``x̂ = (x − μ_B)/√(σ²_B + ε)``, ``z = γ·x̂ + β``, with μ_B and σ²_B the
batch's mean and (biased) variance over every axis but the last; the moving
statistics become ``momentum·moving + (1 − momentum)·batch`` (applied with the
step's update). Prediction: the moving statistics instead of the batch's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import Array, Forward, Layer


class BatchNormalization(Layer):
    def forward(
        self,
        params: Mapping[str, Array],
        a_prev: Array,
        training: bool = True,
        mask: Array | None = None,
    ) -> Forward:
        spec, n = self.spec, self.name
        gamma, beta = params[f"{n}.gamma"], params[f"{n}.beta"]
        if not training:
            mean, var = params[f"{n}.moving_mean"], params[f"{n}.moving_variance"]
            return Forward((a_prev - mean) / np.sqrt(var + spec.epsilon) * gamma + beta, None)
        axes = tuple(range(a_prev.ndim - 1))
        mean = a_prev.mean(axis=axes)
        centred = a_prev - mean
        var = (centred * centred).mean(axis=axes)
        inv_std = 1.0 / np.sqrt(var + spec.epsilon)
        x_hat = centred * inv_std
        m = spec.momentum
        state = {
            f"{n}.moving_mean": params[f"{n}.moving_mean"] * m + mean * (1.0 - m),
            f"{n}.moving_variance": params[f"{n}.moving_variance"] * m + var * (1.0 - m),
        }
        return Forward(x_hat * gamma + beta, (x_hat, inv_std, gamma), state)

    def backward(
        self, cache: Any, dL_dz: Array, need_input_grad: bool = True
    ) -> tuple[dict[str, Array], Array | None]:
        x_hat, inv_std, gamma = cache
        axes = tuple(range(dL_dz.ndim - 1))
        n = self.name
        grads = {
            f"{n}.gamma": (dL_dz * x_hat).sum(axis=axes),
            f"{n}.beta": dL_dz.sum(axis=axes),
        }
        if not need_input_grad:
            return grads, None
        # x̂ depends on every sample through μ_B and σ²_B:
        # dL/dx = γ/σ · (dL/dz − mean(dL/dz) − x̂ · mean(dL/dz · x̂)).
        mean_dz = dL_dz.mean(axis=axes)
        mean_dz_xhat = (dL_dz * x_hat).mean(axis=axes)
        return grads, (gamma * inv_std) * (dL_dz - mean_dz - x_hat * mean_dz_xhat)
