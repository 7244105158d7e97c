"""The update an optimizer is about to apply, worked out on a copy before it is applied.

``optimizer.step()`` of an arbitrary ``torch.optim`` optimizer is known only by
running it, so the pending update runs it on a deep copy: copies of the
parameters holding this step's (clipped) gradients, and a copy of the
optimizer's state. The user's model and optimizer are not touched; the
numbers are those the real step then applies, bit for bit on the CPU.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from .views import state_terms

__all__ = ["pending_update"]


def pending_update(
    optimizer: torch.optim.Optimizer,
    params: Mapping[str, nn.Parameter],
    grads: Mapping[str, torch.Tensor],
    clip_factor: float | None,
) -> dict[str, Any] | None:
    """The update table's arrays of the step about to be taken (no ``.new``), or None
    when the optimizer cannot be stepped on a copy (it needs a closure, say)."""
    memo: dict[int, Any] = {}
    shadows: dict[str, nn.Parameter] = {}
    for name, p in params.items():
        shadow = nn.Parameter(p.detach().clone(), requires_grad=p.requires_grad)
        if p.grad is not None:
            shadow.grad = p.grad.detach().clone()
        memo[id(p)] = shadow
        shadows[name] = shadow
    lr_of = {id(p): float(g["lr"]) for g in optimizer.param_groups for p in g["params"]}
    try:
        twin = copy.deepcopy(optimizer, memo)
        with torch.no_grad():
            type(twin).step(twin)
    except Exception:  # an optimizer that needs a closure (LBFGS) or cannot be copied
        return None
    arrays: dict[str, Any] = {}
    for name, p in params.items():
        shadow = shadows[name]
        old = p.detach().clone()
        shape = tuple(p.shape)
        arrays[name] = old
        arrays[f"{name}.grad"] = grads.get(name, torch.zeros_like(old))
        arrays[f"{name}.change"] = shadow.detach() - old
        for term, value in state_terms(twin.state, shadow).items():
            arrays[f"{name}.{term}"] = value
        arrays[f"{name}.lr"] = np.broadcast_to(np.float64(lr_of.get(id(p), 0.0)), shape)
        if clip_factor is not None:
            arrays[f"{name}.clip"] = np.broadcast_to(np.float64(clip_factor), shape)
    return arrays
