"""Titled arrays laid out in a pane: as numbers when they fit, as heat maps when they don't.

Pure functions of arrays and sizes. Heat maps are cached on the block's key (the
step and tensor it shows) and the cell size, so redrawing an unchanged tensor
costs nothing and drawing a big one costs one pass over it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.text import Text

from .render import (
    Grid,
    Palette,
    cell_width,
    downsample,
    fit,
    heat_lines,
    legend,
    num,
    number_lines,
)

GAP = 3  # columns between blocks side by side


@dataclass(frozen=True, eq=False)
class Block:
    """One array to show: ``array`` is (rows, cols); rows are usually the batch's samples."""

    title: str
    array: NDArray[Any]
    key: Hashable = None  # what the array is (step, tensor); None: do not cache
    row_labels: list[str] | None = None
    optional: bool = False  # dropped first when space is short
    zero_note: bool = False  # say what fraction is exactly zero (dead ReLU units)


class GridCache:
    """The last few downsampled grids, keyed on (block key, rows, cols)."""

    def __init__(self, size: int = 48) -> None:
        self.size = size
        self._grids: OrderedDict[Hashable, Grid] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0

    def get(self, key: Hashable, array: NDArray[Any], rows: int, cols: int) -> Grid:
        """The grid of ``array``, worked out once per key and size. The continue
        worker fills it ahead of a redraw (``Session.preparers``), so it is locked."""
        if key is None:
            return downsample(array, rows, cols)
        full = (key, rows, cols)
        with self._lock:
            grid = self._grids.get(full)
            if grid is not None:
                self.hits += 1
                self._grids.move_to_end(full)
                return grid
        grid = downsample(array, rows, cols)
        with self._lock:
            self._grids[full] = grid
            if len(self._grids) > self.size:
                self._grids.popitem(last=False)
        return grid


def _matrix(array: NDArray[Any]) -> NDArray[Any]:
    data = np.asarray(array)
    return data[None, :] if data.ndim == 1 else data.reshape(data.shape[0], -1)


def shape_text(array: NDArray[Any]) -> str:
    return "×".join(str(n) for n in np.shape(array))


def stats_text(array: NDArray[Any], zero_note: bool = False, width: int | None = None) -> str:
    """min, max and mean of an array, how many are not finite, and the fraction that is
    exactly zero when asked; within ``width``, the mean goes first, then the zero share,
    then the words, so that no number is cut."""
    data = np.asarray(array, dtype=np.float64)
    finite = data[np.isfinite(data)]
    if not finite.size:
        return "no finite values"
    lo, hi = num(float(finite.min()), 3), num(float(finite.max()), 3)
    mean = f" mean {num(float(finite.mean()), 3)}"
    bad = data.size - finite.size
    not_finite = f" · {bad} not finite" if bad else ""
    zero = f" · {100 * float(np.mean(data == 0)):.0f}% zero" if zero_note else ""
    forms = (
        f"min {lo} max {hi}{mean}{not_finite}{zero}",
        f"min {lo} max {hi}{not_finite}{zero}",
        f"min {lo} max {hi}{not_finite}",
        f"{lo} to {hi}{not_finite}",  # not lo…hi: that is how a colour scale is written
        f"{lo} to {hi}",
    )
    if width is None:
        return forms[0]
    return next((form for form in forms if len(form) <= width), forms[-1])


def numbers(block: Block, palette: Palette) -> list[Text]:
    data = _matrix(block.array)
    cols = [str(j) for j in range(data.shape[1])]
    lines = [Text(f"{block.title} ({shape_text(block.array)})", style="bold", no_wrap=True)]
    lines += number_lines(
        data, palette, row_labels=block.row_labels, col_labels=cols, sig=3, uniform=False
    )
    return lines


def heat(block: Block, palette: Palette, width: int, height: int, cache: GridCache) -> list[Text]:
    """Title, heat map, legend and summary within ``width``×``height`` (height ≥ 4)."""
    data = _matrix(block.array)
    cell = cell_width(data.shape[1], width, palette)
    grid = cache.get(block.key, data, max(height - 3, 1), max(width // cell, 1))
    shaped = f"{block.title} ({shape_text(block.array)})"
    forms = [shaped, block.title]  # what gives way first when the column is narrow
    if grid.reduced:
        rows, cols = grid.block_size()
        forms.insert(0, f"{shaped} · cell {rows}×{cols}")
    title = next((form for form in forms if len(form) <= width), forms[-1])
    lines = [Text(fit(title, width), style="bold", no_wrap=True)]
    lines += heat_lines(grid, palette, cell=cell)
    lines.append(legend(grid.scale, palette, width))
    stats = stats_text(data, block.zero_note, width)
    lines.append(Text(fit(stats, width), style="dim", no_wrap=True))
    return lines


def _side_by_side(columns: list[list[Text]], widths: list[int]) -> list[Text]:
    out = []
    for y in range(max(len(c) for c in columns)):
        line = Text(no_wrap=True, overflow="crop")
        for i, column in enumerate(columns):
            if i:
                line.append(" " * GAP)
            piece = column[y] if y < len(column) else Text()
            line.append_text(piece)
            if i < len(columns) - 1:
                line.append(" " * (widths[i] - piece.cell_len))
        out.append(line)
    return out


def _stacked(columns: list[list[Text]], gap: bool = True) -> list[Text]:
    out: list[Text] = []
    for i, column in enumerate(columns):
        if i and gap:
            out.append(Text())
        out += column
    return out


def _as_numbers(
    blocks: list[Block], palette: Palette, width: int, height: int
) -> list[Text] | None:
    rendered = [numbers(b, palette) for b in blocks]
    widths = [max(line.cell_len for line in lines) for lines in rendered]
    if sum(widths) + GAP * (len(blocks) - 1) <= width and max(map(len, rendered)) <= height:
        return _side_by_side(rendered, widths)
    if max(widths) <= width:
        if sum(map(len, rendered)) + len(blocks) - 1 <= height:
            return _stacked(rendered)
        if sum(map(len, rendered)) <= height:
            return _stacked(rendered, gap=False)
    return None


def _too_big(block: Block, width: int, height: int) -> bool:
    rows, cols = _matrix(block.array).shape
    return bool(rows > height or cols * 7 > width)  # even short numbers ("+0.123") need 7


def arrange(
    blocks: list[Block], palette: Palette, width: int, height: int, cache: GridCache
) -> list[Text]:
    """Lay ``blocks`` out in ``width``×``height``: numbers if they fit, else heat maps
    (kept in ``cache``, the session's own)."""
    if not blocks:
        return []
    candidates = [blocks, [b for b in blocks if not b.optional]]
    for chosen in candidates:
        if chosen and not any(_too_big(b, width, height) for b in chosen):
            lines = _as_numbers(chosen, palette, width, height)
            if lines is not None:
                return lines
    chosen = candidates[1] or blocks
    n = len(chosen)
    each = (width - GAP * (n - 1)) // n
    if each >= 16 and height >= 5:
        columns = [heat(b, palette, each, height, cache) for b in chosen]
        return _side_by_side(columns, [each] * n)
    each_h = (height - (n - 1)) // n
    if each_h >= 5:
        return _stacked([heat(b, palette, width, each_h, cache) for b in chosen])
    return [
        Text(fit(f"{b.title} {stats_text(b.array, width=width - len(b.title) - 1)}", width))
        for b in chosen
    ]
