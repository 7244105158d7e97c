"""Warnings, breakpoint hits and events, newest at the bottom; scrolls when focused."""

from __future__ import annotations

from typing import Any

from backprop_tui.core import LogEntry
from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding

from ..render import wrap
from .base import Pane

MARKS = {
    "info": ("·", "dim"),
    "warning": ("⚠", "bold yellow"),
    "error": ("✖", "bold red"),
    "break": ("●", "bold magenta"),
}


class LogPane(Pane):
    TITLE = "log"
    SUMMARY = True
    BINDINGS = [  # noqa: RUF012 - Textual reads this class attribute
        Binding("up", "scroll_log(1)", "older", show=False),
        Binding("down", "scroll_log(-1)", "newer", show=False),
        Binding("pageup", "scroll_log(10)", "page up", show=False),
        Binding("pagedown", "scroll_log(-10)", "page down", show=False),
        Binding("end", "scroll_log(-1000000000)", "newest", show=False),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.scrolled = 0  # lines scrolled up from the newest

    def action_scroll_log(self, delta: int) -> None:
        total = len(self.session.log_entries())
        self.scrolled = max(0, min(self.scrolled + delta, max(total - 1, 0)))
        self.redraw()

    def summary(self, width: int) -> Text:
        entries = self.session.log_entries()
        warnings = sum(1 for e in entries if e.level == "warning")
        last = entries[-1].text if entries else "empty"
        line = Text(f"{len(entries)} lines, {warnings} warnings · {last}", no_wrap=True)
        return line if line.cell_len <= width else going_on(line, width)

    def build(self, width: int, height: int) -> list[Text]:
        entries = self.session.log_entries()
        if height <= 0:
            return []
        if not entries:
            empty = wrap("Warnings, breakpoint hits and events show here.", max(width, 8))
            return [Text(line.plain, style="dim") for line in empty][:height]
        end = len(entries) - self.scrolled
        lines: list[Text] = []
        for i in range(end - 1, -1, -1):  # newest at the bottom; each entry in full
            entry = entry_lines(entries[i], width)
            if not lines and len(entry) > height:
                # The newest alone is taller than the pane: its start, which says what it
                # is about, marked as going on (the status line and z show it whole).
                shown = entry[:height]
                shown[-1] = going_on(shown[-1], width)
                return shown
            lines[:0] = entry
            if len(lines) >= height:
                break
        return lines[-height:]


def going_on(line: Text, width: int) -> Text:
    """``line`` marked with "…" as going on below, within ``width``: cut after a whole
    figure ("name value", two spaces apart) or else a whole word, so that no number
    is shown cut short, and only where no such place is left, mid-word."""
    plain = line.plain.rstrip()
    if cell_len(plain) + 2 <= width:
        return line[: len(plain)] + Text(" …")
    start = len(plain) - len(plain.lstrip())  # a wrapped line's indent is no place to cut
    for gap in ("  ", " "):
        at = plain.rfind(gap, start, width - 1)
        while at > start and cell_len(plain[:at]) + 2 > width:
            at = plain.rfind(gap, start, at)
        if at > start:
            return line[:at] + Text(" …")
    cut = line.copy()
    cut.truncate(max(width - 1, 1))
    return cut + Text("…")


def entry_lines(entry: LogEntry, width: int) -> list[Text]:
    """One log entry, wrapped under its text so that it reads in full."""
    mark, style = MARKS.get(entry.level, ("·", ""))
    text = entry.text
    if entry.layer and not text.startswith(f"{entry.layer}:"):
        text = f"{entry.layer}: {text}"
    head = Text(f"{entry.step:>5} ", style="dim", no_wrap=True)
    head.append(f"{mark} {entry.level:<7} ", style=style)
    indent = head.cell_len
    room = max(width - indent, 8)
    pieces = [line.plain for line in wrap(text, room)] or [""]
    out = []
    for i, piece in enumerate(pieces):
        line = head.copy() if i == 0 else Text(" " * indent, no_wrap=True)
        line.append(piece)
        out.append(line)
    return out
