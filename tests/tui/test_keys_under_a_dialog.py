"""A key bound to the app can arrive while a dialog is open (a burst, or a dialog without
an input): what it does to the panes finds them on the main screen, under the dialog."""

from __future__ import annotations

from backprop_tui.core import Debugger, load_scenario
from backprop_tui.tui.app import make_app
from backprop_tui.tui.help_screen import HelpScreen
from tui_helpers import pane_text


async def test_a_refusal_under_a_dialog_reaches_the_status_line() -> None:
    dbg = Debugger(load_scenario("xor"))
    dbg.run(dbg.total_steps)
    app = make_app(dbg)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        app.action_step("phase")  # as a space the dialog did not take would
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert "training finished" in pane_text(app, "status")


async def test_a_redraw_under_a_dialog_draws_the_panes() -> None:
    app = make_app(Debugger(load_scenario("xor")))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        app.session.dbg.step("batch")
        app.redraw_all(force=True)
        await pilot.pause()
        await pilot.press("escape")
        assert "step 1/500" in pane_text(app, "header")
