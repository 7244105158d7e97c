"""Which layout the screen size gets, and the pane heights of the compact one.

Large terminals show every pane in two columns (the stylesheet sizes them). Below
``FULL_WIDTH``×``FULL_HEIGHT`` the panes stack in one column: the focused pane
(with the gradients and the chain rule together, as one reads the other) gets the
room and the rest fold to a one-line summary, like an accordion.
"""

from __future__ import annotations

FULL_WIDTH = 110
FULL_HEIGHT = 32
BARS = 4  # header, pipeline, status and key lines
PAIRED = ("gradients", "chain")
PANES = (  # tab order
    "network",
    "boundary",
    "activations",
    "chart",
    "log",
    "gradients",
    "chain",
    "updates",
)


def compact(width: int, height: int) -> bool:
    return width < FULL_WIDTH or height < FULL_HEIGHT


def expanded(focused: str | None) -> tuple[str, ...]:
    """Panes that stay open in the compact layout when ``focused`` has the focus."""
    if focused in PAIRED:
        return PAIRED
    return (focused or "network",)


def compact_heights(
    panes: list[str], focused: str | None, height: int, wanted: dict[str, int]
) -> dict[str, int]:
    """Rows per pane (border included) in the compact layout of a ``height``-row screen.

    Folded panes get one row; the open ones share the rest, each first getting what
    it asks for in ``wanted`` (when it asks) and the last open one the remainder.
    """
    open_ = [p for p in panes if p in expanded(focused)]
    rows = {p: 1 for p in panes}
    room = max(height - BARS - (len(panes) - len(open_)), len(open_))
    for name in open_[:-1]:
        share = min(wanted.get(name, room // len(open_)), room - 3 * (len(open_) - 1))
        rows[name] = max(share, 1)
        room -= rows[name]
    if open_:
        rows[open_[-1]] = max(room, 1)
    return rows
