"""Backends compute one training step's pieces; the :class:`~backprop_tui.core.Debugger` drives them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import BackendUnavailable
from .base import Backend

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from ..spec.scenario import Scenario

BACKENDS = ("numpy", "torch")
DTYPES = ("float32", "float64")


def make_backend(
    name: str,
    scenario: Scenario,
    params: dict[str, NDArray[np.float64]],
    dtype: str,
    device: str,
) -> Backend:
    """The backend ``name`` holding ``params`` (float64 host arrays) in ``dtype`` on ``device``."""
    if dtype not in DTYPES:
        raise BackendUnavailable(f"unknown dtype '{dtype}'; use float32 or float64")
    if name == "numpy":
        if device not in ("cpu", "auto"):
            raise BackendUnavailable(
                f"the numpy backend runs on the cpu only, not '{device}'; use --backend torch "
                "for other devices"
            )
        from .numpy_backend import NumpyBackend

        return NumpyBackend(scenario, params, dtype)
    if name == "torch":
        from .torch_backend import TorchBackend

        backend: Backend = TorchBackend(scenario, params, dtype, device)
        return backend
    raise BackendUnavailable(f"unknown backend '{name}'; use numpy or torch")


__all__ = ["BACKENDS", "DTYPES", "Backend", "make_backend"]
