"""Time travel: what is kept to return to the start of an earlier training step.

Only what cannot be recomputed is kept — parameters, optimizer state, the
position in the data and the metric accumulators; the data order is derived
from the seed and the epoch, and the intermediates are recomputed by stepping.
The oldest snapshots are dropped once the total passes the memory cap.
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

# An ndarray beyond its numbers: the object, its shape and strides, and numpy's own
# bookkeeping of the block (measured with tracemalloc on small float64 arrays).
_ARRAY_OBJECT = 64


def _nbytes(array: Any) -> int:
    """An array's numbers and the object that holds them."""
    if isinstance(array, np.ndarray):
        numbers = 0 if array.base is None else array.nbytes  # else counted by getsizeof
        return sys.getsizeof(array) + numbers + _ARRAY_OBJECT
    return int(array.numel() * array.element_size()) + 2 * _ARRAY_OBJECT  # torch tensors


def _int_bytes(value: int) -> int:
    """What an int costs to hold: nothing for the small ones Python keeps for good."""
    return 0 if -5 <= value <= 256 else sys.getsizeof(value)


def _dict_bytes(mapping: dict[str, Any]) -> int:
    """A dict's own table; its keys (parameter names) are shared by every snapshot,
    and the values are counted by the caller."""
    return sys.getsizeof(mapping)


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The state at the start of training step ``step_index`` (0-based)."""

    step_index: int
    epoch: int
    batch_in_epoch: int
    params: dict[str, Any]
    opt_step: int
    opt_slots: dict[str, dict[str, Any]]
    epoch_sums: dict[str, float]
    epoch_count: int
    step_history_len: int
    epoch_history_len: int
    # Set for the state just before a weight was edited by hand between steps:
    # what the edit was ("hidden.kernel[0, 1]: 0.5 → 2"). Undoing the edit restores it.
    edit: str | None = None

    @cached_property
    def nbytes(self) -> int:
        """What holding this snapshot costs: the arrays, and the Python objects around
        them (dicts, numbers, the snapshot itself), so that the cap holds for small
        networks too, where those outweigh the numbers."""
        total = sum(_nbytes(v) for v in self.params.values()) + _dict_bytes(self.params)
        total += _dict_bytes(self.opt_slots)
        for slots in self.opt_slots.values():
            total += _dict_bytes(slots) + sum(_nbytes(v) for v in slots.values())
        total += _dict_bytes(self.epoch_sums) + sum(
            sys.getsizeof(v) for v in self.epoch_sums.values()
        )
        scalars = (self.step_index, self.epoch, self.batch_in_epoch, self.opt_step)
        total += sum(_int_bytes(v) for v in scalars)
        total += 0 if self.edit is None else sys.getsizeof(self.edit)
        # The snapshot, its attribute dict (with this number, once worked out) and
        # its place in the history's deque.
        return total + sys.getsizeof(self) + sys.getsizeof(self.__dict__) + 8


class History:
    """Snapshots in step order, bounded by ``cap_bytes``."""

    def __init__(self, cap_bytes: int) -> None:
        self.cap_bytes = cap_bytes
        self._snaps: deque[Snapshot] = deque()
        self.nbytes = 0

    def push(self, snap: Snapshot) -> None:
        # A snapshot of a step already held (after going back) replaces it and everything
        # later; edits made before that step stay, below it, so they can be undone one by one.
        while self._snaps and (
            self._snaps[-1].step_index > snap.step_index
            or (self._snaps[-1].step_index == snap.step_index and self._snaps[-1].edit is None)
        ):
            self.nbytes -= self._snaps.pop().nbytes
        self._snaps.append(snap)
        self.nbytes += snap.nbytes
        while len(self._snaps) > 1 and self.nbytes > self.cap_bytes:
            self.nbytes -= self._snaps.popleft().nbytes

    def pop(self) -> Snapshot | None:
        """The newest snapshot, removed (it is taken again when its step is redone)."""
        if not self._snaps:
            return None
        snap = self._snaps.pop()
        self.nbytes -= snap.nbytes
        return snap

    def edit_at(self, step_index: int) -> Snapshot | None:
        """The newest edit made at the start of ``step_index``, if any."""
        for snap in reversed(self._snaps):
            if snap.step_index != step_index:
                return None
            if snap.edit is not None:
                return snap
        return None

    def drop_plain_at(self, step_index: int) -> None:
        """Drop the snapshots of ``step_index`` that are not edits (newest first)."""
        while (
            self._snaps
            and self._snaps[-1].step_index == step_index
            and self._snaps[-1].edit is None
        ):
            self.nbytes -= self._snaps.pop().nbytes

    def base_for(self, step_index: int) -> Snapshot | None:
        """The newest snapshot at or before ``step_index``, to recompute that step's start from.

        Snapshots after ``step_index`` are dropped (their steps will be redone);
        the one returned stays. None, and nothing dropped, when the history does
        not reach that far back.
        """
        if step_index < 0 or not self._snaps or self._snaps[0].step_index > step_index:
            return None
        while self._snaps[-1].step_index > step_index:
            self.nbytes -= self._snaps.pop().nbytes
        return self._snaps[-1]

    @property
    def newest(self) -> Snapshot | None:
        return self._snaps[-1] if self._snaps else None

    @property
    def oldest_step(self) -> int | None:
        return self._snaps[0].step_index if self._snaps else None

    def __len__(self) -> int:
        return len(self._snaps)
