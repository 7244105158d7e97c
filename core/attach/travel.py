"""Going back in an attached run: keyframes of the model, optimizer and scheduler.

A keyframe is taken at the start of a step every ``keyframe_every`` steps (and
after a hand edit), under a memory cap; the steps between are done again from
the nearest one with the batches and random states the feed kept, which on
the CPU gives the same numbers bit for bit.

By default the spacing follows the time the steps take, as the scenario
engine's does (:mod:`..run.timetravel`): a keyframe holds new memory (a copy of
the parameters and of the optimizer's state, three times the parameters for
Adam), and on a small, fast model taking one every 8 steps cost more than all
the diagnostics: about 0.4 ms a step of the 784→256→256→10 MLP, most of it the
page faults of that memory. So keyframes stand at least ``MIN_KEYFRAME_EVERY``
steps apart, and further apart while steps are fast, until the stepping since
the last one took ``REPLAY_BUDGET_S``: going back never recomputes much more
than that.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["MIN_KEYFRAME_EVERY", "Keyframe", "Keyframes", "copy_state"]

MIN_KEYFRAME_EVERY = 8
MAX_KEYFRAME_EVERY = 1024
REPLAY_BUDGET_S = 0.05


@dataclass(eq=False)
class Keyframe:
    """The state at the start of step ``step`` (0-based), and the counters there."""

    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    counters: dict[str, Any] = field(default_factory=dict)
    nbytes: int = 0
    batches_until: int = -1  # the batches after it counted in ``nbytes`` end before this step


def _tensor_bytes(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def copy_state(value: Any) -> Any:
    """A deep copy of a ``state_dict``: tensors cloned, containers rebuilt, other leaves
    deep-copied. ``copy.deepcopy`` gives the same but is several times slower on an
    optimizer's state, being general (memo, storages, reductions) where this is not."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: copy_state(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_state(v) for v in value]
    if type(value) is tuple:
        return tuple(copy_state(v) for v in value)
    if isinstance(value, (int, float, str, bool, type(None))):
        return value
    return copy.deepcopy(value)


def take(
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    counters: dict[str, Any],
    copies: Mapping[str, torch.Tensor] | None = None,
) -> Keyframe:
    """The keyframe of step ``step``. ``copies``: copies of parameters, by name, that hold
    their values now and are never written (the run's copies after the last update);
    the keyframe keeps those rather than copying the parameters again."""
    copies = copies or {}
    state: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        kept = copies.get(key)
        same = kept is not None and kept.shape == value.shape and kept.dtype == value.dtype
        state[key] = kept if kept is not None and same else value.detach().clone()
    opt = copy_state(optimizer.state_dict())
    sched = copy_state(scheduler.state_dict()) if scheduler is not None else None
    frame = Keyframe(step, state, opt, sched, dict(counters))
    frame.nbytes = _tensor_bytes(state) + _tensor_bytes(opt)
    return frame


def restore(
    frame: Keyframe, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
) -> None:
    with torch.no_grad():
        live = model.state_dict(keep_vars=True)
        for key, value in frame.model.items():
            live[key].copy_(value)  # in place: the optimizer holds these very parameters
    optimizer.load_state_dict(copy_state(frame.optimizer))
    if scheduler is not None and frame.scheduler is not None:
        scheduler.load_state_dict(copy_state(frame.scheduler))


class Keyframes:
    """Keyframes by step, the oldest dropped first when they pass ``cap_bytes``.

    ``keyframe_every``: a keyframe every that many steps; None spaces them by the
    time the stepping takes (see the module's docstring), which the run adds to
    ``spent``.
    """

    def __init__(self, cap_bytes: int, keyframe_every: int | None = None) -> None:
        self.cap_bytes = cap_bytes
        self.keyframe_every = None if keyframe_every is None else max(1, keyframe_every)
        self.frames: dict[int, Keyframe] = {}
        self.spent = 0.0  # seconds of stepping since the newest keyframe was taken

    def due(self, step: int) -> bool:
        if step in self.frames:
            return False
        if self.keyframe_every is not None:
            return step % self.keyframe_every == 0
        before = [s for s in self.frames if s <= step]
        if not before:
            return True
        since = step - max(before)
        if since < MIN_KEYFRAME_EVERY:
            return False
        return self.spent >= REPLAY_BUDGET_S or since >= MAX_KEYFRAME_EVERY

    def push(self, frame: Keyframe) -> None:
        self.spent = 0.0
        self.frames[frame.step] = frame
        total = sum(f.nbytes for f in self.frames.values())
        while len(self.frames) > 1 and total > self.cap_bytes:
            oldest = min(self.frames)
            total -= self.frames.pop(oldest).nbytes

    def base_for(self, step: int) -> Keyframe | None:
        """The newest keyframe at or before ``step``."""
        usable = [s for s in self.frames if s <= step]
        return self.frames[max(usable)] if usable else None

    def drop_after(self, step: int) -> None:
        for later in [s for s in self.frames if s > step]:
            del self.frames[later]

    @property
    def oldest(self) -> int | None:
        return min(self.frames) if self.frames else None
