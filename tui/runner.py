"""Running many steps off the event loop: the loop the continue worker runs, and its messages.

The loop steps the debugger one whole step at a time, holding the session lock
for that step only (a key that needs the lock gets it at the next step
boundary), asks after every full step whether to stop (a breakpoint, NaN, the
end of training or of the epoch), and at most ``fps`` times a second publishes
the run as it stands (:meth:`Session.take_snapshot`, then :meth:`Session.publish`:
what the panes draw from without the lock) and posts a :class:`StepDone`. An unread :class:`StepDone` is
replaced by the next, so a slow screen never falls behind.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Literal

from backprop_tui.core import RunSnapshot
from textual.message import Message

from .session import Session

Mode = Literal["continue", "epoch", "goto"]
DETAIL_PERIOD = 0.5  # seconds between redraws of every pane (not only the summary ones)


class StepDone(Message):
    """Steps were taken; redraw. Replaces an unread one."""

    def __init__(self, steps: int, rate: float) -> None:
        super().__init__()
        self.steps = steps
        self.rate = rate

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StepDone)


class RunStopped(Message):
    """The run ended: why, how it should be logged, and how many steps it took."""

    def __init__(self, reason: str, level: str, steps: int) -> None:
        super().__init__()
        self.reason = reason
        self.level = level
        self.steps = steps


def stop_reason(
    session: Session, mode: Mode, start_epoch: int, was_finished: bool
) -> tuple[str, str] | None:
    """Why to stop after the step just taken (reason, log level), or None to go on."""
    dbg = session.dbg
    if mode == "goto" and dbg.step_index >= session.goto_target:
        return f"at step {dbg.step_number}", "info"
    hit = dbg.hit_breakpoint()
    if hit is not None:  # the debugger logs the hit itself
        return hit.describe(), "break"
    loss = dbg.loss
    if loss is not None and not math.isfinite(loss):
        return f"loss is {loss} after step {dbg.step_index}: stopped", "error"
    if mode == "epoch" and dbg.epoch != start_epoch:
        return f"epoch {start_epoch + 1} done", "info"
    if dbg.finished and not was_finished:
        return f"training finished: {dbg.epoch} epochs, {dbg.step_index} steps", "info"
    return None


def run_steps(
    session: Session,
    mode: Mode,
    cancelled: Callable[[], bool],
    post: Callable[[Message], object],
) -> None:
    """Step by whole training steps until told to stop; report through ``post``."""
    session.engine_alive = True
    try:
        _run_steps(session, mode, cancelled, post)
    finally:
        session.stop_publishing()
        session.engine_alive = False


def _run_steps(
    session: Session,
    mode: Mode,
    cancelled: Callable[[], bool],
    post: Callable[[Message], object],
) -> None:
    dbg = session.dbg
    period = 1.0 / session.fps
    start = time.monotonic()
    next_post = start + period
    steps = 0
    start_epoch, was_finished = dbg.epoch, dbg.finished
    reason, level = "paused", "info"
    with session.lock.worker_turn():
        snapshot: RunSnapshot | None = session.take_snapshot(detailed=True)
    if snapshot is not None:
        session.publish(snapshot)
    next_detail = start + DETAIL_PERIOD
    while True:
        if cancelled():
            break
        with session.lock.worker_turn():
            try:
                dbg.step("batch")
            except Exception as err:  # the app stays up; the log says what broke
                where = f"in {dbg.phase}" + (
                    f" of {dbg.layer_names[dbg.layer_index]}" if dbg.layer_index is not None else ""
                )
                reason, level = (
                    f"step {dbg.step_index + 1} failed {where}: {type(err).__name__}: {err}",
                    "error",
                )
                break
            steps += 1
            stop = stop_reason(session, mode, start_epoch, was_finished)
            now = time.monotonic()
            snapshot = None
            if stop is None and now >= next_post:
                detailed = now >= next_detail
                if detailed:
                    next_detail = now + DETAIL_PERIOD
                snapshot = session.take_snapshot(detailed)  # between two steps, holding the lock
        if stop is not None:
            reason, level = stop
            break
        if snapshot is not None:
            session.publish(snapshot)
        if now >= next_post:
            post(StepDone(steps, steps / (now - start)))
            next_post = now + period
    session.stop_publishing()  # before the message: the last redraw reads the run itself
    post(RunStopped(reason, level, steps))
