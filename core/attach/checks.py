"""What ``attach`` refuses, each with one sentence that says how to fix it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from .errors import AttachError

__all__ = ["check_inputs"]


def check_inputs(
    model: Any,
    loss_fn: Any,
    optimizer: Any,
    data: Iterable[Any],
    epochs: int,
    scheduler: Any,
    clip_grad_norm: float | None,
) -> None:
    if isinstance(model, torch.jit.ScriptModule):
        raise AttachError(
            "model is a TorchScript module, whose calls hooks cannot follow; "
            "pass the original nn.Module instead"
        )
    if hasattr(model, "_orig_mod") or type(model).__name__ == "OptimizedModule":
        raise AttachError(
            "model was compiled with torch.compile, whose calls hooks cannot follow; "
            "pass the model before compiling it"
        )
    if not isinstance(model, nn.Module):
        raise AttachError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    params = list(model.parameters())
    if not params:
        raise AttachError(f"model ({type(model).__name__}) has no parameters to train")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise AttachError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )
    own = {id(p) for p in params}
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) not in own:
                raise AttachError(
                    "optimizer holds parameters that are not the model's; build it from "
                    "model.parameters()"
                )
    if loss_fn is not None and not callable(loss_fn):
        raise AttachError(f"loss_fn must be callable or None, got {type(loss_fn).__name__}")
    if isinstance(data, (str, bytes)) or not isinstance(data, Iterable):
        raise AttachError(
            f"data must be an iterable of batches (a DataLoader, a list), got {type(data).__name__}"
        )
    if isinstance(data, Iterator):
        raise AttachError(
            "data is an iterator, which can be read only once; pass something that can be "
            "iterated once per epoch (a DataLoader, a list)"
        )
    if not isinstance(epochs, int) or epochs < 1:
        raise AttachError(f"epochs must be a positive whole number, got {epochs!r}")
    if scheduler is not None and getattr(scheduler, "optimizer", None) is not optimizer:
        raise AttachError(
            "scheduler does not drive this optimizer; build it from the optimizer you pass"
        )
    if clip_grad_norm is not None and not clip_grad_norm > 0:
        raise AttachError(f"clip_grad_norm must be positive, got {clip_grad_norm!r}")
