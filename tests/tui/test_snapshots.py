"""SVG snapshots of fixed states: bundled scenarios (fixed seeds), fixed sizes, no running.

Update after an intended change of the look with ``pytest tests/tui --snapshot-update``
and look at the new SVGs before committing them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from backprop_tui.core import Debugger, load_scenario
from backprop_tui.tui.app import DebuggerApp, make_app
from textual.pilot import Pilot

Snap = Callable[..., bool]


def app_for(name: str, steps: int = 0) -> DebuggerApp:
    dbg = Debugger(load_scenario(name))
    dbg.run(steps)
    return make_app(dbg)


def then(*keys: str, focus: str | None = None) -> Callable[[Pilot[Any]], Any]:
    """Focus a pane, press keys, and wait for the maps they ask for (a worker's) to be drawn."""

    async def run(pilot: Pilot[Any]) -> None:
        if focus is not None:
            pilot.app.query_one(f"#{focus}").focus()
            await pilot.pause()
        await pilot.press(*keys)
        for _ in range(3):
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()

    return run


def test_fresh_start_80x24(snap_compare: Snap) -> None:
    assert snap_compare(app_for("xor"), terminal_size=(80, 24), run_before=then())


def test_pending_update_gradients_80x24(snap_compare: Snap) -> None:
    keys = ["space"] * 4 + ["right", "down"]
    assert snap_compare(
        app_for("xor"), terminal_size=(80, 24), run_before=then(*keys, focus="gradients")
    )


def test_after_one_step_120x40(snap_compare: Snap) -> None:
    assert snap_compare(app_for("xor"), terminal_size=(120, 40), run_before=then("n", "n", "n"))


def test_glyphs_heat_maps_160x48(snap_compare: Snap) -> None:
    assert snap_compare(app_for("glyphs"), terminal_size=(160, 48), run_before=then("n", "l", "l"))


def test_no_color_update_table_80x24(snap_compare: Snap, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(
        app_for("xor"), terminal_size=(80, 24), run_before=then("n", focus="updates")
    )


def test_help_screen_80x24(snap_compare: Snap) -> None:
    assert snap_compare(app_for("xor"), terminal_size=(80, 24), run_before=then("question_mark"))


@pytest.mark.parametrize("no_color", [False, True], ids=["colour", "no_color"])
@pytest.mark.parametrize("steps", [0, 500], ids=["before", "trained"])
def test_xor_decision_boundary_120x40(
    snap_compare: Snap, monkeypatch: pytest.MonkeyPatch, steps: int, no_color: bool
) -> None:
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    app = app_for("xor", steps)
    keys = ("right_square_bracket",)  # the output layer: the boundary itself
    assert snap_compare(app, terminal_size=(120, 40), run_before=then(*keys, focus="boundary"))
