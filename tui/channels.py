"""A 4-D activation (batch, H, W, C) as a grid of small heat maps, one per channel, of one sample.

Pure functions of arrays and sizes. All channels share one colour scale (the
sample's largest |value|), so a channel that is dim next to another really is
smaller; tiles are downsampled until the grid fits, and the channels that still
do not fit are counted.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.text import Text

from .blocks import GridCache, stats_text
from .render import Palette, downsample, fit, heat_lines, legend, scale_of

GAP = 1  # columns between tiles


def _labels(prefix: str, start: int, count: int, tile_width: int, total: int) -> str:
    """One label per tile (``c0  c1 …``), or the row's range (``c0–c15``) when they would
    run into each other."""
    if len(f"{prefix}{total - 1}") + 1 <= tile_width + GAP:
        return "".join(f"{prefix}{start + k}".ljust(tile_width + GAP) for k in range(count))
    return f"{prefix}{start}–{prefix}{start + count - 1}"


def _short(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:+.2f}" if abs(value) < 10 else f"{value:+.1e}"


def _number_tiles(image: NDArray[np.float64], width: int, height: int) -> list[Text] | None:
    """Every channel of ``image`` (H, W, C) as a small table of numbers, when all fit."""
    h, w, channels = image.shape
    texts = np.vectorize(_short)(image)
    cell = max(len(t) for t in texts.reshape(-1)) + 1
    tile_width = w * cell
    across = min((width + 2) // (tile_width + 2), channels)
    if across < 1 or math.ceil(channels / across) * (h + 1) > height:
        return None
    lines: list[Text] = []
    for start in range(0, channels, across):
        group = range(start, min(start + across, channels))
        lines.append(
            Text("".join(f"c{c}".ljust(tile_width + 2) for c in group), style="dim", no_wrap=True)
        )
        for y in range(h):
            row = "  ".join("".join(texts[y, x, c].rjust(cell) for x in range(w)) for c in group)
            lines.append(Text(row, no_wrap=True))
    return lines


def _fits(rows: int, cols: int, cell: int, channels: int, width: int, height: int) -> int:
    """How many tiles of rows × cols cells fit in width × height (a label line above each row)."""
    across = max((width + GAP) // (cols * cell + GAP), 0)
    down = height // (rows + 1)
    return min(channels, across * down)


def channel_maps(
    title: str,
    images: NDArray[Any],
    sample: int,
    palette: Palette,
    width: int,
    height: int,
    cache: GridCache,
    key: Hashable,
    zero_note: bool = False,
) -> list[Text]:
    """Title, tiles (one per channel of ``images[sample]``, (H, W, C)), legend and summary."""
    image = np.asarray(images[sample], dtype=np.float64)
    h, w, channels = image.shape
    lines = [Text(fit(f"{title} · {channels} channels", width), style="bold", no_wrap=True)]
    numbers = _number_tiles(image, width, height - 2)
    if numbers is not None:
        return [
            *lines,
            *numbers,
            Text(fit(stats_text(image, zero_note, width), width), style="dim", no_wrap=True),
        ]
    room = height - 3  # title above; legend and summary below
    rows, cols, cell = h, w, 2
    shown = _fits(rows, cols, cell, channels, width, room)
    while shown < channels and (rows > 2 or cols > 2 or (cell > 1 and not palette.glyphs)):
        if cell > 1 and not palette.glyphs:  # a glyph (+7) needs two columns
            cell = 1
        else:
            rows, cols = max(math.ceil(rows / 2), 2), max(math.ceil(cols / 2), 2)
        shown = _fits(rows, cols, cell, channels, width, room)
    if shown == 0:
        return [*lines, Text(fit(stats_text(image, zero_note, width), width), no_wrap=True)]
    scale = scale_of(image)
    tiles = []
    for c in range(shown):
        grid = cache.get((key, c), image[..., c], rows, cols)
        tiles.append(heat_lines(dataclasses.replace(grid, scale=scale), palette, cell=cell))
    tile_width = max(line.cell_len for tile in tiles for line in tile)
    across = max((width + GAP) // (tile_width + GAP), 1)
    for start in range(0, shown, across):
        group = tiles[start : start + across]
        label = Text(no_wrap=True, style="dim")
        label.append(_labels("c", start, len(group), tile_width, channels))
        lines.append(label)
        for y in range(max(len(t) for t in group)):
            line = Text(no_wrap=True, overflow="crop")
            for k, tile in enumerate(group):
                piece = tile[y] if y < len(tile) else Text(" " * tile_width)
                line.append_text(piece)
                if k < len(group) - 1:
                    line.append(" " * (tile_width - piece.cell_len + GAP))
            lines.append(line)
    note = legend(scale, palette, width)
    if shown < channels:
        note.append(f"  … {channels - shown} more channels", style="dim")
    lines.append(note)
    lines.append(Text(fit(stats_text(image, zero_note, width), width), style="dim", no_wrap=True))
    return lines


def filter_tiles(
    kernel: NDArray[Any],
    channel: int,
    cursor: tuple[int, int, int] | None,
    palette: Palette,
    width: int,
    height: int,
) -> list[Text] | None:
    """A conv kernel (kh, kw, in, filters) as one kh × kw heat map per filter, of input
    channel ``channel``, with ``cursor`` (i, j, filter) marked; None when they do not fit."""
    kh, kw, _, filters = kernel.shape
    plane = np.asarray(kernel[:, :, channel, :], dtype=np.float64)
    for cell in (2,) if palette.glyphs else (2, 1):  # a glyph (+7) needs two columns
        tile_width = kw * cell
        across = min((width + GAP) // (tile_width + GAP), filters)
        if across >= 1 and math.ceil(filters / across) * (kh + 1) <= height:
            break
    else:
        return None
    scale = scale_of(plane)
    tiles = []
    for f in range(filters):
        grid = dataclasses.replace(downsample(plane[:, :, f], kh, kw), scale=scale)
        here = (cursor[0], cursor[1]) if cursor is not None and cursor[2] == f else None
        tiles.append(heat_lines(grid, palette, here, cell=cell))
    lines: list[Text] = []
    for start in range(0, filters, across):
        group = tiles[start : start + across]
        label = Text(no_wrap=True, style="dim")
        label.append(_labels("f", start, len(group), tile_width, filters))
        lines.append(label)
        for y in range(kh):
            line = Text(no_wrap=True, overflow="crop")
            for k, tile in enumerate(group):
                line.append_text(tile[y])
                if k < len(group) - 1:
                    line.append(" " * (tile_width - tile[y].cell_len + GAP))
            lines.append(line)
    return lines
