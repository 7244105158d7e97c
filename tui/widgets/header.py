"""The header line: scenario, backend and device, epoch, step, loss and the run state."""

from __future__ import annotations

import math

from rich.text import Text

from .base import Bar


def fit_parts(parts: list[tuple[str, str]], width: int, sep: str = " · ") -> Text:
    """Join (text, style) parts with ``sep``, dropping whole parts from the end to fit."""
    line = Text(no_wrap=True, overflow="crop")
    for i, (text, style) in enumerate(parts):
        extra = (len(sep) if i else 0) + len(text)
        if line.cell_len + extra > width:
            break
        if i:
            line.append(sep, style="dim")
        line.append(text, style=style)
    return line


class HeaderBar(Bar):
    """One line: what is being trained, where, and how far it has got."""

    SUMMARY = True

    def build(self, width: int, height: int) -> list[Text]:
        s = self.session
        dbg = s.view
        epochs = dbg.total_epochs
        epoch = f"epoch {dbg.epoch_number}/{epochs}"
        if dbg.finished:
            epoch = f"epoch {epochs}/{epochs} done"
        state = "replay" if s.read_only else ""
        if s.running:
            state = "running"
        parts = [
            (f"backprop-tui {dbg.title}", "bold"),
            (s.step_label(), "bold"),
            (epoch, ""),
            (s.loss_text(), "bold"),
        ]
        for name, value in dbg.metrics.items():
            shown = f"{value:.4g}" if math.isfinite(value) else str(value)
            parts.append((f"{name} {shown}", ""))
        last = dbg.epoch_history[-1] if dbg.epoch_history else None
        if last is not None and last.val_loss is not None:  # after an epoch, on held-out data
            for name, value in (("val_loss", last.val_loss), *last.val_metrics.items()):
                name = name if name == "val_loss" else f"val_{name}"
                shown = f"{value:.4g}" if math.isfinite(value) else str(value)
                parts.append((f"{name} {shown}", "italic"))
        parts.append((dbg.where, "dim"))
        line = fit_parts(parts, width - len(state) - 2)
        if state:
            line.append(" " * max(width - line.cell_len - len(state), 1))
            line.append(state, style="reverse bold")
        return [line]
