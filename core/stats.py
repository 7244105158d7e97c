"""What one finished training step measured: norms, ratios, dead and saturated units, NaN/Inf.

A :class:`StepStatistics` holds references to the step's arrays (the backend
replaces arrays rather than writing into them, so they stay as they were) and
measures each quantity the first time it is asked for, then keeps the number.
Diagnostics and breakpoint expressions read the same object, so nothing is
computed twice and nothing is computed that no one reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .scenario import LayerSpec

if TYPE_CHECKING:
    from .debugger import Debugger
    from .records import PhaseRecord

Array = Any  # a NumPy array or a backend's tensor
SATURATED_SLOPE = 0.01  # a unit is saturated where f'(z) is under 1% of its peak
SYMMETRY_TOLERANCE = 1e-6  # relative spread under which units count as identical
_PEAK_SLOPE = {"sigmoid": 0.25, "tanh": 1.0}


def sum_of_squares(array: Array) -> float:
    """Σ x² of a NumPy array or a tensor, without copying it to the host."""
    if isinstance(array, np.ndarray):
        # Not np.dot: BLAS may share a sum this small among threads, and waking them
        # costs more than the sum on a busy machine.
        return float(np.square(array).sum())
    return float((array * array).sum())


@dataclass(frozen=True)
class Location:
    """Where a NaN or Inf was first seen in a step: phase, layer and tensor."""

    phase: str  # input | forward | loss | backward | update
    layer: str | None
    tensor: str

    def describe(self) -> str:
        if self.phase == "loss":
            return "the loss" if self.tensor == "loss" else f"the loss's {self.tensor}"
        if self.phase == "update":
            return f"the update of {self.tensor}"
        if self.phase == "input":
            return "the input batch"
        return f"the {self.phase} pass, layer {self.layer}, {self.tensor}"


@dataclass(frozen=True)
class _Scan:
    nan: Location | None
    inf: Location | None
    first: tuple[str, Location] | None


@dataclass(frozen=True, eq=False)
class StepArrays:
    """References to what a full training step computed, in backend arrays.

    ``z``, ``a``, ``dL_da``, ``dL_dz``: per layer, (batch, units); ``grads``: the
    step's gradients; ``params``: the weights after its update; ``update``: the
    update record's arrays, ``<param>`` (the weights before the update) and
    ``<param>.change`` (the change added), read only when a ratio is asked for.
    """

    x: Array
    z: list[Array]
    a: list[Array]
    dL_da: list[Array]
    dL_dz: list[Array]
    grads: Mapping[str, Array]
    params: Mapping[str, Array]
    update: Mapping[str, Array]


class StepStatistics:
    """The state after one full training step, measured on demand.

    It is the environment breakpoint expressions are evaluated in
    (``value``, ``layer_value``, ``describe``).
    """

    def __init__(
        self,
        *,
        step: int,
        epoch: int,
        loss: float | None,
        metrics: Mapping[str, float],
        val_metrics: Mapping[str, float],
        layers: tuple[LayerSpec, ...],
        arrays: StepArrays,
        to_host: Callable[[Array], NDArray[Any]],
    ) -> None:
        self.step = step
        self.epoch = epoch
        self.loss = loss
        self.metrics = dict(metrics)
        self.val_metrics = dict(val_metrics)
        self.layers = layers
        self.arrays = arrays
        self.to_host = to_host
        self._index = {layer.name: i for i, layer in enumerate(layers)}
        self._cache: dict[tuple[str, str | None], float | None] = {}
        self._scan: _Scan | None = None

    @classmethod
    def capture(cls, dbg: Debugger, update: PhaseRecord) -> StepStatistics:
        """The statistics of the step ``dbg`` has just finished, whose update record is ``update``."""
        b = dbg.backend
        val: dict[str, float] = {}
        if dbg.epoch_history:
            last = dbg.epoch_history[-1]
            if last.val_loss is not None:
                val["val_loss"] = last.val_loss
                val.update({f"val_{k}": v for k, v in last.val_metrics.items()})
        arrays = StepArrays(
            x=b.x,
            z=list(b.z),
            a=list(b.a),
            dL_da=list(b.dL_da),
            dL_dz=list(b.dL_dz),
            grads=dict(b.grads),
            params=dict(b.params),
            update=update.arrays,
        )
        return cls(
            step=dbg.step_index,
            epoch=dbg.epoch,
            loss=dbg.loss,
            metrics=dbg.metrics,
            val_metrics=val,
            layers=dbg.scenario.layers,
            arrays=arrays,
            to_host=b.to_host,
        )

    # ---------------------------------------------------- expression environment
    def value(self, name: str) -> float | None:
        if name == "loss":
            return self.loss
        if name in ("step", "epoch"):
            return float(self.step if name == "step" else self.epoch)
        if name in ("nan", "inf"):
            return 1.0 if self.first(name) is not None else 0.0
        if name.startswith("val_"):
            return self.val_metrics.get(name)
        if name in ("grad_norm", "weight_norm", "update_ratio"):
            return self.layer_value(name, None)
        return self.metrics.get(name)

    def layer_value(self, function: str, layer: str | None) -> float | None:
        key = (function, layer)
        if key not in self._cache:
            self._cache[key] = self._measure(function, layer)
        return self._cache[key]

    def describe(self, name: str) -> str:
        where = self.first(name)
        if where is None:
            return f"no {name} in this step"
        return f"{'NaN' if name == 'nan' else 'Inf'} first appeared in {where.describe()}"

    # ------------------------------------------------------------- quantities
    def grad_norm(self, layer: str | None = None) -> float | None:
        return self.layer_value("grad_norm", layer)

    def weight_norm(self, layer: str | None = None) -> float | None:
        return self.layer_value("weight_norm", layer)

    def update_ratio(self, layer: str | None = None) -> float | None:
        return self.layer_value("update_ratio", layer)

    def dead_fraction(self, layer: str) -> float | None:
        return self.layer_value("dead_fraction", layer)

    def saturated_fraction(self, layer: str) -> float | None:
        return self.layer_value("saturated_fraction", layer)

    def symmetric(self, layer: str) -> bool:
        """True when every unit of ``layer`` has the same incoming weights and bias."""
        return self.layer_value("symmetric", layer) == 1.0

    def _param_names(self, layer: str | None) -> tuple[str, ...]:
        if layer is None:
            return tuple(name for spec in self.layers for name in spec.param_names)
        return self.layers[self._index[layer]].param_names

    def _norm(self, store: Mapping[str, Array], layer: str | None) -> float | None:
        names = [n for n in self._param_names(layer) if n in store]
        if not names:
            return None
        return math.sqrt(sum(sum_of_squares(store[n]) for n in names))

    def _measure(self, function: str, layer: str | None) -> float | None:
        arrays = self.arrays
        if function == "grad_norm":
            return self._norm(arrays.grads, layer)
        if function == "weight_norm":
            return self._norm(arrays.params, layer)
        if function == "update_ratio":
            names = self._param_names(layer)
            changes = {
                n: arrays.update[n + ".change"] for n in names if n + ".change" in arrays.update
            }
            olds = {n: arrays.update[n] for n in changes if n in arrays.update}
            change, old = self._norm(changes, layer), self._norm(olds, layer)
            if change is None or not old:
                return None  # undefined against all-zero weights
            return change / old
        if layer is None:
            return None
        spec = self.layers[self._index[layer]]
        if function == "dead_fraction":
            return self._dead_fraction(spec)
        if function == "saturated_fraction":
            return self._saturated_fraction(spec)
        if function == "symmetric":
            return 1.0 if self._symmetric(spec) else 0.0
        raise ValueError(f"unknown statistic {function!r}")

    def _activation(self, spec: LayerSpec) -> NDArray[Any] | None:
        a = self.arrays.a[self._index[spec.name]] if self.arrays.a else None
        return None if a is None else np.asarray(self.to_host(a))

    def _dead_fraction(self, spec: LayerSpec) -> float | None:
        """Share of relu units that are zero for every sample of the batch."""
        a = self._activation(spec) if spec.activation == "relu" else None
        if a is None or a.size == 0:
            return None
        alive = (a > 0).any(axis=0)
        return float(1.0 - alive.mean())

    def _saturated_fraction(self, spec: LayerSpec) -> float | None:
        """Share of the layer's sigmoid/tanh outputs (batch × units) where the slope is under 1% of its peak."""
        peak = _PEAK_SLOPE.get(spec.activation)
        a = self._activation(spec) if peak is not None else None
        if a is None or peak is None or a.size == 0:
            return None
        slope = a * (1.0 - a) if spec.activation == "sigmoid" else 1.0 - a * a
        return float((slope < SATURATED_SLOPE * peak).mean())

    def _symmetric(self, spec: LayerSpec) -> bool:
        params = self.arrays.params
        if spec.units < 2 or spec.param_names[0] not in params:
            return False
        pieces = [np.atleast_2d(self.to_host(params[n])) for n in spec.param_names]
        scale = max(max(float(p.max()), -float(p.min())) for p in pieces)
        limit = SYMMETRY_TOLERANCE * scale
        # Almost always the first row already differs; only then is every row compared.
        if not float(np.ptp(pieces[0][0])) <= limit:
            return False
        return all(float(np.abs(p - p[:, :1]).max()) <= limit for p in pieces)

    # ------------------------------------------------------------ NaN and Inf
    def first(self, kind: str) -> Location | None:
        """Where the first NaN (``kind="nan"``) or Inf (``"inf"``) of the step appeared."""
        scan = self._nonfinite()
        return scan.nan if kind == "nan" else scan.inf

    @property
    def nonfinite(self) -> tuple[str, Location] | None:
        """The kind (``"nan"`` or ``"inf"``) and place of the step's first non-finite value."""
        return self._nonfinite().first

    def _nonfinite(self) -> _Scan:
        if self._scan is None:
            self._scan = self._find_nonfinite()
        return self._scan

    def _tensors_in_order(self) -> Iterator[tuple[Location, Array]]:
        """Every tensor of the step in the order the step computed it."""
        arrays, layers = self.arrays, self.layers
        yield Location("input", None, "x"), arrays.x
        for i, spec in enumerate(layers):
            yield Location("forward", spec.name, "z"), arrays.z[i]
            yield Location("forward", spec.name, "a"), arrays.a[i]
        yield Location("loss", None, "loss"), self.loss
        yield Location("loss", layers[-1].name, "dL/da"), arrays.dL_da[-1]
        for i in reversed(range(len(layers))):
            spec = layers[i]
            yield Location("backward", spec.name, "dL/dz"), arrays.dL_dz[i]
            for name in spec.param_names:
                yield Location("backward", spec.name, f"{name} gradient"), arrays.grads.get(name)
            if i > 0:
                yield Location("backward", layers[i - 1].name, "dL/da"), arrays.dL_da[i - 1]
        for spec in layers:
            for name in spec.param_names:
                yield Location("update", spec.name, name), arrays.params.get(name)

    def _find_nonfinite(self) -> _Scan:
        # One sum of every tensor's sum first: finite only when every element is, and
        # on a GPU it costs one transfer instead of one per tensor.
        total: Any = 0.0
        for _, array in self._tensors_in_order():
            if array is not None:
                total = total + array.sum() if not isinstance(array, float) else total + array
        if math.isfinite(float(total)):
            return _Scan(None, None, None)
        nan: Location | None = None
        inf: Location | None = None
        first: tuple[str, Location] | None = None
        for location, array in self._tensors_in_order():
            if array is None:
                continue
            if isinstance(array, float):
                has_nan, has_inf = math.isnan(array), math.isinf(array)
            elif math.isfinite(float(array.sum())):
                continue  # a sum is finite only when every element is
            else:
                host = np.asarray(self.to_host(array))
                has_nan, has_inf = bool(np.isnan(host).any()), bool(np.isinf(host).any())
            if has_nan and nan is None:
                nan = location
            if has_inf and inf is None:
                inf = location
            if first is None and (has_nan or has_inf):
                first = ("nan" if has_nan else "inf", location)
            if nan is not None and inf is not None:
                break
        return _Scan(nan, inf, first)
