"""What the benches share: a competing CPU-bound process, targets with PASS/MISS, figures out.

A bench measures on a quiet machine and again with one other process spinning
a core, the way a shared box runs someone else's job. The bench starts that
process itself and stops it once the figure is taken, also when the bench fails
half-way.

Each bench ends with one ``FIGURES {json}`` line: ``bench/spread.py`` runs a
bench several times and reports the spread of every figure from those lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

# A tight pure-Python loop: one core, fully busy, with no memory traffic to speak of.
SPIN = "x = 0\nwhile True:\n    x = (x + 1) & 0xFFFF\n"


@contextlib.contextmanager
def competing_process(settle: float = 0.5) -> Iterator[int]:
    """One other CPU-bound process for the length of the block; yields its pid."""
    process = subprocess.Popen([sys.executable, "-c", SPIN])
    try:
        time.sleep(settle)  # under way before anything is timed
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def machine() -> str:
    """Cores and the 1-minute load average now, for the report's header."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return f"{cores} cores, load average {os.getloadavg()[0]:.2f}"


class Report:
    """Prints figures beside their targets, with PASS or MISS, and collects them."""

    def __init__(self) -> None:
        self.figures: dict[str, float] = {}
        self.misses: list[str] = []

    def figure(self, key: str, value: float) -> float:
        """Keep a figure without a target (a reference point, a rate)."""
        self.figures[key] = value
        return value

    def at_most(self, key: str, value: float, target: float) -> str:
        return self._verdict(key, value, value <= target)

    def at_least(self, key: str, value: float, target: float) -> str:
        return self._verdict(key, value, value >= target)

    def _verdict(self, key: str, value: float, passed: bool) -> str:
        self.figures[key] = value
        if not passed:
            self.misses.append(key)
        return "PASS" if passed else "MISS"

    def finish(self) -> None:
        verdict = "every target met" if not self.misses else f"missed: {', '.join(self.misses)}"
        print(verdict)
        print("FIGURES " + json.dumps(self.figures, sort_keys=True))


def figures_in(output: str) -> dict[str, Any]:
    """The figures a bench printed on its ``FIGURES`` line."""
    for line in reversed(output.splitlines()):
        if line.startswith("FIGURES "):
            return dict(json.loads(line[len("FIGURES ") :]))
    raise ValueError("no FIGURES line in the output")
