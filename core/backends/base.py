"""What a backend must do: one training step, piece by piece, keeping every intermediate."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..maths.optimizers import ArrayModule
from ..maths.regularizers import Regularizer

Array = Any  # the backend's own array type


class Backend(ABC):
    """Holds the parameters and the current step's intermediates, in backend arrays.

    The debugger calls, for one step: ``begin`` (input), ``forward_layer(i)`` for
    each layer, ``compute_loss``, ``backward_layer(i)`` from the last layer down,
    then ``set_params`` with the optimizer's result. Parameters are replaced,
    never written in place: the history keeps references to old ones. Per layer ``i`` the backend
    keeps ``z[i]``, ``a[i]`` (batch, units) and after backward ``dL_da[i]``,
    ``dL_dz[i]`` (batch, units) and ``grads[param]``; ``a_prev(i)`` is the input
    of layer ``i``. Nothing is copied to the host unless ``to_host`` is called.
    """

    name: str
    device: str
    dtype: str
    xp: ArrayModule

    def __init__(self) -> None:
        self.params: dict[str, Array] = {}
        self.x: Array = None
        self.y: Array = None
        self.z: list[Array] = []
        self.a: list[Array] = []
        self.dL_da: list[Array] = []
        self.dL_dz: list[Array] = []
        self.grads: dict[str, Array] = {}
        # This step's dropout masks by layer index (host arrays) and the new values of
        # the non-trainable numbers (moving statistics) its forward pass worked out.
        self.masks: dict[int, NDArray[Any]] = {}
        self.state_updates: dict[str, Array] = {}
        # Keras' weight penalties by parameter name; this step's penalty (added to
        # the loss ``compute_loss`` returns) and each penalised gradient's penalty part.
        self.regularizers: dict[str, Regularizer] = {}
        self.penalty_value: float | None = None
        self.penalty_grads: dict[str, Array] = {}

    # moving data -------------------------------------------------------------
    @abstractmethod
    def to_host(self, array: Array) -> NDArray[Any]:
        """A NumPy copy (or view, for NumPy) of a backend array."""

    @abstractmethod
    def from_host(self, array: NDArray[Any]) -> Array:
        """A backend array in this backend's dtype and device."""

    def set_params(self, params: dict[str, Array]) -> None:
        self.params = dict(params)

    def params_host(self) -> dict[str, NDArray[Any]]:
        return {k: self.to_host(v) for k, v in self.params.items()}

    # weight penalties --------------------------------------------------------
    def sign(self, w: Array) -> Array:
        return self.xp.sign(w)

    def penalty(self, params: dict[str, Array] | None = None) -> float:
        """The weight penalty of ``params`` (default: the current ones); 0 without regularizers."""
        params = self.params if params is None else params
        total = 0.0
        for name, reg in self.regularizers.items():
            total += float(reg.penalty(params[name]))
        return total

    def add_penalty_grad(self, name: str, grad: Array) -> Array:
        """``grad`` (the data part) plus ``name``'s penalty part, which is kept apart."""
        reg = self.regularizers.get(name)
        if reg is None:
            return grad
        part = reg.gradient(self.params[name], self.sign)
        self.penalty_grads[name] = part
        return grad + part

    # one step ----------------------------------------------------------------
    def begin(
        self,
        x: NDArray[np.float64],
        y: NDArray[np.float64],
        masks: dict[int, NDArray[Any]] | None = None,
    ) -> None:
        """The input phase: take a batch and forget the previous step's intermediates.

        ``x`` (batch, inputs) is reshaped to the model's input shape; ``masks``
        are the step's dropout masks by layer index (none: no dropout).
        """
        n = len(self.z_slots())
        self.x = self.from_host(self.shaped(x))
        self.y = self.from_host(y)
        self.z = [None] * n
        self.a = [None] * n
        self.dL_da = [None] * n
        self.dL_dz = [None] * n
        self.grads = {}
        self.masks = dict(masks) if masks else {}
        self.state_updates = {}
        self.penalty_value = None
        self.penalty_grads = {}

    input_shape: tuple[int, ...] = ()

    def shaped(self, x: NDArray[Any]) -> NDArray[Any]:
        """Flat samples (n, inputs) in the model's input shape (n, H, W, C)."""
        if len(self.input_shape) <= 1:
            return x
        return x.reshape(len(x), *self.input_shape)

    @abstractmethod
    def z_slots(self) -> list[str]:
        """Layer names, in order."""

    def a_prev(self, i: int) -> Array:
        return self.x if i == 0 else self.a[i - 1]

    @abstractmethod
    def forward_layer(self, i: int) -> None:
        """Compute and keep ``z[i]`` and ``a[i]`` from ``a_prev(i)``."""

    @abstractmethod
    def compute_loss(self) -> float:
        """The loss of the kept output; keep dL/da (and dL/dz when fused) of the output."""

    @abstractmethod
    def backward_layer(self, i: int) -> None:
        """Fill ``dL_dz[i]``, the gradients of layer ``i``'s parameters and ``dL_da[i - 1]``."""

    @abstractmethod
    def predict(self, x: NDArray[np.float64]) -> tuple[NDArray[Any], NDArray[Any]]:
        """The last layer's ``z`` and ``a`` for inputs ``x``, on the host, keeping nothing."""
