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


def app_for(name: str) -> DebuggerApp:
    return make_app(Debugger(load_scenario(name)))


def focus(pane: str) -> Callable[[Pilot[Any]], Any]:
    async def run(pilot: Pilot[Any]) -> None:
        pilot.app.query_one(f"#{pane}").focus()
        await pilot.pause()

    return run


def test_fresh_start_80x24(snap_compare: Snap) -> None:
    assert snap_compare(app_for("xor"), terminal_size=(80, 24))


def test_pending_update_gradients_80x24(snap_compare: Snap) -> None:
    keys = ["space"] * 4 + ["right", "down"]
    assert snap_compare(
        app_for("xor"), press=keys, terminal_size=(80, 24), run_before=focus("gradients")
    )


def test_after_one_step_120x40(snap_compare: Snap) -> None:
    assert snap_compare(app_for("xor"), press=["n", "n", "n"], terminal_size=(120, 40))


def test_glyphs_heat_maps_160x48(snap_compare: Snap) -> None:
    assert snap_compare(app_for("glyphs"), press=["n", "l", "l"], terminal_size=(160, 48))


def test_no_color_update_table_80x24(snap_compare: Snap, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(
        app_for("xor"), press=["n"], terminal_size=(80, 24), run_before=focus("updates")
    )


def test_help_screen_80x24(snap_compare: Snap) -> None:
    assert snap_compare(app_for("xor"), press=["question_mark"], terminal_size=(80, 24))
