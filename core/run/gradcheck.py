"""Gradient check: backprop's gradients against central finite differences, in float64.

The check never touches the debugger's own state. It copies the current
parameters to float64 and takes the current batch. The analytic gradient comes
from the run's own backend — a twin of it in float64 on the same device, so
``--backend torch`` checks torch's autograd, not the NumPy reference — and the
numeric one from the NumPy reference, for each checked entry two forward
passes with the entry nudged by ``±eps``:

    numeric = (L(w + eps) − L(w − eps)) / (2·eps)

Big parameters are checked on a random sample of entries. The error of one
entry is ``|analytic − numeric| / max(|analytic|, |numeric|, floor)``: relative
for ordinary gradients, absolute (in units of ``floor``) for gradients so small
that the rounding in the loss — about 1e-16 of it, divided by ``2·eps`` —
swamps them. An entry whose nudge moves a ReLU-like unit across its kink at 0,
or a mean-absolute-error residual across 0, has no derivative there to agree
with; it is counted as ``kinked`` and left out of the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..backends import Backend, make_backend
from ..backends.numpy_backend import NumpyBackend
from ..layers import draw_masks
from ..maths import losses
from .loop import epoch_order

if TYPE_CHECKING:
    from ..spec.scenario import Scenario
    from .debugger import Debugger

F64 = NDArray[np.float64]

TOLERANCE = 1e-6
# Below this magnitude (per unit of loss) a gradient is judged by its absolute error.
FLOOR = 1e-3
# Activations whose derivative jumps at z = 0.
KINKED_ACTIVATIONS = frozenset({"relu", "leaky_relu", "elu"})


@dataclass(frozen=True, eq=False)
class ParamCheck:
    """The check of one parameter.

    indices: (checked, ndim) — the entries checked; analytic, numeric,
    error: (checked,); kinked: (checked,) — entries left out of the verdict.
    """

    name: str
    shape: tuple[int, ...]
    indices: NDArray[np.int64]
    analytic: F64
    numeric: F64
    error: F64
    kinked: NDArray[np.bool_]
    tolerance: float

    @property
    def checked(self) -> int:
        return len(self.indices)

    @property
    def total(self) -> int:
        return int(np.prod(self.shape))

    @property
    def judged(self) -> F64:
        return self.error[~self.kinked]

    @property
    def max_error(self) -> float:
        judged = self.judged
        return float(judged.max()) if judged.size else 0.0

    @property
    def mean_error(self) -> float:
        judged = self.judged
        return float(judged.mean()) if judged.size else 0.0

    @property
    def worst(self) -> tuple[int, ...] | None:
        """The index of the judged entry with the largest error."""
        if not self.judged.size:
            return None
        errors = np.where(self.kinked, -1.0, self.error)
        return tuple(int(i) for i in self.indices[int(np.argmax(errors))])

    @property
    def passed(self) -> bool:
        # NaN compares false, so a NaN error fails
        return bool(np.all(self.judged < self.tolerance))


@dataclass(frozen=True, eq=False)
class GradCheckResult:
    """The check of every chosen parameter, on one batch at one set of weights."""

    params: tuple[ParamCheck, ...]
    loss: float
    step_index: int
    batch_size: int
    eps: float
    tolerance: float
    floor: float
    source: str = ""  # what computed the analytic gradients: "numpy cpu", "torch cuda:0", …

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.params)

    @property
    def max_error(self) -> float:
        return max((p.max_error for p in self.params), default=0.0)

    def table(self) -> list[str]:
        """The result as lines of text: one row per parameter, then the verdict."""
        lines = [
            f"{'parameter':<22}{'checked':>15}{'max rel err':>13}{'mean rel err':>14}  worst at"
        ]
        for p in self.params:
            count = f"{p.checked}/{p.total}"
            worst = "" if p.worst is None else "[" + ", ".join(map(str, p.worst)) + "]"
            mark = "ok" if p.passed else "FAIL"
            kinks = f"  ({int(p.kinked.sum())} at a kink)" if p.kinked.any() else ""
            lines.append(
                f"{p.name:<22}{count:>15}{p.max_error:>13.2e}{p.mean_error:>14.2e}"
                f"  {worst:<10} {mark}{kinks}"
            )
        verdict = "passed" if self.passed else "FAILED"
        backprop = f"backprop by {self.source}, " if self.source else ""
        lines.append(
            f"gradient check {verdict}: largest relative error {self.max_error:.2e} "
            f"(tolerance {self.tolerance:g}, eps {self.eps:g}, float64, {backprop}"
            f"batch of {self.batch_size} at step {self.step_index + 1})"
        )
        return lines


def current_batch(dbg: Debugger) -> NDArray[np.int64]:
    """Sample indices of the batch of the step the debugger is in, or is about to start."""
    first = dbg.records[0] if dbg.records else None
    if dbg.phase != "update" and first is not None and first.phase == "input":
        return np.asarray(first.arrays["indices"], dtype=np.int64)
    size = dbg.scenario.training.batch_size
    start = dbg.batch_in_epoch * size
    return epoch_order(dbg.scenario, dbg.epoch)[start : start + size]


class _Probe:
    """A float64 NumPy backend on one batch: the loss, its kink pattern and the gradients."""

    def __init__(
        self,
        scenario: Scenario,
        params: dict[str, F64],
        x: F64,
        y: F64,
        masks: dict[int, NDArray[Any]] | None = None,
    ) -> None:
        self.scenario = scenario
        self.params = params
        self.backend = NumpyBackend(scenario, params, "float64")
        self.x, self.y = x, y
        self.masks = masks or {}  # dropout's, held fixed: the loss must be one function
        n = len(scenario.layers)
        self.watched = [i for i in range(n) if scenario.layers[i].activation in KINKED_ACTIVATIONS]
        self.pooled = [i for i in range(n) if scenario.layers[i].type == "max_pooling2d"]
        self.mae = losses.canonical(scenario.loss) == "mean_absolute_error"

    def _forward(self, params: dict[str, F64]) -> float:
        b = self.backend
        b.set_params(params)
        b.begin(self.x, self.y, self.masks)
        for i in range(len(self.scenario.layers)):
            b.forward_layer(i)
        return b.compute_loss()

    def _kinks(self) -> list[NDArray[np.bool_]]:
        b = self.backend
        signs = [np.asarray(b.z[i]) > 0 for i in self.watched]
        # Max pooling's winner changing inside a window is a kink too.
        signs.extend(np.asarray(b.kinks(i)) for i in self.pooled)
        if self.mae:
            signs.append(np.asarray(b.a[-1]) > self.y)
        return signs

    def loss(self) -> float:
        return self._forward(self.params)

    def nudged(self, name: str, index: tuple[int, ...], delta: float) -> tuple[float, list[Any]]:
        value = self.params[name].copy()
        value[index] += delta
        loss = self._forward({**self.params, name: value})
        return loss, self._kinks()


def gradient_check(
    dbg: Debugger,
    layer: str | None = None,
    sample: int = 64,
    eps: float = 1e-6,
    seed: int = 0,
    tolerance: float = TOLERANCE,
) -> GradCheckResult:
    """Check backprop against central differences at the debugger's weights and batch.

    ``layer`` limits the check to one layer's parameters; parameters with more
    than ``sample`` entries are checked on ``sample`` of them, drawn with ``seed``.
    Raises ValueError for an unknown layer or a bad ``sample``/``eps``.
    """
    scenario = dbg.scenario
    names = [layer_spec.name for layer_spec in scenario.layers]
    if layer is not None and layer not in names:
        raise ValueError(f"no layer named '{layer}'; the layers are {', '.join(names)}")
    if sample < 1:
        raise ValueError(f"sample must be at least 1, got {sample}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    params = {k: np.array(v, dtype=np.float64) for k, v in dbg.params.items()}
    indices = current_batch(dbg)
    data = scenario.data
    x, y = data.x_train[indices], data.y_train[indices]
    masks = draw_masks(scenario, dbg.step_index, len(indices))  # this step's, held fixed
    probe = _Probe(scenario, params, x, y, masks)
    loss = probe.loss()
    grads = backprop(twin_of(dbg.backend, scenario, params), x, y, masks)
    floor = FLOOR * max(1.0, abs(loss))
    rng = np.random.default_rng([seed, 3])
    chosen = [
        spec
        for spec in scenario.layers
        if layer is None or spec.name == layer  # keep layer order
    ]
    checks = []
    for spec in chosen:
        for name in spec.param_names:
            checks.append(
                _check_param(probe, name, grads[name], sample, eps, floor, tolerance, rng)
            )
    return GradCheckResult(
        params=tuple(checks),
        loss=loss,
        step_index=dbg.step_index,
        batch_size=len(indices),
        eps=eps,
        tolerance=tolerance,
        floor=floor,
        source=f"{dbg.backend.name} {dbg.backend.device}",
    )


def twin_of(backend: Backend, scenario: Scenario, params: dict[str, F64]) -> Backend:
    """A backend of ``backend``'s kind on its device, in float64, holding ``params``."""
    return make_backend(backend.name, scenario, params, "float64", backend.device)


def backprop(
    backend: Backend, x: F64, y: F64, masks: dict[int, NDArray[Any]] | None = None
) -> dict[str, F64]:
    """The gradients ``backend`` computes for the batch (x, y) with dropout's ``masks``,
    as float64 host arrays."""
    backend.begin(x, y, masks)
    layers = len(backend.z_slots())
    for i in range(layers):
        backend.forward_layer(i)
    backend.compute_loss()
    for i in reversed(range(layers)):
        backend.backward_layer(i)
    return {k: np.asarray(backend.to_host(v), dtype=np.float64) for k, v in backend.grads.items()}


def _check_param(
    probe: _Probe,
    name: str,
    grad: F64,
    sample: int,
    eps: float,
    floor: float,
    tolerance: float,
    rng: np.random.Generator,
) -> ParamCheck:
    shape = grad.shape
    size = grad.size
    flat = np.arange(size) if size <= sample else np.sort(rng.choice(size, sample, replace=False))
    index_rows = np.stack(np.unravel_index(flat, shape), axis=1).astype(np.int64)
    numeric = np.empty(len(flat))
    kinked = np.zeros(len(flat), dtype=bool)
    for row, index_array in enumerate(index_rows):
        index = tuple(int(i) for i in index_array)
        up, up_signs = probe.nudged(name, index, eps)
        down, down_signs = probe.nudged(name, index, -eps)
        numeric[row] = (up - down) / (2.0 * eps)
        kinked[row] = any(
            not np.array_equal(u, d) for u, d in zip(up_signs, down_signs, strict=True)
        )
    analytic = grad.reshape(-1)[flat].astype(np.float64)
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    error = np.abs(analytic - numeric) / scale
    error = np.where(np.isfinite(error), error, np.inf)
    return ParamCheck(
        name=name,
        shape=tuple(shape),
        indices=index_rows,
        analytic=analytic,
        numeric=numeric,
        error=error,
        kinked=kinked,
        tolerance=tolerance,
    )
