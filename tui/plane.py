"""The input plane as text: a map coloured by class or by value, the data's points on top.

Pure: an :class:`~backprop_tui.core.InputMap` and a size in, ``rich.text.Text``
lines out. In colour each character holds two grid points, one above the other
(``▀``: the foreground is the upper point, the background the lower). With
``Palette.glyphs`` (``NO_COLOR``) a character is one point: a class's own
character, or a digit 0–9 of the value; training points are letters (``o``,
``x``, …, one per class) and validation points the same letters in capitals.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from backprop_tui.core import InputMap, PlanePoints
from numpy.typing import NDArray
from rich.color import Color
from rich.style import Style
from rich.text import Span, Text

from .render import BAD, LEVELS, Palette

HALF = "▀"
LIGHTS = 4  # lightness steps of a class's colour, by the network's confidence
REGION = 0.5  # how strong the map's colours are: the points are drawn at full strength
POINT_LIGHT = 0.35  # and mixed with white
EXTRA_CLASS_COLOURS = ("#3fa34d", "#d9a21b", "#8e5cc4", "#2aa5a5", "#c9579a", "#9a9a9a")
CLASS_CHARS = ".-:=+~^*#%"  # the map's character per class without colour
POINT_CHARS = "oxvsdzwkae"  # a training point's letter per class; validation: the capital
TRAIN_DOT, VALIDATION_DOT = "●", "○"
NAN_CODE = -1


def class_colour(palette: Palette, c: int) -> str:
    """The colour of class ``c``: the palette's two ends first, as a one-unit sigmoid's 0 and 1."""
    colours = (palette.negative, palette.positive, *EXTRA_CLASS_COLOURS)
    return colours[c % len(colours)]


def resample(values: NDArray[np.float64], rows: int, cols: int) -> NDArray[np.float64]:
    """The nearest grid point for each of ``rows``×``cols`` cells (the map may be coarser)."""
    r = ((np.arange(rows) + 0.5) * values.shape[0] / rows).astype(np.int64)
    c = ((np.arange(cols) + 0.5) * values.shape[1] / cols).astype(np.int64)
    return values[np.ix_(r, c)]


def value_levels(m: InputMap, values: NDArray[np.float64]) -> NDArray[np.int64]:
    """Each value's signed step in ``-LEVELS..LEVELS`` about ``value_mid`` (±inf: an end)."""
    lo, hi = m.value_range
    mid = m.value_mid
    with np.errstate(all="ignore"):
        up = (values - mid) / (hi - mid) if hi > mid else np.zeros_like(values)
        down = (values - mid) / (mid - lo) if mid > lo else np.zeros_like(values)
        t = np.clip(np.where(values >= mid, up, down), -1.0, 1.0)
        t = np.where(np.isfinite(values), t, np.sign(np.nan_to_num(values, nan=1.0)))
    found: NDArray[np.int64] = np.rint(t * LEVELS).astype(np.int64)
    return found


def codes(m: InputMap, unit: int, rows: int, cols: int, digits: bool = False) -> NDArray[np.int64]:
    """One code per cell (rows, cols): class·LIGHTS + lightness for a class map, a value's
    level + LEVELS for a unit's map (with ``digits``, its digit 0–9 on ``value_range``);
    NAN_CODE where the network gave NaN."""
    values = resample(m.values, rows, cols)
    nan = ~np.isfinite(values).all(axis=2)
    if m.kind == "classes":
        with np.errstate(all="ignore"):
            probs = values
            if m.activation != "softmax":
                shifted = values - values.max(axis=2, keepdims=True)
                probs = np.exp(shifted) / np.exp(shifted).sum(axis=2, keepdims=True)
            k = values.shape[2]
            sure = (probs.max(axis=2) - 1 / k) / (1 - 1 / k)
            light = np.clip(np.nan_to_num(sure) * LIGHTS, 0, LIGHTS - 1).astype(np.int64)
            found = np.argmax(np.nan_to_num(values, nan=-np.inf), axis=2) * LIGHTS + light
    elif digits:
        lo, hi = m.value_range
        with np.errstate(all="ignore"):
            tenths = np.floor((values[:, :, unit] - lo) / (hi - lo) * 10) if hi > lo else 0.0
        found = np.clip(np.nan_to_num(tenths), 0, 9).astype(np.int64)
    else:
        found = value_levels(m, values[:, :, unit]) + LEVELS
    return np.where(nan, NAN_CODE, found).astype(np.int64)


def _mix(base: str, end: str, t: float) -> Color:
    b = Color.parse(base).get_truecolor()
    e = Color.parse(end).get_truecolor()
    return Color.from_rgb(*(round(x + (y - x) * t) for x, y in zip(b, e, strict=True)))


@lru_cache(maxsize=256)
def code_colour(palette: Palette, classes: bool, code: int) -> Color:
    if code == NAN_CODE:
        return BAD.bgcolor or Color.parse("red")
    if classes:
        c, light = divmod(code, LIGHTS)
        t = 0.2 + (REGION - 0.2) * light / (LIGHTS - 1)
        return _mix(palette.zero, class_colour(palette, c), t)
    bg = palette.level_style(code - LEVELS, REGION).bgcolor
    return bg or Color.parse(palette.zero)


@lru_cache(maxsize=1024)
def _pair(palette: Palette, classes: bool, top: int, bottom: int) -> Style:
    return Style(
        color=code_colour(palette, classes, top), bgcolor=code_colour(palette, classes, bottom)
    )


def code_char(m: InputMap, code: int) -> tuple[str, Style]:
    """A cell's character without colour (``code`` from ``codes(digits=True)``): a class's
    own character (dim where the network is unsure), or the value's digit 0–9."""
    if code == NAN_CODE:
        return "!", BAD
    if m.kind == "classes":
        c, light = divmod(code, LIGHTS)
        return CLASS_CHARS[c % len(CLASS_CHARS)], Style(dim=light < LIGHTS // 2)
    return str(code), Style()


def point_mark(m: InputMap, label: float, validation: bool, palette: Palette) -> tuple[str, Style]:
    """How one sample is drawn: its class's colour (or letter), training filled, validation hollow."""
    if palette.glyphs:
        letter = POINT_CHARS[int(label) % len(POINT_CHARS)] if m.classes else "o"
        return (letter.upper() if validation else letter), Style(bold=True)
    if m.classes:
        colour = class_colour(palette, int(label))
    else:
        target = value_levels(m, np.array([label]))[0]
        found = palette.level_style(int(target)).bgcolor
        colour = found.get_truecolor().hex if found is not None else palette.positive
    return (VALIDATION_DOT if validation else TRAIN_DOT), _point_style(colour)


@lru_cache(maxsize=256)
def _point_style(colour: str) -> Style:
    # lighter than any colour of the map, so a point stands out on its own class
    return Style(color=_mix(colour, "#ffffff", POINT_LIGHT), bold=True)


def point_cells(
    m: InputMap, points: PlanePoints, rows: int, cols: int
) -> list[tuple[int, int, float]]:
    """(row, col, label) of the cells of a ``rows``×``cols`` picture of the plane that hold
    samples, each once, with the label of the last sample there: as many as there are
    cells at most, however big the data."""
    if not len(points.xy):
        return []
    (x_lo, x_hi), (y_lo, y_hi) = m.x_range, m.y_range
    with np.errstate(all="ignore"):
        col = np.floor((points.xy[:, 0] - x_lo) / (x_hi - x_lo) * cols)
        row = np.floor((y_hi - points.xy[:, 1]) / (y_hi - y_lo) * rows)
    inside = np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col < cols)
    inside &= (row >= 0) & (row < rows)
    cell = (row[inside] * cols + col[inside]).astype(np.int64)
    labels = points.labels[inside]
    # np.unique keeps the first of each cell: reversed, that is the last sample drawn
    found, first = np.unique(cell[::-1], return_index=True)
    return [
        (int(flat // cols), int(flat % cols), float(label))
        for flat, label in zip(found, labels[::-1][first], strict=True)
    ]


def map_lines(
    m: InputMap, unit: int, rows: int, cols: int, palette: Palette, points: bool = True
) -> list[Text]:
    """``rows`` lines of ``cols`` characters: the map of ``unit`` (or the classes), with the
    training points on top of the validation points."""
    pixel_rows = rows if palette.glyphs else rows * 2
    grid = codes(m, unit, pixel_rows, cols, digits=palette.glyphs)
    marks: dict[tuple[int, int], tuple[str, Style]] = {}
    if points:
        marks = _marks(m, grid, pixel_rows, cols, palette)
    classes = m.kind == "classes"
    # A cell's key: its code, or in colour the codes of its two halves (NAN_CODE is -1).
    if palette.glyphs:
        cell_keys = grid
    else:
        cell_keys = (grid[0::2] + 1) * (grid.max(initial=0) + 2) + grid[1::2] + 1
    marked = np.zeros((rows, cols), dtype=bool)
    for y, x in marks:
        marked[y, x] = True
    # Cells alike go out as one span: a run ends where the key changes or at a point.
    starts = np.ones((rows, cols), dtype=bool)
    starts[:, 1:] = (cell_keys[:, 1:] != cell_keys[:, :-1]) | marked[:, 1:] | marked[:, :-1]
    looks: dict[int, tuple[str, Style]] = {}
    lines = []
    for y in range(rows):
        firsts = np.flatnonzero(starts[y]).tolist()
        plain: list[str] = []
        spans: list[Span] = []
        at = 0
        for x, end in zip(firsts, [*firsts[1:], cols], strict=True):
            mark = marks.get((y, x)) if marked[y, x] else None
            if mark is not None:
                char, style = mark
            else:
                key = int(cell_keys[y, x])
                look = looks.get(key)
                if look is None:
                    if palette.glyphs:
                        look = code_char(m, int(grid[y, x]))
                    else:
                        top, bottom = int(grid[2 * y, x]), int(grid[2 * y + 1, x])
                        look = HALF, _pair(palette, classes, top, bottom)
                    looks[key] = look
                char, style = look
            text = char * (end - x)
            plain.append(text)
            if style:  # as Text.append: a null style adds no span
                spans.append(Span(at, at + len(text), style))
            at += len(text)
        lines.append(Text("".join(plain), no_wrap=True, overflow="crop", spans=spans))
    return lines


def _marks(
    m: InputMap, grid: NDArray[np.int64], pixel_rows: int, cols: int, palette: Palette
) -> dict[tuple[int, int], tuple[str, Style]]:
    """(text row, col) → how the sample there is drawn: validation points first, training
    points over them."""
    marks: dict[tuple[int, int], tuple[str, Style]] = {}
    looks: dict[tuple[float, bool, int], tuple[str, Style]] = {}
    classes = m.kind == "classes"
    for validation, pts in ((True, m.validation), (False, m.train)):
        for r, c, label in point_cells(m, pts, pixel_rows, cols):
            code = -2 if palette.glyphs else int(grid[r, c])
            look = looks.get((label, validation, code))
            if look is None:
                char, style = point_mark(m, label, validation, palette)
                if not palette.glyphs:  # on the colour of the half it falls in
                    style = style + Style(bgcolor=code_colour(palette, classes, code))
                look = looks[(label, validation, code)] = (char, style)
            marks[(r if palette.glyphs else r // 2, c)] = look
    return marks


def legend(m: InputMap, palette: Palette) -> Text:
    """What the colours (or characters) mean, and how the points are drawn."""
    out = Text(no_wrap=True, overflow="ellipsis")
    if m.kind == "classes":
        for c, name in enumerate(m.class_names[: m.classes]):
            if palette.glyphs:
                out.append(f"{CLASS_CHARS[c % len(CLASS_CHARS)]} {name}  ")
            else:
                out.append("■", Style(color=class_colour(palette, c)))
                out.append(f" {name}  ")
    else:
        lo, hi = m.value_range
        if palette.glyphs:
            out.append(f"0…9: {lo:.3g}…{hi:.3g}  ")
        else:
            out.append(f"{lo:.3g} ")
            first, last = value_levels(m, np.array([lo, hi]))  # relu: 0 is the bottom
            for lvl in np.linspace(first, last, 7).round().astype(int):
                out.append(" ", palette.level_style(int(lvl), REGION))
            out.append(f" {hi:.3g}  ")
    return out


def points_legend(m: InputMap, palette: Palette) -> str:
    """How the training and validation points look."""
    if palette.glyphs:
        letters = "/".join(POINT_CHARS[: max(m.classes, 1)][:3])
        if len(m.validation.ids):
            return f"{letters} train, {letters.upper()} validation"
        return f"{letters} train"
    if len(m.validation.ids):
        return f"{TRAIN_DOT} train {VALIDATION_DOT} validation"
    return f"{TRAIN_DOT} train"
