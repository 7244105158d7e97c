"""What the panes draw from: the debugger, the lock around it and what the user has selected.

The app owns one :class:`Session` and hands it to every pane (attributes down).
The continue worker steps the debugger on another thread, so every read of the
debugger itself happens while holding ``lock``; while the worker runs, panes
read the snapshots it publishes between steps instead, without the lock.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from backprop_tui.core import (
    Batch,
    EpochStats,
    LayerView,
    LogEntry,
    RunReading,
    RunSnapshot,
    RunView,
)
from numpy.typing import NDArray

from .blocks import GridCache
from .render import Palette

LogLevel = Literal["info", "warning", "error", "break"]
HINT = "space: step a phase · n: next batch · c: continue · ?: help"
RECORDED = "A recording keeps weights, gradients, losses and the log of some steps, not {what}."


class EngineLock:
    """The lock around the run, fair to the screen and to keys.

    The continue worker takes it for one step at a time (:meth:`worker_turn`). A
    thread that finds it taken says so, and the worker, at its next step
    boundary, steps aside until every such thread has had its turn: it waits on
    a condition, not in a polling loop, so the handoff costs no CPU and no delay.

    The screen can ask the same without the lock (:meth:`screen_first`): a key
    pressed while a run continues is answered by the screen's thread, which
    shares the GIL with the worker's, so the worker waits until the screen has
    drawn the answer (:meth:`screen_done`) rather than halve its speed.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._turns = threading.Condition(threading.Lock())
        self._waiting = 0  # threads other than the worker waiting for the lock
        self._screen_until = 0.0  # monotonic time until which the screen goes first
        self._screen_asks = 0

    def __enter__(self) -> EngineLock:
        with self._turns:  # counted before it tries: the worker cannot slip in between
            self._waiting += 1
        try:
            self._lock.acquire()
        finally:
            with self._turns:
                self._waiting -= 1
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
        with self._turns:
            self._turns.notify_all()

    @property
    def wanted(self) -> bool:
        """Whether a thread other than the worker is waiting for the lock."""
        return self._waiting > 0

    def screen_first(self, seconds: float) -> int:
        """The worker waits at its next step boundary until :meth:`screen_done`, or for
        ``seconds`` at most (should the screen never say). Returns the ask's number."""
        with self._turns:
            self._screen_until = time.monotonic() + seconds
            self._screen_asks += 1
            return self._screen_asks

    def screen_done(self, ask: int | None = None) -> None:
        """The screen has answered ask number ``ask`` (None: every ask): unless a later
        ask is still being answered, the worker goes on."""
        with self._turns:
            if ask is None or ask == self._screen_asks:
                self._screen_until = 0.0
                self._turns.notify_all()

    @contextmanager
    def worker_turn(self) -> Iterator[None]:
        """For the worker's steps: let every thread that waits go first, then take the lock."""
        with self._turns:
            while True:
                if self._waiting:
                    self._turns.wait(0.05)  # the timeout only guards against a lost wake-up
                    continue
                left = self._screen_until - time.monotonic()
                if left <= 0.0:
                    break
                self._turns.wait(left)
        with self._lock:
            yield


class ValidationEpochs:
    """The finished epochs that have validation figures, each read from the run once.

    A run's epoch history may be long (xor ends an epoch every step) and is kept
    as columns, so reading it whole at every redraw would build every epoch's
    record again; this reads only the epochs added since, and starts over when
    the history was cut or rewritten (going back, an edit) under it. What the
    chart and the log show of them (``series``, ``lines``) grows the same way.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.seen = 0
        self.last = ""  # repr of the last epoch read (NaN-safe, unlike ==)
        self.epochs: list[EpochStats] = []
        self._val_loss: array[float] = array("d")
        self._val_metrics: dict[str, array[float]] = {}  # NaN where an epoch lacks one
        self._lines: list[LogEntry] = []
        self._lines_steps = 0  # the steps per epoch the lines were written with

    def sync(self, history: Sequence[EpochStats]) -> list[EpochStats]:
        n = self.seen
        if len(history) < n or (n and repr(history[n - 1]) != self.last):
            self._reset()
        if len(history) > self.seen:
            new = history[self.seen :]
            for done in new:
                if done.val_loss is None:
                    continue
                self._val_loss.append(done.val_loss)
                for name, value in done.val_metrics.items():
                    column = self._val_metrics.get(name)
                    if column is None:
                        column = self._val_metrics[name] = array("d", [math.nan] * len(self.epochs))
                    column.append(value)
                self.epochs.append(done)
                for column in self._val_metrics.values():
                    if len(column) < len(self.epochs):
                        column.append(math.nan)
            self.seen, self.last = len(history), repr(new[-1])
        return self.epochs

    @property
    def series(self) -> dict[str, Sequence[float]]:
        """The validation loss and the last epoch's validation metrics, one figure an
        epoch (``val_loss``, ``val_accuracy``), as the chart draws them."""
        if not self.epochs:
            return {}
        out: dict[str, Sequence[float]] = {"val_loss": self._val_loss}
        for name in self.epochs[-1].val_metrics:
            out[f"val_{name}"] = self._val_metrics[name]
        return out

    def lines(self, steps_per_epoch: int) -> list[LogEntry]:
        """How each epoch ended on the validation data, a log line an epoch (each
        written once)."""
        if steps_per_epoch != self._lines_steps:
            self._lines, self._lines_steps = [], steps_per_epoch
        for done in self.epochs[len(self._lines) :]:
            figures = "  ".join(f"{k} {v:.4g}" for k, v in done.as_dict().items())
            end = (done.epoch + 1) * steps_per_epoch
            self._lines.append(
                LogEntry(end, "info", f"epoch {done.epoch + 1} done: {figures}", kind="epoch")
            )
        return self._lines


def _by_step(entry: LogEntry) -> int:
    step: int = entry.step
    return step


class LogMerge:
    """The run's log, the app's own lines and the epochs' lines merged by step.

    Each source keeps its own order: a source is in the order things happened,
    which is not step order once the run has gone back (``went back to step 998``
    comes after ``… 999``). The merge takes, again and again, the line with the
    lowest step among the sources' next lines (the earlier source on a tie): the
    same as sorting by step while every source is in step order.

    Each source only grows at its end while a run continues (xor adds an epoch's line
    a step), so what was merged is kept and the new lines are added after it when
    they all come later than every line merged; anything else (a source cut or
    rewritten, a line among those already merged) merges everything again.
    """

    def __init__(self) -> None:
        self.merged: list[LogEntry] = []
        self._top: int | None = None  # the highest step merged
        self._seen: tuple[tuple[int, LogEntry | None], ...] = ()  # each source's length, last

    def merge(self, sources: tuple[Sequence[LogEntry], ...]) -> list[LogEntry]:
        marks = tuple((len(source), source[-1] if len(source) else None) for source in sources)
        if len(marks) == len(self._seen) and all(
            n == seen_n and last is seen_last
            for (n, last), (seen_n, seen_last) in zip(marks, self._seen, strict=True)
        ):
            return self.merged
        new = self._new_lines(sources)
        if new is None:
            self.merged = list(heapq.merge(*sources, key=_by_step))
            self._top = max((entry.step for entry in self.merged), default=None)
        elif new:  # in step order, every one above what was merged
            self.merged.extend(new)
            self._top = new[-1].step
        self._seen = marks
        return self.merged

    def _new_lines(self, sources: tuple[Sequence[LogEntry], ...]) -> list[LogEntry] | None:
        """The lines added to the sources since the last merge, when they only add to its
        end; else None."""
        if len(self._seen) != len(sources):
            return None
        new: list[LogEntry] = []
        for source, (n, last) in zip(sources, self._seen, strict=True):
            if len(source) < n or (n and source[n - 1] is not last):
                return None  # cut or rewritten
            new += source[n:]
        steps = [entry.step for entry in new]
        if self._top is not None and steps and steps[0] <= self._top:
            return None
        if any(a > b for a, b in pairwise(steps)):
            return None
        return new


class Session:
    """The run (any :class:`RunView`) and the view's own state."""

    def __init__(self, debugger: RunView, fps: float = 10.0) -> None:
        self.dbg = debugger
        # While the worker runs: the run as it stood at the latest step boundary it
        # published, which the summary panes draw from without the lock; None otherwise.
        self.snapshot: RunSnapshot | None = None
        # The latest detailed one: what every pane but the summary ones draws from.
        self.detailed: RunSnapshot | None = None
        self._pinned: RunReading | None = None  # what one redraw draws from, start to end
        # Called on the worker's thread with each detailed snapshot before it is
        # published: a pane works out there what drawing it will read.
        self.preparers: list[Callable[[RunSnapshot], None]] = []
        self.fps = fps
        # While running: seconds between frames, and between frames of every pane (the
        # app paces them: FramePacer); the worker reads them.
        self.frame_period = 1.0 / fps
        self.detail_period = 0.5
        self.lock = EngineLock()
        self.layer = 0
        self.cursor = (0, 0)  # (row, col) of the selected layer's kernel; row == inputs: bias
        self.fine = False  # the last cursor move was by one weight, not one cell
        self.revision = 0  # bumped when numbers change without a step (edits, going back)
        self.events: list[LogEntry] = []  # the app's own log lines (errors, refusals)
        self.palette = Palette()
        self.running = False
        self.engine_alive = False
        self.goto_target = 0  # the step a "goto" run stops at (G)  # the continue worker's thread is inside run_steps
        self.run_started = 0.0  # monotonic time the last run was asked for
        self.status = HINT
        self.progress = ""  # steps and rate of a running continue
        # Heat maps of this run, cached by what they show: a cache per session, so
        # two runs in one process never share a picture.
        self.grids = GridCache()
        self.validation = ValidationEpochs()
        self._log_merge = LogMerge()

    # ------------------------------------------------------------- reading
    @property
    def view(self) -> RunReading:
        """What the panes read: the redraw's own pick, else the latest detailed snapshot
        while running, else the run itself (read holding the lock)."""
        if self._pinned is not None:
            return self._pinned
        detailed = self.detailed
        return detailed if detailed is not None else self.dbg

    @contextmanager
    def reading(self, summary: bool = False) -> Iterator[RunReading]:
        """One consistent state to draw from: while running, a published snapshot,
        without the lock (``summary``: the latest, for the panes drawn at every
        frame; else the latest detailed one); otherwise the run itself, holding the
        lock. Nested redraws share the outer one's."""
        if self._pinned is not None:
            yield self._pinned
            return
        snapshot = self.snapshot if summary else self.detailed
        try:
            if snapshot is not None:
                self._pinned = snapshot
                yield snapshot
            else:
                with self.lock:
                    self._pinned = self.dbg
                    yield self.dbg
        finally:
            self._pinned = None

    def take_snapshot(self, detailed: bool = True) -> RunSnapshot:
        """On the worker's thread, holding the lock between two steps: the run as it
        stands now. A ``detailed`` one copies what every pane reads; the others are
        summaries (counters, loss, logs) for the panes drawn at every frame."""
        base = None if detailed else self.detailed
        return RunSnapshot(self.dbg, detailed or base is None, base)

    def publish(self, snapshot: RunSnapshot) -> None:
        """Make ``snapshot`` what the panes draw. For a detailed one the panes' heavy
        derived data is worked out first, once, by the ``preparers`` they registered
        (on the worker's thread, no longer holding the lock: a snapshot stays as it is)."""
        if snapshot.detailed:
            for prepare in list(self.preparers):
                prepare(snapshot)
            self.detailed = snapshot
        self.snapshot = snapshot

    def stop_publishing(self) -> None:
        """The run stopped: the panes read the run itself again."""
        self.snapshot = self.detailed = None

    @property
    def read_only(self) -> bool:
        """Nothing can be changed (a recorded replay): editing keys say so."""
        return not self.dbg.can_edit

    # ------------------------------------------------------------- selection
    @property
    def spec(self) -> LayerView:
        return self.view.layers[self.layer]

    @property
    def kernel_name(self) -> str:
        return self.spec.kernel or f"{self.spec.name}.kernel"

    def as_matrix(self, kernel: NDArray[Any]) -> NDArray[Any]:
        """The kernel as the panes lay it out: inputs × units. A conv2d kernel
        (kh, kw, in, filters) becomes kh·kw·in rows × filters columns (row-major, so
        row r is the weight at (r // (kw·in), r // in % kw, r % in)); batch
        normalization's gamma one row."""
        return np.asarray(kernel).reshape(int(self.spec.inputs), int(self.spec.units))

    def kernel_index(self, row: int, col: int) -> tuple[int, ...]:
        """The index into the kernel's own shape of the matrix cell (row, col)."""
        shape = self.spec.kernel_shape
        if len(shape) == 1:
            return (col,)
        if len(shape) > 2:
            return (*(int(i) for i in np.unravel_index(row, shape[:-1])), col)
        return (row, col)

    @property
    def bias_name(self) -> str | None:
        bias: str | None = self.spec.bias
        return bias

    def cursor_param(self) -> tuple[str, tuple[int, ...]]:
        """The parameter and index under the gradient cursor."""
        row, col = self.cursor
        if row >= self.spec.inputs and self.bias_name is not None:
            return self.bias_name, (col,)
        return self.kernel_name, self.kernel_index(row, col)

    def cursor_rows(self) -> int:
        """Rows the cursor moves over: the kernel's inputs, and one more for the bias."""
        return int(self.spec.inputs) + (1 if self.spec.use_bias else 0)

    def select_layer(self, index: int) -> None:
        """Select layer ``index``; the cursor keeps its place, or its bias row, where it can."""
        on_bias = self.cursor_param()[0] == self.bias_name
        count = len(self.dbg.layers)
        self.layer = min(max(index, 0), count - 1)
        row = self.cursor_rows() - 1 if on_bias and self.spec.use_bias else self.cursor[0]
        self.cursor = (min(row, self.cursor_rows() - 1), min(self.cursor[1], self.spec.units - 1))

    def move_cursor(self, d_row: int, d_col: int) -> None:
        row = min(max(self.cursor[0] + d_row, 0), self.cursor_rows() - 1)
        col = min(max(self.cursor[1] + d_col, 0), self.spec.units - 1)
        self.cursor = (row, col)

    # ------------------------------------------------------------------ reads
    def step_label(self) -> str:
        """ "step 3/500": steps begun so far out of the scenario's total."""
        dbg = self.view
        return f"step {dbg.step_number}/{dbg.total_steps}"

    def next_batch(self) -> Batch | None:
        """The training samples the next input phase takes, when known."""
        return self.view.next_batch()

    def log_entries(self) -> list[LogEntry]:
        """The debugger's log and the app's own lines, merged by step (see LogMerge). Don't
        change the list: it is kept, and grown, for the next call."""
        log = self.view.log
        sources = (log, self.events, self._epoch_lines())
        return self._log_merge.merge(sources)

    def _epoch_lines(self) -> list[LogEntry]:
        """How each epoch ended on the validation data, when the run has some."""
        dbg = self.view
        self.validation.sync(dbg.epoch_history)
        return self.validation.lines(dbg.steps_per_epoch)

    def note(self, text: str, level: LogLevel = "info", kind: str = "ui") -> None:
        """Add a line to the log and show it on the status line."""
        self.events.append(LogEntry(self.dbg.step_number, level, text, kind=kind))
        self.status = text

    def loss_text(self) -> str:
        loss = self.view.loss
        if loss is None:
            return "loss —"
        text = f"loss {loss:.4g}" if math.isfinite(loss) else f"loss {loss}"
        penalty = self.view.penalty
        if penalty is not None:  # Keras' loss holds the weight penalties; they are shown apart
            text += f" (penalty {penalty:.4g})"
        return text
