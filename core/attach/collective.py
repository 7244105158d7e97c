"""The few collective operations a distributed attached run needs (rank 0 leads)."""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

__all__ = ["QUIT", "receive", "reduce_for_breakpoints", "send", "world"]

QUIT = ("quit",)


def world() -> tuple[int, int] | None:
    """(rank, world size) under an initialized process group of two or more ranks."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    size = dist.get_world_size()
    return (dist.get_rank(), size) if size > 1 else None


def send(command: tuple[Any, ...]) -> None:
    dist.broadcast_object_list([command], src=0)


def receive() -> tuple[Any, ...]:
    box: list[Any] = [None]
    dist.broadcast_object_list(box, src=0)
    return tuple(box[0])


def reduce_for_breakpoints(loss: float | None) -> float | None:
    """The mean loss over the ranks; NaN when any rank's loss is not finite."""
    if loss is None:
        return None
    value = torch.tensor([loss, 0.0 if torch.isfinite(torch.tensor(loss)) else 1.0])
    value = value.double()
    if value[1] > 0:
        value[0] = 0.0
    dist.all_reduce(value)
    if value[1] > 0:
        return float("nan")
    return float(value[0]) / dist.get_world_size()
