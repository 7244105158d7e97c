"""Loss (and the first metric) per training step, as line charts with axes."""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from typing import Any

from backprop_tui.core.snapshot import history_columns
from rich.text import Text

from ..chart import line_chart
from ..render import fit, wrap
from .base import Pane

EMPTY = (  # what the pane says before the first step ends, the shorter for less room
    "Loss and metrics appear here after each full training step.",
    "Loss and metrics appear after each step.",
)


class ChartPane(Pane):
    TITLE = "loss history"
    SUMMARY = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # 8 bytes a figure (a list of floats took 32): a long continue adds a figure a step.
        self._series: dict[str, array[float]] = {}
        self._seen = 0  # steps of the history already copied into _series

    def _sync(self) -> dict[str, Sequence[float]]:
        """Copy only the new steps of the history, a column at a time (going back
        truncates); then the validation figures, one a finished epoch, when the run
        has validation data."""
        history = self.session.view.step_history
        if len(history) < self._seen:
            self._series, self._seen = {}, 0
        if len(history) > self._seen:
            for name, values in history_columns(history, self._seen).items():
                if len(values) or name in self._series:
                    self._series.setdefault(name, array("d")).frombytes(values.tobytes())
            self._seen = len(history)
        series: dict[str, Sequence[float]] = dict(self._series)
        self.session.validation.sync(self.session.view.epoch_history)
        validation = self.session.validation.series
        if validation:
            # The loss first, then its validation twin, then the rest.
            rest = {k: v for k, v in series.items() if k != "loss"}
            series = {"loss": series.get("loss", []), **validation, **rest}
        return series

    def summary(self, width: int) -> Text:
        series = self._sync()
        parts = [f"{name} {values[-1]:.4g}" for name, values in series.items() if values]
        steps = f" ({self._seen} step{'' if self._seen == 1 else 's'})"
        # Figures drop from the end until the rest reads whole; the loss, first, stays.
        while len(parts) > 1 and len(" · ".join(parts) + steps) > width:
            parts.pop()
        text = " · ".join(parts) or "no finished step yet"
        return Text(fit(f"{text}{steps}", width), no_wrap=True)

    @staticmethod
    def _axis(name: str) -> str:
        return "epoch" if name.startswith("val_") else "step"

    def build(self, width: int, height: int) -> list[Text]:
        series = self._sync()
        if not series:
            for text in EMPTY:  # in full where the pane has the rows, in short where not
                said = wrap(text, width, "dim")
                if len(said) <= max(height, 1):
                    return said
            return [Text(fit(EMPTY[-1], width), style="dim")]
        names = list(series)
        shown = names[:2] if height >= 12 and len(names) > 1 else names[:1]
        lines: list[Text] = []
        each = (height - len(shown)) // len(shown)
        for name in shown:
            values = series[name]
            last = values[-1]
            head = f"{name} {last:.4g}" if math.isfinite(last) else f"{name} {last}"
            lines.append(Text(fit(head, width), style="bold", no_wrap=True))
            lines += line_chart(values, width, each, x_name=self._axis(name), style="bold")
        return lines
