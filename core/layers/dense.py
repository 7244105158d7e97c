"""Dense: ``z = a_prev @ kernel + bias``, kernel (inputs, units) as Keras stores it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Array, Forward, Layer


class Dense(Layer):
    def forward(
        self,
        params: Mapping[str, Array],
        a_prev: Array,
        training: bool = True,
        mask: Array | None = None,
    ) -> Forward:
        # The kernel the forward pass ran with is cached: a weight edited mid-step
        # changes the next step, not this step's chain rule.
        kernel = params[f"{self.name}.kernel"]
        z: Array = a_prev @ kernel
        if self.spec.use_bias:
            z += params[f"{self.name}.bias"]
        return Forward(z, (a_prev, kernel))

    def backward(
        self, cache: Any, dL_dz: Array, need_input_grad: bool = True
    ) -> tuple[dict[str, Array], Array | None]:
        a_prev, kernel = cache
        # dL/dW = a_prevᵀ · dL/dz sums the batch; dL/db sums dL/dz over the batch.
        grads = {f"{self.name}.kernel": a_prev.T @ dL_dz}
        if self.spec.use_bias:
            grads[f"{self.name}.bias"] = dL_dz.sum(axis=0)
        return grads, (dL_dz @ kernel.T) if need_input_grad else None
