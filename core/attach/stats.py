"""Statistics of one step of an attached model, for the diagnostics and breakpoints.

:class:`~backprop_tui.core.watch.stats.StepStatistics` measures a scenario's
Dense layers; this subclass reads the same quantities off module calls: the
parameters are those ``named_parameters()`` names each layer owns, ``a`` is a
module's output, and NaN/Inf is searched in the order the step computed it,
naming the module, its class and the samples of the batch that carry it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..spec.types import InitSpec, LayerSpec
from ..watch.stats import Location, StepArrays, StepStatistics

__all__ = ["AttachedStatistics", "SampleLocation", "layer_spec"]

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
        param_names: Mapping[str, tuple[str, ...]],
        arrays: StepArrays,
        to_host: Callable[[Any], NDArray[Any]],
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
        names: dict[str | None, tuple[str, ...]] = {k: v for k, v in param_names.items()}
        names[None] = tuple(dict.fromkeys(n for group in param_names.values() for n in group))
        self._names = names

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
        pair = np.asarray(self.to_host(raw[:2, 0])).astype(np.float64)
        bounded = math.isfinite(squares) and squares >= 1e-30
        if bounded and abs(pair[0] - pair[1]) > 2e-6 * math.sqrt(squares):
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
        if self.loss is not None and not math.isfinite(self.loss):
            return False
        return super()._all_finite()
