"""Going back: snapshots of a :class:`TrainingLoop` at step starts, and stepping from them.

A snapshot is kept every ``keyframe_every`` steps (and at each step after a
hand edit); the steps between are recomputed from the nearest one, which gives
the same numbers bit for bit, since stepping the bare loop is deterministic and
nothing watches it while it recomputes.

By default the spacing follows the time the steps take. Each snapshot holds new
memory (the parameters and the optimizer's slots it keeps are never reused), and
on a small, fast network taking it every 8 steps cost about as much as the
rest of the loop's bookkeeping: the page faults of that memory alone added 8–20%
to a step of the glyphs network. So snapshots stand at least
``MIN_KEYFRAME_EVERY`` steps apart, as before, and further apart while steps
are fast, until the steps since the last one took ``REPLAY_BUDGET_S``: going
back never recomputes more than about that, and a fast network reaches further
back in the same memory. The time counted is the stepping's own, between
``clock_in`` and ``clock_out``, not the time the user spends reading between steps.
"""

from __future__ import annotations

from dataclasses import replace
from time import perf_counter

from ..maths import optimizers
from .history import History, Snapshot
from .loop import TrainingLoop, epoch_order

MIN_KEYFRAME_EVERY = 8
MAX_KEYFRAME_EVERY = 1024
REPLAY_BUDGET_S = 0.05


class TimeTravel:
    """The history of one loop, and the moves back through it.

    ``keyframe_every``: a snapshot every that many steps; None (the default) spaces
    them by the time the steps take (see the module's docstring).
    """

    def __init__(
        self, loop: TrainingLoop, cap_bytes: int, keyframe_every: int | None = None
    ) -> None:
        self.loop = loop
        self.history = History(cap_bytes)
        self.keyframe_every = None if keyframe_every is None else max(1, keyframe_every)
        self.edited_since_keyframe = False
        self.spent = 0.0  # seconds of stepping since the newest snapshot's step started
        self._clock: float | None = None  # when the stepping now under way was last timed

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

    def clock_in(self) -> None:
        """Stepping starts: its time counts toward the spacing of snapshots."""
        self._clock = perf_counter()

    def clock_out(self) -> None:
        """Stepping stops: what follows (the user reading) does not count."""
        if self._clock is not None:
            self.spent += perf_counter() - self._clock
        self._clock = None

    def at_step_start(self) -> None:
        """Called before an input phase: keep a keyframe when one is due."""
        if self._clock is not None:
            now = perf_counter()
            self.spent += now - self._clock
            self._clock = now
        if self.edited_since_keyframe or self._keyframe_due():
            self.history.push(self.snapshot())
            self.edited_since_keyframe = False
            self.spent = 0.0

    def _keyframe_due(self) -> bool:
        step = self.loop.step_index
        if self.keyframe_every is not None:
            return step % self.keyframe_every == 0
        newest = self.history.newest
        if newest is None:
            return True
        since = step - newest.step_index
        if since < MIN_KEYFRAME_EVERY:
            return since < 0  # the history was cut below this step: start it again here
        return self.spent >= REPLAY_BUDGET_S or since >= MAX_KEYFRAME_EVERY

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
        start = perf_counter()
        while loop.step_index < target:
            loop.advance()
            while loop.phase != "update":
                loop.advance()
        loop.forget_step()
        # What stepping from the base snapshot to here costs is what was just spent.
        self.spent = perf_counter() - start
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
