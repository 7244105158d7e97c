"""The reference backend: forward and backward written out by hand with NumPy."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..maths import losses
from ..maths.activations import get_activation
from ..spec.scenario import Scenario
from .base import Backend


class NumpyBackend(Backend):
    name = "numpy"
    xp = np

    def __init__(
        self, scenario: Scenario, params: dict[str, NDArray[np.float64]], dtype: str
    ) -> None:
        super().__init__()
        self.device = "cpu"
        self.dtype = dtype
        self._np_dtype = np.dtype(dtype)
        self.scenario = scenario
        self.layers = scenario.layers
        self.activations = [get_activation(layer.activation) for layer in self.layers]
        self.fused = losses.FUSED.get(scenario.loss) == self.layers[-1].activation
        self.set_params({k: self.from_host(v) for k, v in params.items()})
        self._forward_kernels: list[NDArray[Any]] = [np.empty(0)] * len(self.layers)

    def to_host(self, array: Any) -> NDArray[Any]:
        return np.asarray(array)

    def from_host(self, array: NDArray[Any]) -> NDArray[Any]:
        # No copy when the dtype already fits: the engine never writes into an
        # array it was handed (parameters are replaced, batches are fresh).
        return np.asarray(array, dtype=self._np_dtype)

    def z_slots(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def _affine(self, i: int, a_prev: NDArray[Any]) -> NDArray[Any]:
        layer = self.layers[i]
        z: NDArray[Any] = a_prev @ self.params[f"{layer.name}.kernel"]
        if layer.use_bias:
            z += self.params[f"{layer.name}.bias"]
        return z

    def forward_layer(self, i: int) -> None:
        self._forward_kernels[i] = self.params[f"{self.layers[i].name}.kernel"]
        z = self._affine(i, self.a_prev(i))
        self.z[i] = z
        self.a[i] = self.activations[i].forward(z)

    def compute_loss(self) -> float:
        result = losses.compute(self.scenario.loss, self.y, self.a[-1], self.z[-1], self.fused)
        self.dL_da[-1] = result.dL_da
        if result.dL_dz is not None:
            self.dL_dz[-1] = result.dL_dz
        return result.value

    def backward_layer(self, i: int) -> None:
        layer = self.layers[i]
        if self.dL_dz[i] is None:
            self.dL_dz[i] = self.activations[i].backward(self.z[i], self.a[i], self.dL_da[i])
        dL_dz = self.dL_dz[i]
        # dL/dW = a_prevᵀ · dL/dz sums the batch; dL/db sums dL/dz over the batch.
        self.grads[f"{layer.name}.kernel"] = self.a_prev(i).T @ dL_dz
        if layer.use_bias:
            self.grads[f"{layer.name}.bias"] = dL_dz.sum(axis=0)
        if i > 0:
            # The kernel the forward pass ran with: a weight edited mid-step
            # changes the next step, not this step's chain rule.
            self.dL_da[i - 1] = dL_dz @ self._forward_kernels[i].T

    def predict(self, x: NDArray[np.float64]) -> tuple[NDArray[Any], NDArray[Any]]:
        a = z = self.from_host(x)
        for i in range(len(self.layers)):
            z = self._affine(i, a)
            a = self.activations[i].forward(z)
        return z, a
