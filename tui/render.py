"""Pure drawing: numbers with their sign, and arrays as heat maps, as ``rich.text.Text``.

Nothing here knows about Textual or the debugger; every function takes arrays and
sizes and returns lines, so each can be tested on its own. Heat maps carry their
meaning in the characters as well as the colours: with ``Palette.glyphs`` (used
under ``NO_COLOR``) a cell reads ``+7`` or ``-3``, the sign and a 0–9 magnitude.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.color import Color
from rich.style import Style
from rich.text import Span, Text

LEVELS = 9  # magnitude steps on each side of zero
CELL = 2  # characters per heat-map cell: roughly square in a terminal
CURSOR = Style(reverse=True, bold=True)
NO_STYLE = Style()
DIM = Style(dim=True)
BAD = Style(bold=True, color="yellow", bgcolor="red")  # a NaN or inf cell: "!!"


def num(x: float, sig: int = 4) -> str:
    """``x`` with its sign and ``sig`` significant digits: ``+0.1234``, ``-1.234e-05``, ``0``."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    size = abs(x)
    if 1e-3 <= size < 10**sig:
        decimals = max(0, sig - 1 - math.floor(math.log10(size)))
        text = f"{x:+.{decimals}f}"
        if float(text) != 0:
            return text
    return f"{x:+.{max(sig - 1, 0)}e}"


def short(x: float) -> str:
    """A data value in few characters, with its sign: ``+1``, ``-0.25``, ``0``."""
    return "0" if x == 0 else f"{x:+.3g}"


def num_width(sig: int = 4) -> int:
    """The widest ``num(x, sig)`` usually is: sign, digits, point and ``e-05``."""
    return sig + 6


def count(n: int) -> str:
    """A whole number with thousands separators: ``401,408``."""
    return f"{n:,}"


@dataclass(frozen=True)
class Palette:
    """The diverging colour scale: ``negative`` ← ``zero`` → ``positive``, as hex colours.

    ``glyphs`` draws heat-map cells as sign and digit instead of colour (for ``NO_COLOR``).
    """

    negative: str = "#1f6fd1"
    zero: str = "#1e1e1e"
    positive: str = "#d1453b"
    glyphs: bool = False

    def level_style(self, level: int, strength: float = 1.0) -> Style:
        """The background for a signed level in ``-LEVELS..LEVELS``."""
        return _level_style(self.negative, self.zero, self.positive, level, strength)


@lru_cache(maxsize=512)
def _level_style(negative: str, zero: str, positive: str, level: int, strength: float) -> Style:
    if level == 0:
        return Style(bgcolor=Color.parse(zero))
    end = Color.parse(positive if level > 0 else negative).get_truecolor()
    base = Color.parse(zero).get_truecolor()
    t = strength * abs(level) / LEVELS
    mixed = tuple(round(b + (e - b) * t) for b, e in zip(base, end, strict=True))
    return Style(bgcolor=Color.from_rgb(*mixed))


def level(value: float, scale: float) -> int:
    """Which of the ``-LEVELS..LEVELS`` steps ``value`` falls in, for a scale of ±``scale``."""
    if not math.isfinite(value):
        return LEVELS if value > 0 or math.isnan(value) else -LEVELS
    if scale <= 0:
        return 0
    steps = math.ceil(abs(value) / scale * LEVELS - 1e-9)
    return int(math.copysign(min(steps, LEVELS), value)) if steps else 0


def glyph(lvl: int) -> str:
    """A cell's two characters when colour is off: ``+7``, ``-3``, `` 0``."""
    if lvl == 0:
        return " 0"
    return f"{'+' if lvl > 0 else '-'}{abs(lvl)}"


def scale_of(array: NDArray[Any]) -> float:
    """The largest finite |value|, the ends of the colour scale (0 for an empty array)."""
    data = np.asarray(array)
    if not data.size:
        return 0.0
    high, low = float(np.max(data)), float(np.min(data))
    if math.isfinite(high) and math.isfinite(low):
        return max(abs(high), abs(low))
    finite = np.abs(data[np.isfinite(data)])
    return float(finite.max()) if finite.size else 0.0


@dataclass(frozen=True, eq=False)
class Grid:
    """A 2-D array reduced to at most (rows, cols) cells.

    ``values`` (rows, cols) holds one number per cell (see :func:`downsample`);
    ``row_edges`` (rows + 1,) and ``col_edges`` (cols + 1,) give each cell's block of
    the original array. ``scale`` is the largest |cell|, the ends of the colours;
    ``peak`` the largest |element| of the whole array.
    """

    values: NDArray[np.float64]
    row_edges: NDArray[np.int64]
    col_edges: NDArray[np.int64]
    shape: tuple[int, int]
    scale: float
    peak: float = 0.0

    @property
    def reduced(self) -> bool:
        return self.values.shape != self.shape

    def cell_of(self, row: int, col: int) -> tuple[int, int]:
        """The cell holding the original element (row, col)."""
        r = int(np.searchsorted(self.row_edges, row, side="right")) - 1
        c = int(np.searchsorted(self.col_edges, col, side="right")) - 1
        return r, c

    def block_size(self) -> tuple[int, int]:
        """Elements per cell along each axis, rounded up."""
        rows, cols = self.values.shape
        return math.ceil(self.shape[0] / max(rows, 1)), math.ceil(self.shape[1] / max(cols, 1))


def _edges(n: int, parts: int) -> NDArray[np.int64]:
    """Block boundaries for at most ``parts`` blocks of one whole size (the last may be short)."""
    size = max(math.ceil(n / max(parts, 1)), 1)
    return np.append(np.arange(0, n, size), n).astype(np.int64)


def _sum_rows(data: NDArray[np.float64], size: int) -> NDArray[np.float64]:
    """Sums over blocks of ``size`` rows; the inner axis stays contiguous, which is what
    makes this fast on big arrays (``np.add.reduceat`` is several times slower)."""
    full = data.shape[0] // size
    parts = [data[: full * size].reshape(full, size, data.shape[1]).sum(axis=1)] if full else []
    if full * size < data.shape[0]:
        parts.append(data[full * size :].sum(axis=0, keepdims=True))
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _block_sums(data: NDArray[np.float64], rows: int, cols: int) -> NDArray[np.float64]:
    by_rows = _sum_rows(data, rows)
    summed: NDArray[np.float64] = _sum_rows(np.ascontiguousarray(by_rows.T), cols).T
    return summed


def downsample(array: NDArray[Any], max_rows: int, max_cols: int) -> Grid:
    """Reduce a (rows, cols) array to at most (max_rows, max_cols) cells.

    A cell holds its block's root mean square, signed like the block's sum: an
    exploding weight makes its cell the brightest, a dead region stays at 0, and
    a small array is shown exactly. A NaN or inf anywhere in a block makes the cell
    NaN. The cost is a few passes over the array; the result's size depends only
    on the screen.
    """
    data = np.asarray(array, dtype=np.float64)
    if data.ndim == 1:
        data = data[None, :]
    rows, cols = data.shape
    row_edges, col_edges = _edges(rows, max_rows), _edges(cols, max_cols)
    values = data
    peak = scale_of(data)
    if rows and cols and (len(row_edges) - 1 < rows or len(col_edges) - 1 < cols):
        block_r = int(row_edges[1] - row_edges[0])
        block_c = int(col_edges[1] - col_edges[0])
        finite = np.isfinite(data)
        clean = data if finite.all() else np.where(finite, data, 0.0)
        with np.errstate(over="ignore", invalid="ignore"):
            sums = _block_sums(clean, block_r, block_c)
            squares = _block_sums(clean * clean, block_r, block_c)
        counts = np.outer(np.diff(row_edges), np.diff(col_edges))
        values = np.copysign(np.sqrt(squares / counts), sums)
        if clean is not data:
            bad = _block_sums((~finite).astype(np.float64), block_r, block_c) > 0
            values = np.where(bad, np.nan, values)
    return Grid(values, row_edges, col_edges, (rows, cols), scale_of(values), peak)


def cell_width(cols: int, room: int, palette: Palette) -> int:
    """Characters per heat-map cell: two (square, and room for ``+7``) unless the columns
    fit whole at one character each, which beats merging them."""
    if palette.glyphs or cols * CELL <= room or cols > room:
        return CELL
    return 1


def heat_lines(
    grid: Grid,
    palette: Palette,
    cursor: tuple[int, int] | None = None,
    row_labels: list[str] | None = None,
    cell: int = CELL,
) -> list[Text]:
    """One Text per grid row, ``cell`` characters per cell; ``cursor`` is a (row, col) cell."""
    lines = []
    rows, cols = grid.values.shape
    label_width = max((len(s) for s in row_labels), default=0) if row_labels else 0
    levels = _levels(grid.values, grid.scale)
    for r in range(rows):
        label = row_labels[r].rjust(label_width) + " " if row_labels else ""
        pieces = [label]
        spans = [Span(0, len(label), DIM)] if label else []
        position = len(label)
        row = levels[r]
        starts = [0, *(np.flatnonzero(np.diff(row)) + 1).tolist(), cols]
        if cursor is not None and cursor[0] == r and 0 <= cursor[1] < cols:
            starts = sorted({*starts, cursor[1], cursor[1] + 1})
        for start, stop in itertools.pairwise(starts):
            text, style = _cell(int(row[start]), palette, cursor == (r, start), cell)
            run = text * (stop - start)
            pieces.append(run)
            spans.append(Span(position, position + len(run), style))
            position += len(run)
        lines.append(Text("".join(pieces), spans=spans, no_wrap=True, overflow="crop"))
    return lines


def _cell(lvl: int, palette: Palette, here: bool, width: int = CELL) -> tuple[str, Style]:
    """A cell's characters and style (one run of equal cells shares them)."""
    if lvl > LEVELS:  # not finite
        text, style = "!!"[:width], BAD
    elif palette.glyphs:
        text, style = glyph(lvl), NO_STYLE
    elif here:
        text, style = "[]" if width == CELL else "▪", palette.level_style(lvl)
    else:
        text, style = " " * width, palette.level_style(lvl)
    return text, (style + CURSOR) if here else style


def _levels(values: NDArray[np.float64], scale: float) -> NDArray[np.int64]:
    """``level`` of every cell at once; LEVELS + 1 marks a cell that is not finite."""
    finite = np.isfinite(values)
    if scale <= 0:
        steps = np.zeros(values.shape, dtype=np.int64)
    else:
        clean = np.where(finite, values, 0.0)
        steps = np.minimum(np.ceil(np.abs(clean) / scale * LEVELS - 1e-9), LEVELS).astype(np.int64)
        steps = np.where(clean < 0, -steps, steps)
    return np.where(finite, steps, LEVELS + 1)


def number_lines(
    array: NDArray[Any],
    palette: Palette,
    cursor: tuple[int, int] | None = None,
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
    sig: int = 4,
    uniform: bool = True,
) -> list[Text]:
    """A small 2-D array as a table of signed numbers, tinted by the diverging scale.

    Columns share one width when ``uniform`` (a matrix), else each is as wide as it needs.
    """
    data = np.asarray(array, dtype=np.float64)
    if data.ndim == 1:
        data = data[None, :]
    scale = scale_of(data)
    cells = [[num(float(v), sig) for v in row] for row in data]
    labels = col_labels or [""] * data.shape[1]
    widths = [
        max([len(labels[c]), 1] + [len(row[c]) for row in cells]) for c in range(data.shape[1])
    ]
    if uniform:
        widths = [max(widths, default=1)] * len(widths)
    label_width = max((len(s) for s in row_labels), default=0) if row_labels else 0
    lines = []
    if col_labels:
        head = Text(" " * (label_width + 1 if row_labels else 0), no_wrap=True)
        head.append(
            " ".join(s.rjust(w) for s, w in zip(col_labels, widths, strict=True)), style="dim"
        )
        lines.append(head)
    for r, row in enumerate(cells):
        line = Text(no_wrap=True, overflow="crop")
        if row_labels:
            line.append(row_labels[r].rjust(label_width) + " ", style="dim")
        for c, cell in enumerate(row):
            if c:
                line.append(" ")
            style = (
                Style()
                if palette.glyphs
                else palette.level_style(level(float(data[r, c]), scale), strength=0.45)
            )
            if cursor == (r, c):
                style += CURSOR
            line.append(cell.rjust(widths[c]), style=style)
        lines.append(line)
    return lines


def numbers_width(shape: tuple[int, ...], sig: int = 4, label_width: int = 0) -> int:
    """Columns that ``number_lines`` needs at most for an array of ``shape``."""
    cols = shape[-1] if shape else 1
    return (label_width + 1 if label_width else 0) + cols * (num_width(sig) + 1) - 1


def legend(scale: float, palette: Palette, width: int) -> Text:
    """The colour scale with its ends labelled, fitted into ``width`` columns."""
    lo, hi = num(-scale, 3), num(scale, 3)
    line = Text(no_wrap=True, overflow="crop")
    if palette.glyphs:
        text = f"cell = sign and |v|/{num(scale, 3).lstrip('+')}×9: -9 … 0 … +9"
        return Text(text if len(text) <= width else f"±9 = {hi}"[:width], no_wrap=True)
    ramp = list(range(-LEVELS, LEVELS + 1, 3 if width < 40 else 1))
    if len(lo) + len(hi) + 2 + len(ramp) > width:
        return Text(f"{lo}…{hi}"[:width], no_wrap=True)
    line.append(lo + " ", style="dim")
    for lvl in ramp:
        line.append(" ", style=palette.level_style(lvl))
    line.append(" " + hi, style="dim")
    return line


def wrap(text: str, width: int, style: str = "") -> list[Text]:
    """Prose broken into lines of at most ``width`` columns, at spaces, but never between
    a word and the number after it ("val_loss 0.1291"), around an ``=`` ("lr = 0.01") nor
    inside brackets ("a_prev[b, y·1+0, 0]"), where the whole fits a line. Long formulas
    still break at their other spaces, beside an operator, as written maths does."""
    import textwrap

    width = max(width, 1)
    lines = textwrap.wrap(_keep_together(text, width), width)
    return [Text(line.replace(_NO_BREAK, " "), style=style, no_wrap=True) for line in lines]


_NO_BREAK = "\u00a0"  # textwrap breaks lines at ASCII spaces only
_NUMBER = re.compile(r"[-+]?(?:\.?\d|(?:nan|inf)\b)")


def _keep_together(text: str, width: int) -> str:
    """``text`` with the spaces :func:`wrap` must not break at made no-break spaces."""
    words = text.split(" ")
    out = [words[0]]
    for word in words[1:]:
        before = out[-1]
        inside = before.count("[") > before.count("]")  # an index: "a_prev[b, y, 0]"
        joins = bool(before) and (
            inside or word == "=" or before.endswith("=") or bool(_NUMBER.match(word))
        )
        if joins and len(before) + 1 + len(word) <= width:
            out[-1] = before + _NO_BREAK + word
        else:
            out.append(word)
    return " ".join(out)


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` with an ellipsis, only ever at a word boundary or its end."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    cut = text[: width - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > width // 2 else cut).rstrip() + "…"
