"""Weight penalties as Keras defines them: L1 ``λ·Σ|w|`` and L2 ``λ·Σw²``.

A layer's ``kernel_regularizer`` and ``bias_regularizer`` add their penalty to
the batch's loss (Keras' ``model.losses``), so each regularized parameter's
gradient is its data part (backprop through the network) plus its penalty
part, ``λ₁·sign(w) + 2·λ₂·w``. The penalty is worked out on the weights the
forward pass ran with, in the backend's own arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Array = Any  # a backend array: NumPy or torch

# Keras' factor when a regularizer is named without one: ``kernel_regularizer: l2``.
DEFAULT_FACTOR = 0.01
NAMES = ("l1", "l2")


@dataclass(frozen=True)
class Regularizer:
    """``l1·Σ|w| + l2·Σw²``; a factor of 0 leaves its term out."""

    l1: float = 0.0
    l2: float = 0.0

    def penalty(self, w: Array) -> Array:
        """The penalty of ``w`` as a 0-d array (same order of terms as Keras' L1L2)."""
        total: Array = 0.0
        if self.l1:
            total = total + self.l1 * abs(w).sum()
        if self.l2:
            total = total + self.l2 * (w * w).sum()
        return total

    def gradient(self, w: Array, sign: Any) -> Array:
        """d penalty / dw: ``λ₁·sign(w) + 2·λ₂·w`` (sign(0) = 0, as autograd has it)."""
        if not self.l1:
            return (2.0 * self.l2) * w
        part = self.l1 * sign(w)
        return part + (2.0 * self.l2) * w if self.l2 else part

    def text(self) -> str:
        """``l2 0.01``, ``l1 0.001 + l2 0.01``: how the panes and ``check`` name it."""
        terms = [f"{name} {value:g}" for name, value in (("l1", self.l1), ("l2", self.l2)) if value]
        return " + ".join(terms) or "none"

    def formula(self) -> str:
        """The penalty's part of a gradient, in symbols: ``2·0.01·w``, ``0.001·sign w``."""
        terms = []
        if self.l1:
            terms.append(f"{self.l1:g}·sign w")
        if self.l2:
            terms.append(f"2·{self.l2:g}·w")
        return " + ".join(terms) or "0"

    def as_dict(self) -> dict[str, float]:
        return {"l1": self.l1, "l2": self.l2}
