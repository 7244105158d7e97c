"""A line chart with axes, drawn in braille dots (2×4 points per character), as Text lines.

Pure: a sequence of values in, lines out. The cost depends on the chart's size, not
on the length of the history, apart from one vectorised pass to bucket the values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from rich.style import Style
from rich.text import Text

from .render import num

_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] within a cell
_BRAILLE = 0x2800


def bucket(values: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """``values`` averaged into at most ``n`` equal buckets (NaN where a bucket has none finite)."""
    if len(values) <= n:
        return values.astype(np.float64, copy=False)
    edges = np.linspace(0, len(values), n + 1).astype(np.int64)
    finite = np.isfinite(values)
    clean = np.where(finite, values, 0.0)
    sums = np.add.reduceat(clean, edges[:-1])
    counts = np.add.reduceat(finite.astype(np.int64), edges[:-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        out: NDArray[np.float64] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return out


def _axis_range(values: NDArray[np.float64]) -> tuple[float, float, bool]:
    """(low, high, log scale) that frame the finite values."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return 0.0, 1.0, False
    low, high = float(finite.min()), float(finite.max())
    if low > 0 and high / low > 100:
        return low, high, True
    if high == low:
        pad = abs(high) * 0.1 or 1.0
        return low - pad, high + pad, False
    return low, high, False


def line_chart(
    values: Sequence[float] | NDArray[np.float64],
    width: int,
    height: int,
    first_x: int = 1,
    x_name: str = "step",
    style: Style | str = "",
) -> list[Text]:
    """``values`` plotted against their index (starting at ``first_x``) in ``width``×``height``.

    The last line is the x axis; the y axis carries the top and bottom values and
    says "log" when the values span more than two decades. In one line there is no
    room for the x axis: the plot's line alone, after its range ("0.0194–2.42").
    """
    data = np.asarray(values, dtype=np.float64)
    low, high, log = _axis_range(data)
    top, bottom = num(high, 3), num(low, 3)
    single = height == 1
    if single:
        top = bottom = f"{bottom}–{top}" + (" log" if log else "")
    label_width = max(len(top), len(bottom), 3 if log else 0)
    plot_w, plot_h = width - label_width - 1, 1 if single else height - 1
    if plot_w < 4 or plot_h < 1 or not data.size:
        return [Text("no history yet" if not data.size else "", no_wrap=True)]
    points = bucket(data, plot_w * 2)
    if 1 < len(points) < plot_w * 2:  # a short history is stretched over the full width
        points = np.interp(
            np.linspace(0, len(points) - 1, plot_w * 2), np.arange(len(points)), points
        )
    if log:
        points = np.log10(np.where(points > 0, points, np.nan))
        low, high = math.log10(low), math.log10(high)
    span = (high - low) or 1.0
    rows = plot_h * 4
    cells = np.zeros((plot_h, plot_w), dtype=np.int64)
    previous: int | None = None
    for px, value in enumerate(points):
        if not math.isfinite(value):
            previous = None
            continue
        py = rows - 1 - round((value - low) / span * (rows - 1))
        lo_y, hi_y = (py, py) if previous is None else sorted((py, previous))
        for y in range(lo_y, hi_y + 1):
            cells[y // 4, px // 2] |= _DOTS[y % 4][px % 2]
        previous = py
    lines = []
    for r in range(plot_h):
        label = top if r == 0 else bottom if r == plot_h - 1 else ("log" if log and r == 1 else "")
        tick = "┤" if r in (0, plot_h - 1) else "│"
        line = Text(label.rjust(label_width) + tick, no_wrap=True, style="")
        line.stylize("dim", 0, label_width + 1)
        line.append("".join(chr(_BRAILLE + int(v)) if v else " " for v in cells[r]), style=style)
        lines.append(line)
    if single:
        return lines
    last_x = first_x + len(data) - 1
    left, right = str(first_x), f"{last_x} {x_name}"
    rule = "─" * max(plot_w - len(left) - len(right), 1)
    axis = Text(" " * label_width + "└" + left + rule + right, no_wrap=True, style="dim")
    lines.append(axis)
    return lines
