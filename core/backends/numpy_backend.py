"""The reference backend: forward and backward written out by hand with NumPy."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..layers import make_layer
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
        self.input_shape = scenario.sample_shape
        self.layers = scenario.layers
        self.pieces = [make_layer(layer) for layer in self.layers]
        self.activations = [get_activation(layer.activation) for layer in self.layers]
        self.fused = losses.FUSED.get(scenario.loss) == self.layers[-1].activation
        self.regularizers = {k: r for layer in self.layers for k, r in layer.regularizers.items()}
        self.set_params({k: self.from_host(v) for k, v in params.items()})
        self._caches: list[Any] = [None] * len(self.layers)

    def to_host(self, array: Any) -> NDArray[Any]:
        return np.asarray(array)

    def from_host(self, array: NDArray[Any]) -> NDArray[Any]:
        # No copy when the dtype already fits: the engine never writes into an
        # array it was handed (parameters are replaced, batches are fresh).
        return np.asarray(array, dtype=self._np_dtype)

    def z_slots(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def forward_layer(self, i: int) -> None:
        mask = self.masks.get(i)
        step = self.pieces[i].forward(
            self.params, self.a_prev(i), True, None if mask is None else self.from_host(mask)
        )
        self._caches[i] = step.cache
        self.state_updates.update(step.state)
        self.z[i] = step.z
        self.a[i] = self.activations[i].forward(step.z)

    def compute_loss(self) -> float:
        result = losses.compute(self.scenario.loss, self.y, self.a[-1], self.z[-1], self.fused)
        self.dL_da[-1] = result.dL_da
        if result.dL_dz is not None:
            self.dL_dz[-1] = result.dL_dz
        if not self.regularizers:
            return result.value
        self.penalty_value = self.penalty()
        return result.value + self.penalty_value

    def backward_layer(self, i: int) -> None:
        if self.dL_dz[i] is None:
            self.dL_dz[i] = self.activations[i].backward(self.z[i], self.a[i], self.dL_da[i])
        grads, dL_da_prev = self.pieces[i].backward(self._caches[i], self.dL_dz[i], i > 0)
        for name, grad in grads.items():
            self.grads[name] = self.add_penalty_grad(name, grad)
        if i > 0:
            self.dL_da[i - 1] = dL_da_prev

    def kinks(self, i: int) -> NDArray[Any] | None:
        """Layer ``i``'s pattern of non-differentiable choices in this step (see Layer.kinks)."""
        return self.pieces[i].kinks(self._caches[i])

    def predict(self, x: NDArray[np.float64]) -> tuple[NDArray[Any], NDArray[Any]]:
        a = z = self.from_host(self.shaped(x))
        for i, piece in enumerate(self.pieces):
            z = piece.forward(self.params, a, training=False).z
            a = self.activations[i].forward(z)
        return z, a
