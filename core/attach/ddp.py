"""Debugging under ``torch.distributed`` (DDP launched by ``torchrun``): rank 0 leads.

Rank 0 gets the app or the headless run; its run is a :class:`LeaderRun`,
which sends every command that moves training (a step, going back, a weight
edit, training on) to the other ranks before doing it itself. Every other
rank runs :func:`follow`: it waits for the next command at the step boundary
and does the same on its own :class:`~.run.AttachedRun`, so the collectives
of DDP's backward pass meet. When rank 0 is done, :func:`release` tells the
others to stop.

What breakpoints read after a step is reduced over the ranks where it differs
between them: the loss is the mean over the ranks, and a NaN or Inf on any
rank counts (DDP's gradients are averaged already, so gradient norms agree).
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

import torch.distributed as dist

from ..records import PhaseRecord
from ..runview import Granularity
from .collective import QUIT, receive, send, world
from .run import AttachedRun

if TYPE_CHECKING:
    from ..run.gradcheck import GradCheckResult

__all__ = ["LeaderRun", "follow", "release", "shutdown", "world"]


class LeaderRun(AttachedRun):
    """Rank 0's run: each command goes to the other ranks first."""

    can_gradcheck = False  # a copy of a DDP model cannot be differentiated alone

    def step(self, granularity: Granularity = "phase") -> PhaseRecord:
        if not self.finished:
            send(("step", granularity))
        return super().step(granularity)

    def back(self) -> bool:
        send(("back",))
        return super().back()

    def set_weight(self, param: str, index: tuple[int, ...], value: float) -> float:
        send(("set_weight", param, tuple(index), float(value)))
        return super().set_weight(param, index, value)

    def extend(self, epochs: int) -> None:
        send(("extend", epochs))
        super().extend(epochs)

    def gradient_check(self, layer: str | None = None) -> GradCheckResult:
        from ..errors import NotPossible

        raise NotPossible("a gradient check is not possible on a DDP model; run it on one process")


def follow(run: AttachedRun) -> int:
    """Do what rank 0 does, command by command, until it says stop; the commands done."""
    done = 0
    while True:
        command = receive()
        name = command[0]
        if name == "quit":
            return done
        if name == "step":
            run.step(command[1])
        elif name == "back":
            run.back()
        elif name == "set_weight":
            run.set_weight(command[1], command[2], command[3])
        elif name == "extend":
            run.extend(command[1])
        done += 1


def release() -> None:
    """Rank 0 is done: the other ranks stop following."""
    send(QUIT)


def shutdown(run: AttachedRun) -> None:
    """Every rank, at the end: hooks off, garbage collected, a barrier, the group closed
    (gloo can crash at exit otherwise)."""
    run.close()
    gc.collect()
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
