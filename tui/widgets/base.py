"""The base of every pane: it draws lines of Text and repaints only the lines that changed.

A pane computes its whole content in :meth:`Pane.build` for its current size;
:meth:`Pane.redraw` compares the new lines with those on screen and marks only
the changed ones dirty, so while training runs the terminal receives what
changed, not the whole screen. In the compact layout a pane may be *folded*
to a single summary line.
"""

from __future__ import annotations

from typing import ClassVar

from backprop_tui.core import RunSnapshot
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.events import Resize
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from ..session import Session


def _segments(text: Text, console: Console) -> list[Segment]:
    """The segments of one line, with its base style (``Text.render`` drops the base
    style of a line that has no spans)."""
    if not text.spans:
        if not text.style:
            return [Segment(text.plain)]
        return [Segment(text.plain, console.get_style(text.style))]
    found = _side_by_side(text, console)
    return found if found is not None else list(text.render(console, end=""))


def _side_by_side(text: Text, console: Console) -> list[Segment] | None:
    """What ``Text.render`` gives for a line whose spans follow one another without
    overlapping (a heat map's cells, a chart's parts), without its stack of styles to
    combine at every edge: a span's style over the base style, the base style between.
    None for any other line."""
    plain = text.plain
    null = Style.null()
    base = console.get_style(text.style, default=null)
    out: list[Segment] = []
    styles: dict[object, Style] = {}
    at = 0
    for span in text.spans:
        start, end, style = span
        if start < at or end <= start or end > len(plain):
            return None
        if start > at:
            out.append(Segment(plain[at:start], base))
        combined = styles.get(style)
        if combined is None:
            combined = styles[style] = base + console.get_style(style, default=null)
        out.append(Segment(plain[start:end], combined))
        at = end
    if at < len(plain):
        out.append(Segment(plain[at:], base))
    return out


def _same(a: Text, b: Text) -> bool:
    """Whether two lines draw alike (``Text.__eq__`` ignores the base style)."""
    return a == b and a.style == b.style


class Lines(Widget):
    """Draws lines of Text built from the session; repaints only the lines that change."""

    TITLE: ClassVar[str] = ""
    # Drawn at every frame while a run continues, from counters, the loss and the logs:
    # such a pane reads the latest snapshot, the others the latest detailed one.
    SUMMARY: ClassVar[bool] = False
    # Works out, on the worker's thread, what drawing a detailed snapshot will read
    # (see ``prepare``): such a pane registers with the session while it is mounted.
    PREPARES: ClassVar[bool] = False

    def __init__(self, session: Session, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.session = session
        self.folded = False
        self._lines: list[Text] = []
        self._strips: dict[int, Strip] = {}  # rendered lines, until they or the style change
        self._strip_style: Style | None = None
        self._strip_width = 0

    def on_mount(self) -> None:
        self.border_title = self.TITLE
        if self.PREPARES:
            self.session.preparers.append(self.prepare)

    def on_unmount(self) -> None:
        if self.prepare in self.session.preparers:
            self.session.preparers.remove(self.prepare)

    def prepare(self, snapshot: RunSnapshot) -> None:
        """On the worker's thread, before ``snapshot`` is published: what the pane's
        drawing derives from it (only where ``PREPARES``)."""

    def on_resize(self, event: Resize) -> None:
        self.redraw(force=True)

    # -------------------------------------------------------------- drawing
    def build(self, width: int, height: int) -> list[Text]:
        """The pane's lines for a content area of ``width``×``height``."""
        raise NotImplementedError

    def summary(self, width: int) -> Text:
        """One line that stands for the pane when it is folded."""
        return Text(self.TITLE)

    def fold(self, folded: bool) -> None:
        if folded != self.folded:
            self.folded = folded
            self.set_class(folded, "-folded")
            self.redraw(force=True)

    def redraw(self, force: bool = False) -> None:
        """Rebuild the lines (from one state of the run: see ``Session.reading``) and
        repaint those that changed."""
        width, height = self.content_size
        if width <= 0 or height <= 0:
            return
        with self.session.reading(self.SUMMARY):
            if self.folded:
                lines = [self._folded_line(width)]
            else:
                lines = self.build(width, height)[:height]
        old, self._lines = self._lines, lines
        if force or len(old) != len(lines):
            self._strips = {}
            self.refresh()
            return
        changed = [y for y, (a, b) in enumerate(zip(old, lines, strict=True)) if not _same(a, b)]
        for y in changed:
            self._strips.pop(y, None)
        if len(changed) * 2 > height:
            self.refresh()
        else:
            for y in changed:
                self.refresh(Region(0, y, width, 1))

    def _folded_line(self, width: int) -> Text:
        line = Text("▸ ", no_wrap=True, overflow="crop")
        line.append(self.TITLE, style="bold")
        line.append("  ")
        line.append_text(self.summary(max(width - len(self.TITLE) - 4, 0)))
        line.truncate(width)
        return line

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        style = self.visual_style.rich_style  # cached by Textual until the styles change
        if style != self._strip_style or width != self._strip_width:
            self._strips, self._strip_style, self._strip_width = {}, style, width
        strip = self._strips.get(y)
        if strip is None:
            if y >= len(self._lines):
                strip = Strip.blank(width, style)
            else:
                strip = Strip(_segments(self._lines[y], self.app.console), self._lines[y].cell_len)
                strip = strip.crop_extend(0, width, style).apply_style(style)
            self._strips[y] = strip
        return strip

    @property
    def lines(self) -> list[Text]:
        """What the pane shows now, line by line (tests read this)."""
        return list(self._lines)

    @property
    def plain(self) -> str:
        return "\n".join(line.plain for line in self._lines)


class Pane(Lines, can_focus=True):
    """A titled, focusable pane (the stylesheet gives it a border)."""


class Bar(Lines, can_focus=False):
    """A one-line strip across the screen: header, pipeline, status, keys."""
