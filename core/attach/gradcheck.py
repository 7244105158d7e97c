"""Gradient check of an attached model: autograd against central differences, in float64.

It works on a float64 copy of the model with ``torch.func.functional_call``,
never on the user's model, at the current weights and the current (or next)
batch. Every loss evaluation starts from the same random seed, so dropout
draws the same masks each time and the differences see one function.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.func import functional_call

from ..errors import NotPossible
from ..run.gradcheck import FLOOR, TOLERANCE, GradCheckResult, ParamCheck
from .batches import call_model, check_loss, loss_of

if TYPE_CHECKING:
    from .run import AttachedRun

__all__ = ["check_attached"]


def _double(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.double() if value.is_floating_point() else value
    if isinstance(value, tuple):
        return tuple(_double(v) for v in value)
    if isinstance(value, list):
        return [_double(v) for v in value]
    if isinstance(value, dict):
        return {k: _double(v) for k, v in value.items()}
    return value


def check_attached(
    run: AttachedRun,
    layer: str | None = None,
    sample: int = 32,
    eps: float = 1e-6,
    seed: int = 0,
    tolerance: float = TOLERANCE,
) -> GradCheckResult:
    """Check the gradients of ``layer``'s parameters (all of them when None)."""
    names = run.layer_names
    if layer is not None and layer not in names:
        raise ValueError(f"no layer named '{layer}'; the layers are {', '.join(names)}")
    entry = run.state.entry if run.phase != "update" else None
    entry = entry or run._entry
    if entry is None:
        raise NotPossible("no batch to check the gradients on: training is finished")
    model = copy.deepcopy(run.model).double()
    batch = _double(entry.batch)
    loss_fn = run.loss_fn
    with_fn = loss_fn is not None
    chosen = [v for v in run.layers if layer is None or v.name == layer]
    wanted = list(dict.fromkeys(n for v in chosen for n in v.param_names))
    base = {k: v.detach() for k, v in model.named_parameters()}
    base.update({k: v.detach() for k, v in model.named_buffers()})

    def loss_at(params: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            wrapper = _Call(model, params, loss_fn)
            output, y = call_model(wrapper, batch, with_fn)  # type: ignore[arg-type]
            if loss_fn is None:
                return loss_of(output)
            return check_loss(loss_fn(output, _double(y)))

    leaves = {k: v.clone().requires_grad_(k in wanted) for k, v in base.items()}
    loss = loss_at(leaves)
    grads = torch.autograd.grad(loss, [leaves[n] for n in wanted], allow_unused=True)
    analytic_of = {
        n: (g if g is not None else torch.zeros_like(leaves[n])).detach().numpy()
        for n, g in zip(wanted, grads, strict=True)
    }
    loss_value = float(loss.detach())
    floor = FLOOR * max(1.0, abs(loss_value))
    rng = np.random.default_rng([seed, 3])
    checks = []
    with torch.no_grad():
        for name in wanted:
            checks.append(
                _check(name, base, analytic_of[name], loss_at, sample, eps, floor, tolerance, rng)
            )
    return GradCheckResult(
        params=tuple(checks),
        loss=loss_value,
        step_index=run.step_index,
        batch_size=entry.batch_len,
        eps=eps,
        tolerance=tolerance,
        floor=floor,
    )


class _Call:
    """Calls ``model`` with ``params`` in place of its own, as ``model(...)`` would."""

    def __init__(self, model: torch.nn.Module, params: dict[str, torch.Tensor], loss_fn: Any):
        self.model, self.params = model, params

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return functional_call(self.model, self.params, args, kwargs)


def _check(
    name: str,
    base: dict[str, torch.Tensor],
    analytic: np.ndarray[Any, Any],
    loss_at: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    sample: int,
    eps: float,
    floor: float,
    tolerance: float,
    rng: np.random.Generator,
) -> ParamCheck:
    shape = analytic.shape
    size = analytic.size
    flat = np.arange(size) if size <= sample else np.sort(rng.choice(size, sample, replace=False))
    rows = np.stack(np.unravel_index(flat, shape), axis=1).astype(np.int64)
    numeric = np.empty(len(flat))
    for row, index_array in enumerate(rows):
        index = tuple(int(i) for i in index_array)
        values = []
        for delta in (eps, -eps):
            nudged = base[name].clone()
            nudged[index] += delta
            values.append(float(loss_at({**base, name: nudged})))
        numeric[row] = (values[0] - values[1]) / (2.0 * eps)
    picked = analytic.reshape(-1)[flat].astype(np.float64)
    scale = np.maximum(np.maximum(np.abs(picked), np.abs(numeric)), floor)
    error = np.abs(picked - numeric) / scale
    error = np.where(np.isfinite(error), error, np.inf)
    return ParamCheck(
        name=name,
        shape=tuple(int(n) for n in shape),
        indices=rows,
        analytic=picked,
        numeric=numeric,
        error=error,
        kinked=np.zeros(len(flat), dtype=bool),
        tolerance=tolerance,
    )
