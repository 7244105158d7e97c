"""The decision-boundary pane: reached with Tab, drawn from the engine's map, never computing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from backprop_tui.core import Debugger, InputMap, PlanePoints, load_scenario
from backprop_tui.tui.app import DebuggerApp, make_app
from backprop_tui.tui.plane import CLASS_CHARS, HALF, POINT_CHARS, map_lines, point_cells
from backprop_tui.tui.render import Palette
from backprop_tui.tui.widgets.boundary import GUTTER, BoundaryPane
from textual.pilot import Pilot
from tui_helpers import LONG_XOR, debugger_on, pane_text

SMALL = (80, 24)
MEDIUM = (120, 40)
LARGE = (160, 48)


async def settle(app: DebuggerApp, pilot: Pilot[int]) -> None:
    """Let the map asked for arrive and be drawn."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause()


def pane(app: DebuggerApp) -> BoundaryPane:
    return app.query_one("#boundary", BoundaryPane)


def map_rows(app: DebuggerApp) -> list[str]:
    """The map's lines as drawn, without the gutter: between the title and the axis."""
    lines = pane_text(app, "boundary").splitlines()
    rows = [line[GUTTER:] for line in lines if len(line) > GUTTER and line[GUTTER - 1] in "┤│"]
    return rows


@pytest.mark.parametrize("size", [SMALL, MEDIUM])
async def test_tab_reaches_the_map_and_training_changes_it(
    xor: Debugger, size: tuple[int, int]
) -> None:
    app = make_app(xor)
    async with app.run_test(size=size) as pilot:
        await pilot.press("right_square_bracket")  # the output layer: the decision boundary
        app.query_one("#network").focus()
        await pilot.press("tab")
        assert app.focused is pane(app)
        await settle(app, pilot)
        text = pane_text(app, "boundary")
        assert "output sigmoid · step 0" in text
        assert "1.1┤" in text and "-0.1┤" in text and "x0" in text  # the ranges at the edges
        before = pane(app).lines
        assert any(HALF in line.plain for line in before)
        for _ in range(60):
            await pilot.press("n")
        await settle(app, pilot)
        assert "output sigmoid · step 60" in pane_text(app, "boundary")
        assert pane(app).lines != before
        shown = pane(app).shown
        assert shown is not None and shown.step_index == 60
        expected = xor.input_map(shown.shape[1], shown.shape[0])
        assert expected is not None and np.array_equal(shown.values, expected.values)


async def test_a_large_screen_shows_the_pane_without_tab(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=LARGE) as pilot:
        await settle(xor_app, pilot)
        assert not pane(xor_app).folded
        assert "hidden unit 0/4 tanh · step 0" in pane_text(xor_app, "boundary")


async def test_the_map_is_worked_out_off_the_draw_path(xor: Debugger) -> None:
    threads: list[threading.Thread] = []
    real = xor.input_map

    def watched(cols: int, rows: int, layer: int | None = None) -> InputMap | None:
        threads.append(threading.current_thread())
        return real(cols, rows, layer)

    xor.input_map = watched  # type: ignore[method-assign]
    app = make_app(xor)
    async with app.run_test(size=LARGE) as pilot:
        await settle(app, pilot)
        for _ in range(3):
            await pilot.press("n")
        await settle(app, pilot)
        assert threads and all(t is not threading.main_thread() for t in threads)
        width, height = pane(app).content_size
        with app.session.lock:  # a worker cannot compute while the lock is held here
            xor.step("batch")  # the shown map is now a step old
            computed = xor.maps_computed
            lines = pane(app).build(width, height)
            assert xor.maps_computed == computed  # drawing asked for it, and did not compute it
        assert "step 3…" in lines[0].plain  # the old map, marked as being worked out again
        await settle(app, pilot)
        assert xor.maps_computed == computed + 1
        assert "step 4 " in pane_text(app, "boundary")


async def test_time_travel_shows_the_map_of_its_step(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=LARGE) as pilot:
        await pilot.press("right_square_bracket")
        await settle(xor_app, pilot)
        first = pane(xor_app).shown
        await pilot.press("n", "n", "b", "b")
        await settle(xor_app, pilot)
        again = pane(xor_app).shown
        assert first is not None and again is not None and again.step_index == 0
        assert np.array_equal(first.values, again.values)
        assert "step 0" in pane_text(xor_app, "boundary")


async def test_a_hidden_layer_shows_each_unit_and_the_cursor_s_large() -> None:
    app = make_app(Debugger(load_scenario("moons")))
    async with app.run_test(size=LARGE) as pilot:
        await settle(app, pilot)
        text = pane_text(app, "boundary")
        assert "hidden unit 0/16 relu" in text
        assert text.splitlines()[1].split()[:3] == ["0", "1", "2"]  # the tiles' labels
        app.query_one("#boundary").focus()
        await pilot.press("right")
        await settle(app, pilot)
        assert "hidden unit 1/16 relu" in pane_text(app, "boundary")
        shown = pane(app).shown
        assert shown is not None and shown.layer_name == "hidden" and shown.units == 16


async def test_more_inputs_say_the_plane_needs_two() -> None:
    app = make_app(Debugger(load_scenario("glyphs8")))
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("tab")
        await settle(app, pilot)
        assert app.focused is pane(app)
        assert "needs a network with two inputs" in pane_text(app, "boundary")
        assert pane(app).asked == 0


async def test_no_color_reads_as_class_characters_and_point_letters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    dbg = Debugger(load_scenario("moons"))
    dbg.run(40)
    app = make_app(dbg)
    async with app.run_test(size=MEDIUM) as pilot:
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        shown = pane(app).shown
        assert shown is not None and shown.kind == "classes"
        rows = map_rows(app)
        assert len(rows) == shown.shape[0] and len(rows[0]) == shown.shape[1]  # a point a char
        drawn = "".join(rows)
        assert {"o", "x", "O", "X"} <= set(drawn)  # training and validation points of both
        classes = shown.predicted_classes()
        assert classes is not None
        for r, row in enumerate(rows):  # every other cell is its predicted class's character
            for c, char in enumerate(row):
                if char.lower() not in POINT_CHARS:
                    assert char == CLASS_CHARS[classes[r, c]]
        assert set(drawn) - set(POINT_CHARS + POINT_CHARS.upper()) == {".", "-"}


async def test_no_color_value_map_reads_as_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(Debugger(load_scenario("xor")))
    async with app.run_test(size=MEDIUM) as pilot:
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        drawn = "".join(map_rows(app))
        assert set(drawn) - {"o", "x"} <= set("0123456789") and {"o", "x"} <= set(drawn)
        assert "0…9: 0…1" in pane_text(app, "boundary")


async def test_while_a_continue_runs_the_pane_asks_at_most_at_the_refresh_rate(
    scenario_file: Callable[[str], Path],
) -> None:
    dbg = debugger_on(scenario_file(LONG_XOR))
    app = make_app(dbg)  # 10 frames a second
    async with app.run_test(size=SMALL) as pilot:
        app.query_one("#boundary").focus()
        await settle(app, pilot)
        asked = pane(app).asked
        started = time.monotonic()
        await pilot.press("c")
        await pilot.pause(1.2)  # at least two frames of the detailed panes
        await pilot.press("p")
        while app.session.running:
            await pilot.pause(0.01)
        elapsed = time.monotonic() - started
        await settle(app, pilot)
        shown = pane(app).shown
        assert shown is not None and shown.step_index == dbg.step_index > 0
        assert 2 <= pane(app).asked - asked <= 10 * elapsed + 3  # not once a step


# ------------------------------------------------------------------ pure drawing
def _tiny_map(kind: str = "classes") -> InputMap:
    """2×4 grid, two classes split down the middle; one training point of each class."""
    left, right = [0.9, 0.1], [0.2, 0.8]
    values = np.array([[left, left, right, right]] * 2, dtype=np.float64)
    if kind == "value":
        values = values[:, :, 1:]
    points = PlanePoints(np.array([0, 1]), np.array([[0.5, 1.5], [3.5, 0.5]]), np.array([0.0, 1.0]))
    empty = PlanePoints(np.zeros(0, dtype=np.int64), np.zeros((0, 2)), np.zeros(0))
    return InputMap(
        step_index=0,
        layer_index=1,
        layer_name="output",
        activation="softmax" if kind == "classes" else "sigmoid",
        kind="classes" if kind == "classes" else "value",
        values=values,
        x_range=(0.0, 4.0),
        y_range=(0.0, 2.0),
        value_range=(0.0, 1.0),
        value_mid=0.5,
        classes=2,
        class_names=("0", "1"),
        train=points,
        validation=empty,
    )


def test_glyph_lines_put_class_characters_and_points_in_their_cells() -> None:
    lines = [line.plain for line in map_lines(_tiny_map(), 0, 2, 4, Palette(glyphs=True))]
    assert lines == ["o.--", "..-x"]


def test_glyph_value_lines_are_digits() -> None:
    lines = map_lines(_tiny_map("value"), 0, 2, 4, Palette(glyphs=True), points=False)
    assert [line.plain for line in lines] == ["1188", "1188"]


def test_colour_lines_are_half_blocks_two_points_a_character() -> None:
    lines = map_lines(_tiny_map(), 0, 1, 4, Palette(), points=False)
    assert [line.plain for line in lines] == [HALF * 4]
    left, right = lines[0].spans[0].style, lines[0].spans[-1].style
    assert left != right  # the two classes in two colours


TWO_INPUTS = [
    "xor",
    "circles",
    "moons",
    "spirals",
    "overfit",
    "bug_dying_relu",
    "bug_saturation",
    "bug_symmetry",
    "bug_vanishing",
]


@pytest.mark.parametrize("name", TWO_INPUTS)
async def test_trained_to_its_end_the_map_is_the_model_s_own_answer(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")  # a character a grid point: each can be read back
    dbg = Debugger(load_scenario(name))
    dbg.run(dbg.total_steps)
    assert dbg.finished
    app = make_app(dbg)
    async with app.run_test(size=MEDIUM) as pilot:
        await pilot.press(*["right_square_bracket"] * len(dbg.layers))  # the output layer
        await settle(app, pilot)
        shown = pane(app).shown
        assert shown is not None and shown.is_output and shown.step_index == dbg.total_steps
        rows = map_rows(app)
        # the model's own predictions at the grid's cell centres, worked out here
        (x_lo, x_hi), (y_lo, y_hi) = shown.x_range, shown.y_range
        height, width = len(rows), len(rows[0])
        xs = x_lo + (np.arange(width) + 0.5) * (x_hi - x_lo) / width
        ys = y_hi - (np.arange(height) + 0.5) * (y_hi - y_lo) / height
        grid = np.array([[x, y] for y in ys for x in xs])
        out = dbg.backend.predict(grid)[1]
        if out.shape[1] > 1:
            expected = np.argmax(out, axis=1).reshape(height, width)
        else:
            expected = (out[:, 0] >= 0.5).reshape(height, width)
        points = set(POINT_CHARS + POINT_CHARS.upper())
        for r, row in enumerate(rows):
            for c, char in enumerate(row):
                if char in points:
                    continue
                drawn = CLASS_CHARS.index(char) if out.shape[1] > 1 else int(char) >= 5
                assert drawn == expected[r, c], (name, r, c, char)
        # every training point sits in the cell its coordinates fall in, by its class's letter
        data = dbg.scenario.data
        classes = (
            np.argmax(data.y_train, axis=1) if data.y_train.shape[1] > 1 else data.y_train[:, 0]
        )
        for (x0, x1), label in zip(data.x_train, classes, strict=True):
            c = int((x0 - x_lo) / (x_hi - x_lo) * width)
            r = int((y_hi - x1) / (y_hi - y_lo) * height)
            assert rows[r][c] in POINT_CHARS  # a training point's letter (they share cells)
            if name == "xor":
                assert rows[r][c] == POINT_CHARS[int(label)]


def test_points_are_one_a_cell_however_many_samples() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 4, (100_000, 2)) * [1, 0.5]
    labels = (xy[:, 0] > 2).astype(np.float64)
    crowd = PlanePoints(np.arange(len(xy)), xy, labels)
    cells = point_cells(_tiny_map(), crowd, 10, 20)
    assert len(cells) == len({(r, c) for r, c, _ in cells}) <= 200
    assert all(label == (c >= 10) for _r, c, label in cells)  # the class of that side
    last = PlanePoints(np.arange(2), np.array([[0.1, 0.1], [0.1, 0.1]]), np.array([0.0, 1.0]))
    assert point_cells(_tiny_map(), last, 2, 4) == [(1, 0, 1.0)]  # the last one drawn wins


async def test_a_map_is_drawn_once_however_often_the_pane_redraws(
    xor: Debugger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a run continues the pane redraws more often than maps arrive: the picture of
    a map is kept until the map, the unit, the pane's size or the colours change."""
    import backprop_tui.tui.widgets.boundary as boundary

    drawn: list[int] = []

    def counted(m: InputMap, unit: int, *args: object, **kwargs: object) -> list[object]:
        drawn.append(unit)
        return map_lines(m, unit, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(boundary, "map_lines", counted)
    app = make_app(xor)
    async with app.run_test(size=MEDIUM) as pilot:
        await pilot.press("right_square_bracket")  # the output layer: one picture, no tiles
        await settle(app, pilot)
        before, lines = len(drawn), pane(app).lines
        assert before >= 1
        for _ in range(5):
            pane(app).redraw()
        assert len(drawn) == before
        assert pane(app).lines == lines
        await pilot.press("n")  # a new step: a new map, drawn once
        await settle(app, pilot)
        assert len(drawn) == before + 1
        await pilot.press("left_square_bracket")  # the hidden layer: its tiles and its unit
        await settle(app, pilot)
        tiles = len(drawn)
        await pilot.press("right")  # the next unit drawn large: drawn again
        await settle(app, pilot)
        assert len(drawn) > tiles


async def test_while_running_a_map_is_not_asked_again_for_a_later_step_only(
    xor: Debugger,
) -> None:
    """A redraw that wants a later step's map while one is on its way leaves it to the
    next frame; one that wants another layer, or the final step once the run stopped,
    asks again as soon as it is back."""
    app = make_app(xor)
    async with app.run_test(size=MEDIUM) as pilot:
        await settle(app, pilot)
        boundary = pane(app)
        asked = (3, 0, 1, 40, 20)
        app.session.running = True
        assert boundary._later_step((9, 0, 1, 40, 20), asked)
        assert not boundary._later_step((9, 0, 0, 40, 20), asked)  # another layer
        assert not boundary._later_step((9, 1, 1, 40, 20), asked)  # an edit
        assert not boundary._later_step((9, 0, 1, 50, 20), asked)  # another size
        app.session.running = False  # stopped: the final map is wanted at once
        assert not boundary._later_step((9, 0, 1, 40, 20), asked)
