"""Statistics of one step of an attached model, for the diagnostics and breakpoints.

:class:`~backprop_tui.core.watch.stats.StepStatistics` measures a scenario's
Dense layers; this subclass reads the same quantities off module calls: the
parameters are those ``named_parameters()`` names each layer owns, ``a`` is a
module's output, and NaN/Inf is searched in the order the step computed it,
naming the module, its class and the samples of the batch that carry it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from ..spec.types import InitSpec, LayerSpec
from ..watch.stats import Location, StepArrays, StepStatistics

__all__ = ["AttachedStatistics", "SampleLocation", "layer_spec", "names_by_layer", "square_sums"]

_NO_INIT = InitSpec("none")


def layer_spec(name: str, kind: str, activation: str | None, units: int) -> LayerSpec:
    """A stand-in :class:`LayerSpec` for a module call, as the diagnostics read one."""
    return LayerSpec(
        name=name,
        type=kind,
        inputs=0,
        units=units,
        activation=activation or kind.lower(),
        use_bias=False,
        kernel_initializer=_NO_INIT,
        bias_initializer=_NO_INIT,
    )


@dataclass(frozen=True)
class SampleLocation(Location):
    """Where a NaN or Inf first appeared, with the module's class and the samples."""

    kind: str = ""
    samples: tuple[int, ...] = ()

    def describe(self) -> str:
        if self.phase in ("forward", "backward") and self.layer is not None:
            module = f"module {self.layer}" + (f" ({self.kind})" if self.kind else "")
            text = f"the {self.phase} pass, {module}, {self.tensor}"
        else:
            text = super().describe()
        if self.samples:
            shown = ", ".join(str(s) for s in self.samples[:8])
            more = f" and {len(self.samples) - 8} more" if len(self.samples) > 8 else ""
            text += f", samples {shown}{more} of the batch"
        return text


def _measurable(array: Any) -> bool:
    """A dense floating-point tensor, which ``torch._foreach_norm`` takes."""
    return (
        isinstance(array, torch.Tensor) and array.dtype in _FLOATS and array.layout == torch.strided
    )


_BLAS = frozenset({torch.float32, torch.float64})
_BY_LAYER = frozenset({"grad_norm", "weight_norm", "update_ratio"})
_FLOATS = frozenset(
    {torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128}
)


def _on_blas(tensor: Any) -> bool:
    """A dense float32/float64 CPU tensor, whose Σ x² BLAS's dot takes on its own memory."""
    return (
        isinstance(tensor, torch.Tensor)
        and tensor.is_cpu  # not .device.type: that builds a string each time
        and tensor.dtype in _BLAS
        and tensor.layout == torch.strided
        and not tensor.is_neg()
    )


def square_sums(sums: dict[int, tuple[Any, float]], tensors: Iterable[Any]) -> None:
    """Σ x² of the :func:`_on_blas` tensors among ``tensors``, worked out now, into
    ``sums`` by id (beside the tensor, so that a reused id cannot match).

    Called where the tensors were just written (the gradients after backward, the
    parameters after the update), so they are read while still in the cache
    rather than in a separate pass over the whole model later. The rest are left
    to :meth:`AttachedStatistics._measure_all`. On the CPU BLAS's dot is two to three
    times quicker than torch's reduction on a big tensor, and as quick as one
    ``_foreach_norm`` (with its stack and transfer) on the small ones; the tests of
    :func:`_on_blas` are inlined, as a step measures some thirty tensors.
    """
    strided = torch.strided
    for t in tensors:
        if (
            isinstance(t, torch.Tensor)
            and t.is_cpu
            and t.dtype in _BLAS
            and t.layout == strided
            and not t.is_neg()
        ):
            flat = (t.detach() if t.requires_grad else t).numpy().ravel()
            sums[id(t)] = (t, float(flat.dot(flat)))


def names_by_layer(param_names: Mapping[Any, tuple[str, ...]]) -> dict[str | None, tuple[str, ...]]:
    """Each layer's parameter names, and under None every parameter's once: given that
    already (a run works it out once, not at every step), as it is."""
    if None in param_names and isinstance(param_names, dict):
        return param_names
    names: dict[str | None, tuple[str, ...]] = dict(param_names)
    names[None] = tuple(dict.fromkeys(n for group in param_names.values() for n in group))
    return names


def _samples(host: NDArray[Any]) -> tuple[int, ...]:
    if host.ndim == 0:
        return ()
    bad = ~np.isfinite(host.reshape(host.shape[0], -1)).all(axis=1)
    return tuple(int(i) for i in np.flatnonzero(bad))


class AttachedStatistics(StepStatistics):
    """A finished step of an attached model; ``layers`` are stand-in specs, one per layer.

    ``param_names`` gives each layer's parameter names; ``kinds`` each layer's
    module class; ``symmetric`` is measured for ``nn.Linear`` weights only.
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
        param_names: Mapping[Any, tuple[str, ...]],
        arrays: StepArrays,
        to_host: Callable[[Any], NDArray[Any]],
        previous: StepStatistics | None = None,
        known: Mapping[int, tuple[Any, float]] | None = None,
    ) -> None:
        super().__init__(
            step=step,
            epoch=epoch,
            loss=loss,
            metrics=metrics,
            val_metrics=val_metrics,
            layers=layers,
            arrays=arrays,
            to_host=to_host,
        )
        self._names = names_by_layer(param_names)
        self._measured_all = False
        self._finite = True
        if previous is not None:
            self._inherit(previous)
        if known:
            self._sums.update(known)

    # ------------------------------------------------------- every layer at once
    def _measure(self, function: str, layer: str | None) -> float | None:
        """A layer's norm or update ratio: the diagnostics ask for each one of every
        layer after every step, so the first question works out the answer for all
        layers in one loop over the sums, and the rest find theirs in the cache."""
        if layer is not None and function in _BY_LAYER:
            self._measure_layers(function)
            return self._cache[(function, layer)]
        return super()._measure(function, layer)

    def _measure_layers(self, function: str) -> None:
        """:meth:`StepStatistics._measure` of ``function`` for every layer, into the cache."""
        measure = {
            "grad_norm": self._grad_norm,
            "weight_norm": self._weight_norm,
            "update_ratio": self._update_ratio,
        }[function]
        for spec in self.layers:
            self._cache[(function, spec.name)] = measure(spec.name)

    # ------------------------------------------------ sums of squares, batched
    def _square_sum(self, array: Any) -> float:
        entry = self._sums.get(id(array))
        if entry is not None and entry[0] is array:
            return entry[1]
        if not self._measured_all:
            self._measure_all()
            return self._square_sum(array)
        return super()._square_sum(array)

    def _measure_all(self) -> None:
        """Σ x² of every tensor of the step at once: on the CPU BLAS's dot on each
        float tensor's memory; elsewhere a ``torch._foreach_norm`` and one transfer
        per device and dtype, instead of a reduction and a transfer per tensor.

        The diagnostics read all of them after every step (the NaN scan, each layer's
        gradient norm and update ratio), so measuring them together costs nothing
        that would not be spent anyway. The weights before the update were measured
        by the step before (``previous``), as its weights after. Whether every sum
        is finite, so every element (see :meth:`_all_finite`), is kept beside them.
        """
        self._measured_all = True
        arrays = self.arrays
        sums = self._sums
        groups: dict[tuple[torch.dtype, int], list[torch.Tensor]] = {}
        others: list[Any] = []  # sparse or integer tensors, arrays: not for _foreach_norm
        everything = (
            *arrays.a,
            *arrays.dL_da,
            *arrays.grads.values(),
            *arrays.params.values(),
            *arrays.update.values(),
        )
        # Most were measured where they were made; the outputs and their gradients not.
        square_sums(sums, [a for a in everything if sums.get(id(a), (None,))[0] is not a])
        finite = True
        isfinite = math.isfinite
        for array in everything:
            if array is None:
                continue
            entry = sums.get(id(array))
            if entry is not None and entry[0] is array:
                finite = finite and isfinite(entry[1])
                continue
            if not _measurable(array) or array.is_conj() or array.is_neg():
                others.append(array)
            else:
                groups.setdefault((array.dtype, array.get_device()), []).append(array)
        with torch.no_grad():
            for tensors in groups.values():
                norms = torch.stack(torch._foreach_norm(tensors)).double().tolist()
                for tensor, norm in zip(tensors, norms, strict=True):
                    square = norm * norm
                    sums[id(tensor)] = (tensor, square)
                    finite = finite and math.isfinite(square)
        for array in others:
            if isinstance(array, torch.Tensor):
                if array.is_floating_point() or array.is_complex():
                    finite = finite and math.isfinite(float(array.sum()))
            else:
                finite = finite and math.isfinite(super()._square_sum(array))
        self._finite = finite

    def _symmetric(self, spec: LayerSpec) -> bool:
        if spec.type != "Linear":
            return False
        names = self._names[spec.name]
        params = self.arrays.params
        if not names or names[0] not in params:
            return False
        raw = params[names[0]]
        if len(raw.shape) != 2 or raw.shape[0] < 2:
            return False
        # Rows are units: two first entries far apart (against a bound on every weight
        # from the sum of squares the norms use anyway) settle it without a full pass.
        squares = self._square_sum(raw)
        if _on_blas(raw):  # the two numbers read off the tensor's own memory
            host = (raw.detach() if raw.requires_grad else raw).numpy()
            first, second = float(host[0, 0]), float(host[1, 0])
        else:
            head = raw if raw.is_cpu else raw[:2, 0:1]  # two numbers cross, not all
            pair = np.asarray(self.to_host(head))[:2, 0].astype(np.float64)
            first, second = float(pair[0]), float(pair[1])
        bounded = math.isfinite(squares) and squares >= 1e-30
        if bounded and abs(first - second) > 2e-6 * math.sqrt(squares):
            return False
        weight = np.asarray(self.to_host(raw))
        scale = float(np.abs(weight).max()) if weight.size else 0.0
        limit = 1e-6 * scale
        return bool(np.abs(weight - weight[:1]).max() <= limit)

    def _tensors_in_order(self) -> Iterator[tuple[Location, Any]]:
        arrays, layers = self.arrays, self.layers
        for i, spec in enumerate(layers):
            yield self._at("forward", spec, "output"), arrays.a[i]
        yield Location("loss", None, "loss"), self.loss
        for i in reversed(range(len(layers))):
            spec = layers[i]
            yield self._at("backward", spec, "dL/d(output)"), arrays.dL_da[i]
            for name in self._names[spec.name]:
                yield self._at("backward", spec, f"{name} gradient"), arrays.grads.get(name)
        for spec in layers:
            for name in self._names[spec.name]:
                yield Location("update", spec.name, name), arrays.params.get(name)

    @staticmethod
    def _at(phase: str, spec: LayerSpec, tensor: str) -> Location:
        return SampleLocation(phase, spec.name, tensor, kind=spec.type)

    def _find_nonfinite(self) -> Any:
        scan = super()._find_nonfinite()
        return type(scan)(
            self._with_samples(scan.nan),
            self._with_samples(scan.inf),
            None if scan.first is None else (scan.first[0], self._with_samples(scan.first[1])),
        )

    def _with_samples(self, where: Location | None) -> Any:
        """``where`` with the samples of the batch that carry the bad value (forward only)."""
        if not isinstance(where, SampleLocation) or where.phase != "forward":
            return where
        index = [spec.name for spec in self.layers].index(where.layer or "")
        output = self.arrays.a[index]
        if output is None:
            return where
        host = np.asarray(self.to_host(output))
        return SampleLocation(
            where.phase, where.layer, where.tensor, kind=where.kind, samples=_samples(host)
        )

    def _all_finite(self) -> bool:
        """Every sum of squares finite (a NaN or Inf makes its sum so), from the batched
        sums: one pass over the step's tensors for the scan and the norms together."""
        if self.loss is not None and not math.isfinite(self.loss):
            return False
        if not self._measured_all:
            self._measure_all()
        return self._finite

    def _dead_fraction(self, spec: LayerSpec) -> float | None:
        """Share of a ReLU's units zero for every sample (and position): channels of an
        (N, C, H, W) output, else its last axis. Measured on the device, one number out."""
        if spec.activation != "relu":
            return None
        a = self.arrays.a[self._index[spec.name]] if self.arrays.a else None
        if not isinstance(a, torch.Tensor) or a.ndim < 2:
            return super()._dead_fraction(spec)
        if a.numel() == 0:
            return None
        if a.is_cpu:  # NumPy on the tensor's own memory: no dispatch per op
            host = (
                (a.detach() if a.requires_grad else a).numpy() if _on_blas(a) else self.to_host(a)
            )
            axes = (0, *range(2, a.ndim)) if a.ndim == 4 else tuple(range(a.ndim - 1))
            # A ReLU's output is never negative: a unit is alive where its largest is > 0.
            # (np.maximum.reduce is what ndarray.max calls, without its Python wrapper.)
            peak = np.maximum.reduce(host, axis=axes)
            return 1.0 - int(np.count_nonzero(peak > 0)) / int(peak.size)
        with torch.no_grad():
            positive = a > 0
            if a.ndim == 4:
                alive = positive.transpose(0, 1).reshape(a.shape[1], -1).any(dim=1)
            else:
                alive = positive.reshape(-1, a.shape[-1]).any(dim=0)
            return 1.0 - float(alive.sum()) / alive.numel()
