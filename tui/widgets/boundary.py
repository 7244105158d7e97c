"""The decision boundary: the network's output over its input plane, the data on top.

With the output layer selected, the network's answer at every point of the plane
(by class, or by value for one output unit); with a hidden layer selected, each
of its units as a small tile and the cursor's unit large.

Drawing never computes: the map comes from the engine (``RunView.input_map``),
asked for by a thread worker that holds the engine's lock, one request at a
time; the pane draws the last map that came back, and asks again when the
step, the weights (``session.revision``), the layer or its own size moved on.
A folded pane asks for nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

from backprop_tui.core import InputMap
from rich.style import Style
from rich.text import Text
from textual.message import Message

from ..plane import legend, map_lines, points_legend
from ..render import Palette, fit, wrap
from ..session import Session
from .base import Pane

MapKey = tuple[int, int, int, int, int]  # step, revision, layer, grid cols, grid rows
GUTTER = 6  # the second input's ends, left of the map: "-0.1┤"
MIN_TILE_ROOM = 7  # rows the map needs before tiles of the units are drawn above it


@dataclass(frozen=True)
class Plan:
    """Where things go in a pane of ``width``×``height``: tiles of ``tiles`` units
    (``tile_w``×``tile_h`` characters, ``per_row`` a row) above a map of
    ``map_cols``×``map_rows`` characters."""

    width: int
    map_cols: int
    map_rows: int
    tiles: int = 0
    per_row: int = 1
    tile_w: int = 0
    tile_h: int = 0

    @property
    def tile_lines(self) -> int:
        return math.ceil(self.tiles / self.per_row) * (self.tile_h + 1) if self.tiles else 0


def plan(width: int, height: int, units: int) -> Plan:
    """Tiles for ``units`` units (0: none) where they fit, the rest for the map."""
    room = height - 2  # a title line above, the first input's range below
    tiles = per_row = tile_w = tile_h = 0
    if units > 1 and room >= MIN_TILE_ROOM:
        tile_h = 2 if room < 16 else 3
        tile_w = 3 * tile_h
        per_row = max(1, (width + 1) // (tile_w + 1))
        rows = max(1, (room // 2) // (tile_h + 1))
        tiles = min(units, per_row * rows)
    shape = Plan(width, max(width - GUTTER, 1), 0, tiles, per_row, tile_w, tile_h)
    return Plan(
        width, shape.map_cols, max(room - shape.tile_lines, 1), tiles, per_row, tile_w, tile_h
    )


def edge(value: float, room: int = GUTTER - 1) -> str:
    """A range's end in at most ``room`` characters."""
    for digits in (3, 2, 1):
        text = f"{value:.{digits}g}"
        if len(text) <= room:
            return text
    return f"{value:.0e}"[:room]


class BoundaryPane(Pane):
    TITLE = "decision boundary"

    class MapArrived(Message, bubble=False):
        """The engine's map for ``key`` (or why there is none), from the worker's thread."""

        def __init__(self, key: MapKey, found: InputMap | None, failure: str | None) -> None:
            super().__init__()
            self.key = key
            self.found = found
            self.failure = failure

    def __init__(self, session: Session, *, id: str | None = None) -> None:
        super().__init__(session, id=id)
        self.shown: InputMap | None = None  # the last map the engine handed back
        self.shown_key: MapKey | None = None
        self.asking: MapKey | None = None  # the request in flight
        self.asked = 0  # requests made (tests read it)
        self.failure: str | None = None
        self._drawing_arrival = False
        self._ask_again = False  # a redraw wanted a newer map while one was on its way
        self._drawn: tuple[InputMap, tuple[int, Plan, Palette], list[Text]] | None = None

    def on_mount(self) -> None:
        super().on_mount()
        # Only a sentence to show: the stylesheet gives the room to the other panes.
        self.set_class(self.session.view.no_input_map is not None, "-no-map")

    # -------------------------------------------------------------- reading
    def summary(self, width: int) -> Text:
        note = self.session.view.no_input_map
        if note is not None:  # the whole sentence when it fits; what it comes to otherwise
            short = "no decision boundary: it needs two inputs, Dense layers"
            text = note if len(note) <= width else short
            return Text(fit(text, width), style="italic", no_wrap=True)
        m = self.shown
        if m is None:
            return Text(fit("the network's output over the input plane", width), no_wrap=True)
        return Text(fit(f"{m.layer_name} over the input plane, step {m.step_index}", width))

    def _layout(self, width: int, height: int) -> tuple[int, int, bool, Plan]:
        """(layer, unit, whether the layer's units are drawn one by one, the plan)."""
        s = self.session
        layers = s.view.layers
        layer = min(s.layer, len(layers) - 1)
        units = layers[layer].units
        shown = self.shown
        per_unit = layer < len(layers) - 1 or (
            units > 1 and shown is not None and shown.layer_index == layer and shown.kind == "value"
        )
        unit = min(s.cursor[1], units - 1) if per_unit else 0
        return layer, unit, per_unit, plan(width, height, units if per_unit else 0)

    def build(self, width: int, height: int) -> list[Text]:
        s = self.session
        dbg = s.view
        note = dbg.no_input_map
        if note is not None:
            return wrap(note, width, "italic")
        layer, unit, per_unit, where = self._layout(width, height)
        pixel_rows = where.map_rows if s.palette.glyphs else 2 * where.map_rows
        key = (dbg.step_index, s.revision, layer, where.map_cols, pixel_rows)
        if key != self.shown_key and not self._drawing_arrival:
            self._ask(key)
        m = self.shown
        if self.failure is not None:
            return wrap(self.failure, width, "italic")
        if m is None or m.layer_index != layer or height < 3:
            name = dbg.layers[layer].name
            return [Text(fit(f"{name}: working out the map…", width), style="italic")]
        return [self._title(m, unit, per_unit, key, width), *self._picture(m, unit, where)]

    def _picture(self, m: InputMap, unit: int, where: Plan) -> list[Text]:
        """The tiles and the map, drawn once for each map, unit, plan and palette: a map
        stays on screen through many redraws while a run continues."""
        palette = self.session.palette
        drawn = self._drawn
        if drawn is not None and drawn[0] is m and drawn[1] == (unit, where, palette):
            return drawn[2]
        lines = self._tiles(m, unit, where) if where.tiles else []
        lines += self._map(m, unit, where)
        self._drawn = (m, (unit, where, palette), lines)
        return lines

    def _title(self, m: InputMap, unit: int, per_unit: bool, key: MapKey, width: int) -> Text:
        palette = self.session.palette
        if per_unit:
            what = f"{m.layer_name} unit {unit}/{m.units} {m.activation}"
        elif m.kind == "classes":
            what = f"{m.layer_name}: class"
        else:
            what = f"{m.layer_name} {m.activation}"
        stale = "…" if key != self.shown_key else ""  # a newer map is being worked out
        short = f"unit {unit}/{m.units}" if per_unit else what.split(" ", 1)[-1]
        # The longest form that fits: the points' legend goes first, then the layer's name;
        # the step stays longest (in a replay it says which recorded weights drew the map).
        step = f" · step {m.step_index}"
        forms = ((what + step, True), (what + step, False), (short + step, False), (short, False))
        for head, points in forms:
            line = Text(f"{head}{stale}  ", no_wrap=True, overflow="ellipsis")
            line.append_text(legend(m, palette))
            if points:
                line.append(points_legend(m, palette), style="dim")
            line.rstrip()
            if line.cell_len <= width:
                return line
        line.truncate(width)
        return line

    def _tiles(self, m: InputMap, unit: int, where: Plan) -> list[Text]:
        """The layer's units side by side, the cursor's marked, as many as fit around it."""
        palette = self.session.palette
        first = min(max(unit - where.tiles // 2, 0), m.units - where.tiles)
        shown = list(range(first, first + where.tiles))
        out: list[Text] = []
        for start in range(0, len(shown), where.per_row):
            row = shown[start : start + where.per_row]
            label = Text(no_wrap=True)
            pictures = [map_lines(m, u, where.tile_h, where.tile_w, palette, False) for u in row]
            for u in row:
                style = Style(reverse=True, bold=True) if u == unit else Style(dim=True)
                label.append(f"{u}".ljust(where.tile_w)[: where.tile_w], style)
                label.append(" ")
            out.append(label)
            for y in range(where.tile_h):
                line = Text(no_wrap=True)
                for picture in pictures:
                    line.append_text(picture[y])
                    line.append(" ")
                out.append(line)
        return out

    def _map(self, m: InputMap, unit: int, where: Plan) -> list[Text]:
        """The map with the second input's range at its left and the first's below it."""
        rows = map_lines(m, unit, where.map_rows, where.map_cols, self.session.palette)
        (x_lo, x_hi), (y_lo, y_hi) = m.x_range, m.y_range
        out: list[Text] = []
        middle = len(rows) // 2
        for y, picture in enumerate(rows):
            if y == 0:
                head = edge(y_hi).rjust(GUTTER - 1) + "┤"
            elif y == len(rows) - 1:
                head = edge(y_lo).rjust(GUTTER - 1) + "┤"
            elif y == middle:
                head = "x1".ljust(GUTTER - 1) + "│"
            else:
                head = " " * (GUTTER - 1) + "│"
            line = Text(head, style="dim", no_wrap=True)
            line.append_text(picture)
            out.append(line)
        low, high = edge(x_lo), edge(x_hi)
        gap = max(where.map_cols - len(low) - len(high), 2)
        axis = f"{low}{'x0'.center(gap)}{high}"
        out.append(Text(" " * (GUTTER - 1) + "└" + axis, style="dim", no_wrap=True))
        return out

    # -------------------------------------------------------------- asking
    def _ask(self, key: MapKey) -> None:
        """Have the engine work the map out on a thread; one request at a time."""
        if self.asking is not None:
            self._ask_again = self._ask_again or not self._later_step(key, self.asking)
            return
        if not self.is_attached:
            return
        self.asking = key
        self.asked += 1
        _step, _revision, layer, cols, rows = key
        self.run_worker(
            partial(self._work_out, layer, cols, rows),
            thread=True,
            group="boundary",
            exit_on_error=False,
        )

    def _later_step(self, key: MapKey, asked: MapKey) -> bool:
        """Whether ``key`` differs from the map on its way only by a later step while the
        run continues: the next frame of every pane asks for the newest step anyway, so
        asking again as soon as this one is back would only chase the run."""
        return self.session.running and key[1:] == asked[1:] and key[0] >= asked[0]

    def _work_out(self, layer: int, cols: int, rows: int) -> None:
        """On the worker's thread: ask the engine, holding its lock, then hand the map over."""
        s = self.session
        found: InputMap | None = None
        failure: str | None = None
        with s.lock:
            try:
                found = s.dbg.input_map(cols, rows, layer)
            except Exception as err:  # shown in the pane; the app stays up
                failure = f"the map could not be worked out: {type(err).__name__}: {err}"
            key = (s.dbg.step_index, s.revision, layer, cols, rows)
        # A message, not call_from_thread: that waits for the event loop, which may be
        # closing and waiting for this thread.
        self.post_message(self.MapArrived(key, found, failure))

    def on_boundary_pane_map_arrived(self, message: MapArrived) -> None:
        self._arrived(message.key, message.found, message.failure)

    def _arrived(self, key: MapKey, found: InputMap | None, failure: str | None) -> None:
        self.asking = None
        self.failure = failure
        self.shown_key = key  # a failure is not asked again until something changes
        if found is not None:
            self.shown = found
        # Drawing what arrived asks for nothing, unless a redraw wanted a newer map
        # while this one was on its way: while a run continues the engine has moved on
        # already, and asking on every arrival would chase it as fast as it steps.
        # So requests follow the app's redraws (at most the refresh rate).
        self._drawing_arrival = not self._ask_again
        self._ask_again = False
        try:
            self.redraw()
        finally:
            self._drawing_arrival = False
