"""What watches a run between its steps: diagnostics, breakpoints and the log.

Given each finished step's :class:`StepStatistics`, never the run itself, so a
scenario run and the user's own model share it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..records import LogEntry
from ..spec.expression_tree import Expression
from .breakpoints import BreakHit, Breakpoint, split_level
from .breakpoints import evaluate as evaluate_breakpoints
from .diagnostics import Diagnostics

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .stats import StepStatistics


class Watch:
    """Diagnostics after every step, breakpoints when asked, and the log they write to.

    ``parse`` turns a breakpoint's text into an expression against this run's
    layers (it raises ExpressionError).
    """

    def __init__(
        self,
        settings: Mapping[str, float | bool],
        parse: Callable[[str], Expression],
        breakpoints: tuple[str, ...] = (),
    ) -> None:
        self.diagnostics = Diagnostics(settings)
        self.parse = parse
        self.log: list[LogEntry] = []
        self.breakpoints: list[Breakpoint] = []
        self.stats: StepStatistics | None = None  # the last full step's, measured on demand
        self._hit: tuple[StepStatistics, BreakHit | None] | None = None
        for text in breakpoints:
            self.add_breakpoint(text)

    def observe(self, stats: StepStatistics) -> None:
        """A step finished: keep its statistics and log what the diagnostics find."""
        self.stats = stats
        for found in self.diagnostics.observe(stats):
            self.log.append(LogEntry(stats.step, "warning", found.text, found.layer, found.kind))

    def forget(self) -> None:
        """Let the last step's statistics go (and the breakpoint hit found in them): a
        run whose next step computes, so that the arrays they hold (a whole step's
        outputs, gradients and changes) free their memory for it."""
        self.stats = None
        self._hit = None

    def note(self, step: int, text: str, kind: str = "event") -> None:
        self.log.append(LogEntry(step, "info", text, kind=kind))

    def hit(self, step: int, until: Expression | None = None) -> BreakHit | None:
        """The breakpoint (or NaN/Inf) hit by the step whose statistics were last
        observed, if that is step ``step``; asking twice logs it once."""
        stats = self.stats
        if stats is None or stats.step != step:
            return None
        if self._hit is not None and self._hit[0] is stats:
            return self._hit[1]
        stop_on_nan = bool(self.diagnostics.settings["stop_on_nan"])
        with np.errstate(all="ignore"):  # measuring an overflowed step overflows too
            hit = evaluate_breakpoints(stats, self.breakpoints, stop_on_nan, until)
        self._hit = (stats, hit)
        if hit is not None:
            self.log.append(LogEntry(step, "break", hit.describe(), kind=hit.kind))
        return hit

    def add_breakpoint(self, text: str) -> Breakpoint:
        expression, level = split_level(text)
        breakpoint_ = Breakpoint(text.strip(), self.parse(expression), level=level)
        self.breakpoints.append(breakpoint_)
        return breakpoint_

    def remove_breakpoint(self, i: int) -> Breakpoint:
        return self.breakpoints.pop(i)

    def toggle_breakpoint(self, i: int) -> bool:
        breakpoint_ = self.breakpoints[i]
        breakpoint_.enabled = not breakpoint_.enabled
        breakpoint_.held = False  # enabled again, it is armed: its next true step hits
        return breakpoint_.enabled
