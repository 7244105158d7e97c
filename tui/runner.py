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
FAST_STEP_S = 0.002  # a step this short is Python through and through: it needs the GIL
UI_SHARE = 0.05  # of the time, what drawing may take while such steps run
MIN_FPS = 4.0  # the fewest frames a second while running: the screen still looks live
DETAIL_FRAMES = 4  # while fast steps are paced: a frame of every pane at most every 4th frame
SMOOTHING = 0.3  # weight of the newest frame in the running mean of a frame's cost


class FramePacer:
    """How long to wait between two frames while a run continues.

    The engine's thread and the screen's share one GIL: while the screen draws, a
    step that is Python through and through (xor, moons: well under a millisecond)
    waits. So when steps are that short, frames come as often as keeps the screen's
    share of the time near ``UI_SHARE`` (from what drawing has cost on this machine),
    between ``fps`` and ``MIN_FPS`` frames a second; longer steps (a big network,
    whose matrix products leave the GIL free) get ``fps`` frames a second. Every
    pane is drawn every ``DETAIL_PERIOD``, or, while paced, every ``DETAIL_FRAMES``
    frames if that is longer: such a frame costs the most.
    """

    def __init__(self, fps: float) -> None:
        self.fastest = 1.0 / fps
        self.period = self.fastest
        self.detail_period = DETAIL_PERIOD
        self.cost: float | None = None  # CPU seconds the screen spent a frame, smoothed
        self._last: float | None = None  # the screen thread's CPU time at the last frame

    def start(self) -> None:
        """A run begins. Frames come as the last run's came (the same run, the same
        screen: its steps and its frames cost what they cost then), at the fastest
        until drawing has been timed."""
        self._last = None

    def frame(self, cpu: float, rate: float) -> float:
        """At a frame: ``cpu`` the screen thread's CPU time now, ``rate`` the run's steps
        per second. Returns the period until the next frame."""
        if self._last is not None:
            spent = max(cpu - self._last, 0.0)
            self.cost = spent if self.cost is None else self.cost + SMOOTHING * (spent - self.cost)
        self._last = cpu
        fast = rate > 0 and 1.0 / rate < FAST_STEP_S
        if not fast or self.cost is None:
            self.period, self.detail_period = self.fastest, DETAIL_PERIOD
        else:
            self.period = max(self.fastest, min(self.cost / UI_SHARE, 1.0 / MIN_FPS))
            self.detail_period = max(DETAIL_PERIOD, DETAIL_FRAMES * self.period)
        return self.period


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
    start = time.monotonic()
    next_post = start + session.frame_period
    steps = 0
    start_epoch, was_finished = dbg.epoch, dbg.finished
    reason, level = "paused", "info"
    with session.lock.worker_turn():
        snapshot: RunSnapshot | None = session.take_snapshot(detailed=True)
    if snapshot is not None:
        session.publish(snapshot)
    next_detail = start + session.detail_period
    while True:
        if cancelled():
            break
        with session.lock.worker_turn():
            if cancelled():  # while the worker waited its turn (a pause key, say)
                break
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
                    next_detail = now + session.detail_period
                snapshot = session.take_snapshot(detailed)  # between two steps, holding the lock
        if stop is not None:
            reason, level = stop
            break
        if snapshot is not None:
            session.publish(snapshot)
        if now >= next_post:
            post(StepDone(steps, steps / (now - start)))
            next_post = now + session.frame_period  # the screen paces itself (FramePacer)
    session.stop_publishing()  # before the message: the last redraw reads the run itself
    post(RunStopped(reason, level, steps))
