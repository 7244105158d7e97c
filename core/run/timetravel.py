"""Going back: snapshots of a :class:`TrainingLoop` at step starts, and stepping from them.

A snapshot is kept every ``keyframe_every`` steps (and at each step after a
hand edit); the steps between are recomputed from the nearest one, which gives
the same numbers bit for bit, since stepping the bare loop is deterministic and
nothing watches it while it recomputes.
"""

from __future__ import annotations

from dataclasses import replace

from ..maths import optimizers
from .history import History, Snapshot
from .loop import TrainingLoop, epoch_order


class TimeTravel:
    """The history of one loop, and the moves back through it."""

    def __init__(self, loop: TrainingLoop, cap_bytes: int, keyframe_every: int = 8) -> None:
        self.loop = loop
        self.history = History(cap_bytes)
        self.keyframe_every = max(1, keyframe_every)
        self.edited_since_keyframe = False

    @property
    def oldest_step(self) -> int | None:
        return self.history.oldest_step

    def snapshot(self) -> Snapshot:
        # No copies: parameters and optimizer slots are replaced, never written in
        # place (``optimizers.apply`` and hand edits build new arrays), so holding
        # references keeps the old values intact.
        loop = self.loop
        return Snapshot(
            step_index=loop.step_index,
            epoch=loop.epoch,
            batch_in_epoch=loop.batch_in_epoch,
            params=dict(loop.backend.params),
            opt_step=loop.opt_state.step,
            opt_slots={p: dict(slots) for p, slots in loop.opt_state.slots.items()},
            epoch_sums=dict(loop.epoch_sums),
            epoch_count=loop.epoch_count,
            step_history_len=len(loop.step_history),
            epoch_history_len=len(loop.epoch_history),
        )

    def at_step_start(self) -> None:
        """Called before an input phase: keep a keyframe when one is due."""
        if self.edited_since_keyframe or self.loop.step_index % self.keyframe_every == 0:
            self.history.push(self.snapshot())
            self.edited_since_keyframe = False

    def note_edit(self, text: str | None) -> None:
        """A weight is about to be edited; between steps (``text`` given) keep the
        state before it, so that going back undoes the edit first."""
        if text is not None:
            self.history.push(replace(self.snapshot(), edit=text))
        self.edited_since_keyframe = True  # replays must start after the edit

    def undo_edit_here(self) -> str | None:
        """Between steps, undo the newest edit made at this step; its text, or None."""
        loop = self.loop
        if loop.phase != "update" or self.history.edit_at(loop.step_index) is None:
            return None
        self.history.drop_plain_at(loop.step_index)
        snap = self.history.newest
        assert snap is not None
        self.history.pop()
        self.edited_since_keyframe = True  # an edit left below still differs from a replay
        loop.backend.set_params(snap.params)
        loop.drop_pending()
        return snap.edit

    def back(self) -> bool:
        """To the start of the previous step (or of this one, mid-step); False when
        the history holds nothing that far back."""
        loop = self.loop
        target = loop.step_index if loop.phase != "update" else loop.step_index - 1
        base = self.history.base_for(target)
        if base is None:
            return False
        loop.forget_lr_changes_after(target)
        self._restore(base)
        while loop.step_index < target:
            loop.advance()
            while loop.phase != "update":
                loop.advance()
        loop.forget_step()
        return True

    def _restore(self, snap: Snapshot) -> None:
        loop = self.loop
        loop.backend.set_params(snap.params)
        loop.opt_state = optimizers.OptState(snap.opt_step, snap.opt_slots)
        loop.step_index, loop.epoch, loop.batch_in_epoch = (
            snap.step_index,
            snap.epoch,
            snap.batch_in_epoch,
        )
        loop.epoch_sums, loop.epoch_count = dict(snap.epoch_sums), snap.epoch_count
        del loop.step_history[snap.step_history_len :]
        del loop.epoch_history[snap.epoch_history_len :]
        loop.order = epoch_order(loop.scenario, loop.epoch)
        loop.forget_step()
