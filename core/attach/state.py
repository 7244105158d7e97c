"""What one step of an attached run holds while it is in progress, and its statistics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..watch.stats import StepArrays, StepStatistics
from .batches import Entry, batch_x, to_host
from .hooks import Call
from .stats import AttachedStatistics

if TYPE_CHECKING:
    from .run import AttachedRun

__all__ = ["StepState", "edit_text", "finish_statistics"]


@dataclass(eq=False)
class StepState:
    """The step in progress: its batch, what the forward pass produced, the loss and
    the gradients (before clipping), and the clipping applied."""

    entry: Entry | None = None
    output: Any = None
    y: Any = None
    calls: list[Call | None] = field(default_factory=list)
    loss_tensor: torch.Tensor | None = None
    loss: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    grads: dict[str, torch.Tensor] = field(default_factory=dict)
    grad_norm: float | None = None
    clip_factor: float = 1.0
    # Σ x² of tensors measured where they were made (see stats.square_sums), by id
    sums: dict[int, tuple[Any, float]] = field(default_factory=dict)


def edit_text(param: str, index: tuple[int, ...], old: float, new: float) -> str:
    where = ", ".join(str(i) for i in index)
    return f"{param}[{where}]: {old:.6g} → {new:.6g}"


def finish_statistics(
    run: AttachedRun,
    state: StepState,
    loss: float | None,
    params: Mapping[str, torch.Tensor],
    measured: Mapping[str, torch.Tensor],
    previous: StepStatistics | None,
) -> AttachedStatistics:
    """The statistics of the step ``state`` describes, its update just applied; ``loss``
    is the one breakpoints read (over every rank, under DDP). ``previous``: the last
    step's, whose parameters after its update are this step's before it."""
    outputs = [c.output if c is not None else None for c in state.calls]
    grads_out = [c.grad if c is not None else None for c in state.calls]
    x = batch_x(state.entry.batch, run.loss_fn is not None) if state.entry is not None else None
    # A module's output is both its z and its a, and dL/d(output) both dL/da and dL/dz:
    # each is listed once, so the NaN scan sums it once.
    arrays = StepArrays(
        x=x,
        z=[],
        a=outputs,
        dL_da=grads_out,
        dL_dz=[],
        grads=dict(state.grads),
        params=dict(params),
        update=dict(measured),
    )
    return AttachedStatistics(
        step=run.step_index + 1,
        epoch=(state.entry.epoch + 1) if state.entry is not None else run.epoch + 1,
        loss=loss,
        metrics=state.metrics,
        val_metrics={},
        layers=run.layer_specs,
        param_names=run.stat_names,
        arrays=arrays,
        to_host=to_host,
        previous=previous,
        known=state.sums,
    )
