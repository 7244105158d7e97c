"""Breakpoints: expressions checked after each full training step, and running until one hits.

A breakpoint hits when its expression becomes true (edge-triggered): after a
hit, continuing runs on while the condition still holds and stops the next
time it turns true. Written ``while <expr>``, it is level-triggered instead,
as a conditional breakpoint in gdb is, and hits after every step at which the
expression holds. NaN or Inf in any tensor of the step stops too
(``stop_on_nan``, on by default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..spec.expression_tree import Expression

if TYPE_CHECKING:
    from ..runview import RunView
    from .stats import StepStatistics

HitKind = Literal["breakpoint", "until", "nan"]


@dataclass(eq=False)
class Breakpoint:
    """An expression the debugger checks after each full step; ``hits`` counts the steps it held."""

    text: str
    expr: Expression
    enabled: bool = True
    hits: int = 0
    level: bool = False  # hit at every step it holds (``while …``), not only when it turns true
    held: bool = False  # whether it held after the last step checked

    def check(self, stats: StepStatistics) -> bool:
        """Whether this step hits: the expression holds, and (edge) did not hold before."""
        holds = bool(self.expr.holds(stats))
        fire = holds and (self.level or not self.held)
        self.held = holds
        if fire:
            self.hits += 1
        return fire


LEVEL_PREFIX = "while "


def split_level(text: str) -> tuple[str, bool]:
    """``"while loss > 1"`` → (``"loss > 1"``, True); other text is edge-triggered."""
    stripped = text.strip()
    if stripped.lower().startswith(LEVEL_PREFIX):
        return stripped[len(LEVEL_PREFIX) :].strip(), True
    return stripped, False


@dataclass(frozen=True)
class BreakHit:
    """What stopped a run: the expression (or ``nan``/``inf``) and why, with the numbers."""

    text: str
    reason: str
    step: int
    kind: HitKind = "breakpoint"

    @property
    def stopped_by(self) -> str:
        """``"nan"`` for a NaN/Inf stop, ``"breakpoint: <text>"`` otherwise."""
        return "nan" if self.kind == "nan" else f"breakpoint: {self.text}"

    def describe(self) -> str:
        if self.kind == "nan":
            return f"stopped: {self.reason}"
        label = "until" if self.kind == "until" else "breakpoint"
        return f"{label} {self.text} hit: {self.reason}"


@dataclass(frozen=True)
class RunResult:
    """How :meth:`Debugger.run_until` ended.

    ``stopped_by``: ``"breakpoint: <text>"``, ``"nan"``, ``"steps"`` (``max_steps``
    taken) or ``"end"`` (the scenario's epochs are done); ``steps``: steps taken.
    """

    stopped_by: str
    steps: int
    hit: BreakHit | None = None


def evaluate(
    stats: StepStatistics,
    breakpoints: list[Breakpoint],
    stop_on_nan: bool,
    until: Expression | None = None,
) -> BreakHit | None:
    """The hit due after the step ``stats`` describes: ``until``, then breakpoints, then NaN/Inf.

    Every enabled breakpoint that fires counts a hit; the first is reported.
    """
    hit: BreakHit | None = None
    if until is not None and until.holds(stats):
        hit = BreakHit(until.text, until.explain(stats), stats.step, "until")
    for bp in breakpoints:
        fired = bp.enabled and bp.check(stats)  # every breakpoint sees every step
        if fired and hit is None:
            hit = BreakHit(bp.text, bp.expr.explain(stats), stats.step, "breakpoint")
    if hit is None and stop_on_nan and stats.nonfinite is not None:
        kind, _ = stats.nonfinite
        hit = BreakHit(kind, stats.describe(kind), stats.step, "nan")
    return hit


def run_until(
    dbg: RunView,
    until: Expression | None,
    max_steps: int | None,
    on_step: Callable[[RunView], None] | None = None,
) -> RunResult:
    """Step any run by batch until a hit, ``max_steps`` steps, or (without a limit) the end."""
    steps = 0
    while True:
        if max_steps is not None and steps >= max_steps:
            return RunResult("steps", steps)
        if dbg.finished:  # training on past the end is asked for with ``extend``
            return RunResult("end", steps)
        dbg.step("batch")
        steps += 1
        if on_step is not None:
            on_step(dbg)
        hit = dbg.hit_breakpoint(until)
        if hit is not None:
            return RunResult(hit.stopped_by, steps, hit)
