"""What one finished training step measured: norms, ratios, dead and saturated units, NaN/Inf.

A :class:`StepStatistics` holds references to the step's arrays (the backend
replaces arrays rather than writing into them, so they stay as they were) and
measures each quantity the first time it is asked for, then keeps the number.
Diagnostics and breakpoint expressions read the same object, so nothing is
computed twice and nothing is computed that no one reads.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..records import EpochStats
from ..spec.scenario import LayerSpec

if TYPE_CHECKING:
    from ..backends import Backend

Array = Any  # a NumPy array or a backend's tensor
_UNMEASURED: Any = object()
SATURATED_SLOPE = 0.01  # a unit is saturated where f'(z) is under 1% of its peak
SYMMETRY_TOLERANCE = 1e-6  # relative spread under which units count as identical
_PEAK_SLOPE = {"sigmoid": 0.25, "tanh": 1.0}


def sum_of_squares(array: Array) -> float:
    """Σ x² of a NumPy array or a tensor, without copying it to the host.

    A dot product of the flattened array with itself: one pass, no temporary the
    size of the array. The sum is finite only when every element is (a NaN stays
    NaN, an Inf squares to Inf), so a finite one also vouches for the array.
    """
    flat = array.ravel() if isinstance(array, np.ndarray) else array.reshape(-1)
    return float(flat.dot(flat))


@functools.lru_cache(maxsize=8)
def _layout(
    layers: tuple[LayerSpec, ...],
) -> tuple[dict[str, int], dict[str | None, tuple[str, ...]]]:
    """Each layer's position, and the parameter names per layer (None: all of them)."""
    index = {layer.name: i for i, layer in enumerate(layers)}
    names: dict[str | None, tuple[str, ...]] = {layer.name: layer.param_names for layer in layers}
    names[None] = tuple(name for layer in layers for name in layer.param_names)
    return index, names


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
    step's gradients; ``params``: the weights after its update; ``update``: per
    parameter ``<param>`` (the weights before the update) and ``<param>.change``
    (the change added), backend arrays read only when a ratio is asked for.
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
        self._index, self._names = _layout(layers)
        self._cache: dict[tuple[str, str | None], float | None] = {}
        self._scan: _Scan | None = None
        # Σ x² per array, by identity: the NaN scan, the norms and the symmetry test
        # share them. The array is kept beside its sum so a reused id cannot match.
        self._sums: dict[int, tuple[Array, float]] = {}

    @classmethod
    def capture(
        cls,
        backend: Backend,
        *,
        step: int,
        epoch: int,
        loss: float | None,
        metrics: Mapping[str, float],
        last_epoch: EpochStats | None,
        layers: tuple[LayerSpec, ...],
        update: Mapping[str, Array],
        previous: StepStatistics | None = None,
    ) -> StepStatistics:
        """The statistics of the step ``backend`` has just finished.

        ``update``: per parameter the weights before the update (``<param>``) and
        the change (``<param>.change``), backend arrays. ``last_epoch``: the newest
        finished epoch, whose validation figures breakpoints may read.
        ``previous``: the step before's statistics, whose weights after its update
        are this step's weights before it (the same arrays, never written in
        place), so their sums of squares are not worked out again.
        """
        b = backend
        val: dict[str, float] = {}
        if last_epoch is not None and last_epoch.val_loss is not None:
            val["val_loss"] = last_epoch.val_loss
            val.update({f"val_{k}": v for k, v in last_epoch.val_metrics.items()})
        arrays = StepArrays(
            x=b.x,
            z=list(b.z),
            a=list(b.a),
            dL_da=list(b.dL_da),
            dL_dz=list(b.dL_dz),
            grads=dict(b.grads),
            params=dict(b.params),
            update=update,
        )
        stats = cls(
            step=step,
            epoch=epoch,
            loss=loss,
            metrics=metrics,
            val_metrics=val,
            layers=layers,
            arrays=arrays,
            to_host=b.to_host,
        )
        if previous is not None:
            stats._inherit(previous)
        return stats

    def _inherit(self, previous: StepStatistics) -> None:
        """Take ``previous``'s sums of squares of the arrays that are this step's old weights."""
        known = previous._sums
        if not known:
            return
        for old in self.arrays.update.values():
            entry = known.get(id(old))
            if entry is not None and entry[0] is old:
                self._sums[id(old)] = entry

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
        value: float | None = self._cache.get(key, _UNMEASURED)
        if value is _UNMEASURED:
            value = self._cache[key] = self._measure(function, layer)
        return value

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

    def _norm(self, store: Mapping[str, Array], layer: str | None) -> float | None:
        total, found = 0.0, False
        for name in self._names[layer]:
            if name in store:
                total += self._square_sum(store[name])
                found = True
        return math.sqrt(total) if found else None

    def _square_sum(self, array: Array) -> float:
        """Σ x² of one of the step's arrays, worked out once."""
        entry = self._sums.get(id(array))
        if entry is not None and entry[0] is array:
            return entry[1]
        if isinstance(array, np.ndarray):  # sum_of_squares, inlined: this is called often
            flat = array.ravel()
            total = float(flat.dot(flat))
        else:
            total = sum_of_squares(array)
        self._sums[id(array)] = (array, total)
        return total

    def _measure(self, function: str, layer: str | None) -> float | None:
        method = _MEASURES.get(function)
        if method is None:
            raise ValueError(f"unknown statistic {function!r}")
        measure: Callable[[Any], float | None] = getattr(self, method)  # as a subclass has it
        if function in _WHOLE_NETWORK:
            return measure(layer)
        return None if layer is None else measure(self.layers[self._index[layer]])

    def _grad_norm(self, layer: str | None) -> float | None:
        return self._norm(self.arrays.grads, layer)

    def _weight_norm(self, layer: str | None) -> float | None:
        return self._norm(self.arrays.params, layer)

    def _update_ratio(self, layer: str | None) -> float | None:
        update = self.arrays.update
        changed, change, old = False, 0.0, 0.0
        for name in self._names[layer]:
            moved = update.get(name + ".change")
            if moved is not None:
                changed = True
                change += self._square_sum(moved)
                before = update.get(name)
                if before is not None:
                    old += self._square_sum(before)
        if not changed or not old:
            return None  # undefined against all-zero weights
        return math.sqrt(change) / math.sqrt(old)

    def _activation(self, spec: LayerSpec) -> NDArray[Any] | None:
        a = self.arrays.a[self._index[spec.name]] if self.arrays.a else None
        return None if a is None else np.asarray(self.to_host(a))

    def _dead_fraction(self, spec: LayerSpec) -> float | None:
        """Share of relu units that are zero for every sample of the batch; for a
        conv2d layer, of its filters zero at every sample and position."""
        a = self._activation(spec) if spec.activation == "relu" else None
        if a is None or a.size == 0:
            return None
        # A unit is alive where its largest output is above zero. fmax passes NaN
        # over, as a unit's NaN outputs are not above zero either; one reduction
        # over the batch (and positions) instead of a comparison of every output.
        axis = 0 if a.ndim == 2 else tuple(range(a.ndim - 1))  # (batch,) or (batch, H, W)
        largest: NDArray[Any] = np.fmax.reduce(a, axis=axis)
        return 1.0 - int(np.count_nonzero(largest > 0)) / largest.size

    def _symmetric_figure(self, spec: LayerSpec) -> float:
        return 1.0 if self._symmetric(spec) else 0.0

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
        if not spec.has_kernel or spec.units < 2 or spec.param_names[0] not in params:
            return False
        if self._surely_asymmetric([params[n] for n in spec.param_names]):
            return False
        # A conv2d kernel (kh, kw, in, filters) as kh·kw·in rows, one column per filter.
        pieces = [
            np.atleast_2d(self.to_host(params[n])).reshape(-1, spec.units) for n in spec.param_names
        ]
        scale = max(max(float(p.max()), -float(p.min())) for p in pieces)
        limit = SYMMETRY_TOLERANCE * scale
        # Almost always the first row already differs; only then is every row compared.
        if not float(np.ptp(pieces[0][0])) <= limit:
            return False
        return all(float(np.abs(p - p[:, :1]).max()) <= limit for p in pieces)

    def _surely_asymmetric(self, arrays: list[Array]) -> bool:
        """True when the first two weights of the kernel alone prove the units differ.

        The exact test compares spreads with SYMMETRY_TOLERANCE times the largest
        |weight|, a pass over every weight. The norm of the layer's parameters
        (from sums of squares the NaN scan has worked out already) bounds that
        |weight|, and the gap between the first row's first two weights is at most
        that row's spread, so a gap wider than the tolerance times twice the bound
        (room for rounding) settles it without the pass.
        """
        kernel = arrays[0]
        if len(kernel.shape) != 2:
            return False
        if isinstance(kernel, np.ndarray):  # the first row's first two, in C order
            gap = abs(float(kernel.item(0)) - float(kernel.item(1)))
        else:
            pair: list[float] = self.to_host(kernel[0, :2]).tolist()
            gap = abs(pair[0] - pair[1])  # at most the first row's spread
        squares = 0.0
        for array in arrays:
            squares += self._square_sum(array)
        # Squares under 1e-30 may have underflowed, and then no longer bound anything.
        if not (math.isfinite(squares) and squares >= 1e-30):
            return False
        return gap > 2.0 * SYMMETRY_TOLERANCE * math.sqrt(squares)

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

    def _all_finite(self) -> bool:
        """Whether every tensor of the step is finite, False when in doubt (an overflowed sum).

        NumPy arrays: their sums of squares, one BLAS pass each; those of the
        gradients and weights are kept for the norms, the symmetry test and the
        next step's update ratios. Tensors: one sum of every tensor's sum, which
        on a GPU costs one transfer instead of one per tensor. Either sum is
        finite only when every element is.
        """
        arrays = self.arrays
        if self.loss is not None and not math.isfinite(self.loss):
            return False
        device_total: Any = 0.0
        # Only whether these are finite matters, so their sums are not kept. The
        # batch itself is not scanned: the data was checked finite when it loaded.
        for array in (*arrays.z, *arrays.a, *arrays.dL_da, *arrays.dL_dz):
            if isinstance(array, np.ndarray):
                flat = array.ravel()
                if not math.isfinite(flat.dot(flat)):
                    return False
            elif array is not None:
                device_total = device_total + array.sum()
        # The norms and the next step's update ratios read these sums again.
        for array in (*arrays.grads.values(), *arrays.params.values()):
            if isinstance(array, np.ndarray):
                if not math.isfinite(self._square_sum(array)):
                    return False
            elif array is not None:
                device_total = device_total + array.sum()
        return math.isfinite(float(device_total))

    def _find_nonfinite(self) -> _Scan:
        # The quick test covers every tensor the ordered search below visits but the
        # batch, which loaded finite.
        if self._all_finite():
            return _Scan(None, None, None)
        nan: Location | None = None
        inf: Location | None = None
        first: tuple[str, Location] | None = None
        for location, array in self._tensors_in_order():
            if array is None:
                continue
            if isinstance(array, float):
                has_nan, has_inf = math.isnan(array), math.isinf(array)
            elif isinstance(array, np.ndarray) and math.isfinite(self._square_sum(array)):
                continue  # a sum of squares is finite only when every element is
            elif not isinstance(array, np.ndarray) and math.isfinite(float(array.sum())):
                continue
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


# The figures StepStatistics measures, by the name layer_value takes, and the method
# that measures each: those of the whole network (layer None) take a layer's name,
# the others its spec.
_MEASURES = {
    "grad_norm": "_grad_norm",
    "weight_norm": "_weight_norm",
    "update_ratio": "_update_ratio",
    "dead_fraction": "_dead_fraction",
    "saturated_fraction": "_saturated_fraction",
    "symmetric": "_symmetric_figure",
}
_WHOLE_NETWORK = frozenset({"grad_norm", "weight_norm", "update_ratio"})
