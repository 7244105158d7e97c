"""The app driven by its keys, headless, at 80×24 and at a large size."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from backprop_tui.core import Debugger, load_scenario
from backprop_tui.tui.app import DebuggerApp, make_app
from backprop_tui.tui.help_screen import HelpScreen
from backprop_tui.tui.layout import PANES
from backprop_tui.tui.widgets.base import Lines
from textual.pilot import Pilot
from tui_helpers import EXPLODING, LONG_XOR, debugger_on, pane_text, screen_text

SMALL = (80, 24)
LARGE = (160, 48)
NUMBER = r"[+-]?\d+\.\d+(?:e[+-]\d+)?|0"


async def wait_stopped(app: DebuggerApp, pilot: Pilot[int]) -> None:
    """Wait until a continue (or epoch) run has ended and its last message is handled."""
    deadline = time.monotonic() + 30
    while app.session.running:
        assert time.monotonic() < deadline, "the run did not stop"
        assert app.is_running, "the app stopped"
        await pilot.pause(0.01)
    await pilot.pause()


def lit_stage(app: DebuggerApp) -> str | None:
    """The pipeline stage shown as just done: the furthest in brackets (the last backward
    layer brackets the gradients too, and an update the repeat that follows it)."""
    found = [s for s in re.findall(r"\[(\w+)", pane_text(app, "pipeline")) if s != "repeat"]
    return found[-1] if found else None


async def test_the_pipeline_and_the_status_name_the_same_phase(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=(120, 40)) as pilot:
        await pilot.press("space", "space", "space", "space")  # through the backward pass
        pipeline, status = pane_text(xor_app, "pipeline"), pane_text(xor_app, "status")
        assert "[backward hidden]" in pipeline and "[gradients]" in pipeline
        assert "backward hidden" in status
        await pilot.press("space")
        assert "[update]" in pane_text(xor_app, "pipeline")
        assert "[repeat]" in pane_text(xor_app, "pipeline")


async def test_fresh_start_shows_the_network_the_batch_to_come_and_a_hint(
    xor_app: DebuggerApp,
) -> None:
    async with xor_app.run_test(size=SMALL) as pilot:
        await pilot.pause()
        text = screen_text(xor_app)
        assert "backprop-tui xor" in text and "step 0/500" in text
        assert "hidden  2→4 tanh" in text and "output  4→1 sigmoid" in text
        assert "next batch (4)" in text
        assert "space: step a phase" in text
        assert lit_stage(xor_app) is None  # nothing done yet
        for title in ("activations", "loss history", "log", "gradients", "chain rule", "update"):
            assert f"▸ {title}" in text  # every other pane folded to one line, none lost
        assert "? help" in pane_text(xor_app, "keys")


@pytest.mark.parametrize("size", [SMALL, LARGE])
async def test_space_walks_the_whole_pipeline(xor_app: DebuggerApp, size: tuple[int, int]) -> None:
    async with xor_app.run_test(size=size) as pilot:
        seen = []
        for _ in range(5):
            await pilot.press("space")
            seen.append(lit_stage(xor_app))
        assert seen == ["input", "forward", "loss", "gradients", "update"]
        assert "step 1/500" in pane_text(xor_app, "header")
        assert "loss 0.7286" in pane_text(xor_app, "header")
        await pilot.press("space")
        assert lit_stage(xor_app) == "input"
        assert "step 2/500" in pane_text(xor_app, "header")


async def test_l_steps_one_layer_and_selects_it(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=LARGE) as pilot:
        stages = []
        for _ in range(6):
            await pilot.press("l")
            stages.append((lit_stage(xor_app), xor_app.session.layer))
        assert stages == [
            ("input", 0),
            ("forward", 0),
            ("forward", 1),
            ("loss", 1),
            ("backward", 1),
            ("gradients", 0),
        ]
        assert "[forward hidden]" not in pane_text(xor_app, "pipeline")


def _update_rows(app: DebuggerApp) -> list[list[float]]:
    """The update table's numeric rows as read off the screen: value, gradient, lr·g, change, new."""
    rows = []
    for line in pane_text(app, "updates").splitlines():
        cells = line.split()
        if len(cells) >= 6 and "·" not in line and re.fullmatch(r"\d+(,\d+)?", cells[-6]):
            rows.append([float(c) for c in cells[-5:]])
    return rows


@pytest.mark.parametrize("size", [SMALL, LARGE])
async def test_sgd_update_table_is_value_minus_lr_times_gradient(
    xor_app: DebuggerApp, size: tuple[int, int]
) -> None:
    async with xor_app.run_test(size=size) as pilot:
        for _ in range(4):  # input, forward, loss, backward: the update is pending
            await pilot.press("space")
        xor_app.query_one("#updates", Lines).focus()
        await pilot.pause()
        assert "pending" in pane_text(xor_app, "updates")
        rows = _update_rows(xor_app)
        assert len(rows) >= 4
        for value, gradient, lr_g, change, new in rows:
            assert lr_g == pytest.approx(0.5 * gradient, rel=1e-5, abs=1e-9)
            assert change == pytest.approx(-lr_g, rel=1e-5, abs=1e-9)
            assert new == pytest.approx(value - 0.5 * gradient, rel=1e-5, abs=1e-6)
        pending = rows
        await pilot.press("space")  # the update itself: the table now shows what was applied
        assert "applied in step 1" in pane_text(xor_app, "updates")
        assert _update_rows(xor_app) == pending
        kernel = xor_app.session.dbg.params["hidden.kernel"]
        assert kernel[0, 0] == pytest.approx(pending[0][4], rel=1e-5)


async def test_cursor_moves_and_the_chain_rule_follows(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=SMALL) as pilot:
        await pilot.press("n")  # a whole step: gradients of every layer exist
        xor_app.query_one("#gradients", Lines).focus()
        await pilot.pause()
        assert "hidden.kernel[0,0]" in pane_text(xor_app, "chain")
        await pilot.press("right", "down")
        assert xor_app.session.cursor == (1, 1)
        chain = pane_text(xor_app, "chain")
        assert "dL/dw[1,1] = Σ_b a_prev[b,1] · dL/dz[b,1]" in chain
        gradient = xor_app.session.dbg.grads["hidden.kernel"][1, 1]
        total = re.search(rf"Σ = ({NUMBER})", chain)
        assert total is not None and float(total.group(1)) == pytest.approx(gradient, rel=1e-3)
        assert "✓ same" in chain
        await pilot.press("down")  # onto the bias row
        assert "dL/db[1] = Σ_b dL/dz[b,1]" in pane_text(xor_app, "chain")
        await pilot.press("right_square_bracket")
        assert xor_app.session.layer == 1
        assert xor_app.session.cursor == (4, 0)  # clamped into output's 4×1 kernel plus bias
        assert "output.bias" in pane_text(xor_app, "chain")


async def test_mouse_selects_a_layer_and_a_weight(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=LARGE) as pilot:
        await pilot.press("n")
        await pilot.click("#network", offset=(4, 3))  # border, input line, hidden, output
        assert xor_app.session.layer == 1
        await pilot.click("#network", offset=(4, 2))
        assert xor_app.session.layer == 0
        # the gradient table: border, title, column header, then rows 0, 1 and the bias;
        # click on the second number of row 1 (border and padding are two columns)
        row = pane_text(xor_app, "gradients").splitlines()[3]
        second = [m.start() for m in re.finditer(r"\S+", row)][2]  # label "1", then numbers
        await pilot.click("#gradients", offset=(2 + second, 4))
        assert xor_app.session.cursor == (1, 1)


async def test_c_continues_and_p_pauses(scenario_file: Callable[[str], Path]) -> None:
    dbg = debugger_on(scenario_file(LONG_XOR))
    app = make_app(dbg, fps=20)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("c")
        assert app.session.running
        while dbg.step_index < 200:
            await pilot.pause(0.02)
        assert "running" in pane_text(app, "status")
        await pilot.press("p")
        await wait_stopped(app, pilot)
        assert not app.session.running
        assert "paused" in pane_text(app, "status")
        stopped = dbg.step_index
        await pilot.pause(0.2)
        assert dbg.step_index == stopped
        assert f"step {stopped}/" in pane_text(app, "header")
        await pilot.press("space")  # usable again
        assert dbg.phase == "input"


async def test_refresh_is_bounded_while_running(scenario_file: Callable[[str], Path]) -> None:
    dbg = debugger_on(scenario_file(LONG_XOR))
    app = make_app(dbg, fps=10)
    redraws = 0
    original = app.redraw_all

    def counting(force: bool = False, only: tuple[str, ...] = ()) -> None:
        nonlocal redraws
        redraws += 1
        original(force, only)

    app.redraw_all = counting  # type: ignore[method-assign]
    async with app.run_test(size=SMALL) as pilot:
        started = time.monotonic()
        await pilot.press("c")
        start_steps = dbg.step_index
        deadline = started + 60
        while dbg.step_index - start_steps < 300:  # however long that takes on this machine
            assert time.monotonic() < deadline, "continue took under 300 steps in a minute"
            await pilot.pause(0.01)
        app.action_pause()
        elapsed = time.monotonic() - started
        await wait_stopped(app, pilot)
    # Frames follow the clock, not the steps: at most fps a second, however fast it steps.
    # How many steps a second the screen lets through is a speed figure: bench/bench_ui.py.
    assert redraws <= 10 * elapsed + 3


async def test_keys_answer_while_running(scenario_file: Callable[[str], Path]) -> None:
    dbg = debugger_on(scenario_file(LONG_XOR))
    app = make_app(dbg)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("c")
        await pilot.pause(0.1)
        await pilot.press("tab")
        assert app.focused is not None and app.focused.id == "boundary"
        await pilot.press("space")  # stepping by hand waits for a pause
        assert "p pauses first" in pane_text(app, "status")
        assert app.session.running
        await pilot.press("p")
        await wait_stopped(app, pilot)


async def test_nan_stops_the_run_and_the_app_stays_usable(
    scenario_file: Callable[[str], Path],
) -> None:
    dbg = debugger_on(scenario_file(EXPLODING))
    app = make_app(dbg)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.press("c")
        await wait_stopped(app, pilot)
        assert not app.session.running
        assert "Inf first appeared" in pane_text(app, "log")
        assert "stopped" in pane_text(app, "status")
        stopped = dbg.step_index
        await pilot.press("b")
        assert dbg.step_index == stopped - 1
        await pilot.press("space")
        assert dbg.phase == "input"


async def test_an_exception_in_a_step_is_logged_not_fatal(
    xor: Debugger, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(xor)

    def broken(granularity: str = "phase") -> None:
        raise RuntimeError("the backend lost its device")

    async with app.run_test(size=SMALL) as pilot:
        monkeypatch.setattr(xor, "step", broken)
        await pilot.press("c")
        await wait_stopped(app, pilot)
        await pilot.press("space")
        await pilot.pause()
        assert not app.session.running
        errors = [e.text for e in app.session.log_entries() if e.level == "error"]
        assert len(errors) == 2 and all("the backend lost its device" in e for e in errors)
        monkeypatch.undo()
        await pilot.press("space")
        assert xor.phase == "input"


async def test_b_goes_back_a_step(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=SMALL) as pilot:
        await pilot.press("n", "n")
        dbg = xor_app.session.dbg
        assert dbg.step_index == 2
        await pilot.press("b")
        assert dbg.step_index == 1
        assert "went back to step 1" in pane_text(xor_app, "status")
        assert "step 1/" in pane_text(xor_app, "header")  # one numbering everywhere
        await pilot.press("b", "b")
        assert dbg.step_index == 0
        assert "at the start" in pane_text(xor_app, "status")


async def test_e_runs_to_the_end_of_the_epoch(scenario_file: Callable[[str], Path]) -> None:
    dbg = debugger_on(scenario_file(LONG_XOR.replace("batch_size: 4", "batch_size: 1")))
    app = make_app(dbg)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("e")
        await wait_stopped(app, pilot)
        assert (dbg.epoch, dbg.step_index) == (1, 4)
        assert "epoch 1 done" in pane_text(app, "status")


async def test_q_quits_with_status_zero(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=SMALL) as pilot:
        await pilot.press("q")
        await pilot.pause()
        assert not xor_app.is_running
    assert xor_app.return_code == 0


async def test_help_lists_every_key(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=SMALL) as pilot:
        await pilot.press("question_mark")
        assert isinstance(xor_app.screen, HelpScreen)
        text = str(xor_app.screen.query_one("#help-text").render())
        for words in (
            "Step one phase",
            "Continue to the next breakpoint",
            "Edit breakpoints",
            "Quit",
        ):
            assert words in text
        await pilot.press("escape")
        assert not isinstance(xor_app.screen, HelpScreen)


async def test_w_edits_the_weight_under_the_cursor(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=SMALL) as pilot:
        await pilot.press("right", "w")
        await pilot.press(*"-0.75", "enter")  # the old value is selected: typing replaces it
        await pilot.pause()
        assert xor_app.session.dbg.params["hidden.kernel"][0, 1] == -0.75
        assert "-0.75" in pane_text(xor_app, "status")
        await pilot.press("w", *"abc", "enter")
        assert "not a number" in str(xor_app.screen.query_one("#weight-error").render())
        await pilot.press("escape")
        assert xor_app.session.dbg.params["hidden.kernel"][0, 1] == -0.75


async def test_breakpoint_editor_adds_toggles_and_explains_errors(xor_app: DebuggerApp) -> None:
    dbg = xor_app.session.dbg
    async with xor_app.run_test(size=SMALL) as pilot:
        await pilot.press("B", *"loss <", "enter")
        error = str(xor_app.screen.query_one("#breakpoint-error").render())
        assert "^" in error  # a caret under the problem
        await pilot.press("end", *" 0.69", "enter")
        assert [b.text for b in dbg.breakpoints] == ["loss < 0.69"]
        await pilot.press("tab", "space")
        assert not dbg.breakpoints[0].enabled
        await pilot.press("space", "escape")
        assert dbg.breakpoints[0].enabled
        await pilot.press("c")
        await wait_stopped(xor_app, pilot)
        assert dbg.loss is not None and dbg.loss < 0.69
        assert "loss < 0.69" in pane_text(xor_app, "status")


async def test_gradient_check_passes_on_xor(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=SMALL) as pilot:
        await pilot.press("n", "g")
        await xor_app.screen.workers.wait_for_complete()
        await pilot.pause()
        text = str(xor_app.screen.query_one("#gradcheck-text").render())
        assert "hidden.kernel" in text and "gradient check passed" in text
        await pilot.press("escape")


async def test_command_palette_runs_an_action(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=LARGE) as pilot:
        await pilot.press("ctrl+p", *"finish this training", "enter")
        await pilot.pause()
        await pilot.pause()
        assert xor_app.session.dbg.step_index == 1


async def test_no_color_heat_maps_read_as_signed_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    from backprop_tui.core import load_scenario

    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(Debugger(load_scenario("glyphs")))
    async with app.run_test(size=LARGE) as pilot:
        await pilot.press("n")
        app.query_one("#gradients", Lines).focus()
        await pilot.pause()
        assert app.session.palette.glyphs
        lines = pane_text(app, "gradients").splitlines()
        assert re.search(r"(?:[+-][1-9]| 0){8}", lines[2])  # cells: sign and magnitude
        assert "cell = sign and |v|" in pane_text(app, "gradients")
        assert re.search(r"[+-]\d", pane_text(app, "updates"))


@pytest.mark.parametrize("size", [SMALL, (100, 30), LARGE, (220, 60)])
async def test_every_line_fits_its_pane_after_resizing(size: tuple[int, int]) -> None:
    from backprop_tui.core import load_scenario

    app = make_app(Debugger(load_scenario("glyphs")))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n", "space", "space")
        await pilot.resize_terminal(*size)
        await pilot.pause()
        assert app.screen.has_class("-compact") == (size[0] < 110 or size[1] < 32)
        for pane in app.query(Lines):
            width = pane.content_size.width
            assert all(line.cell_len <= width for line in pane.lines), pane.id
        text = screen_text(app)
        assert text.count("\n") == size[1] - 1
        for name in ("network", "gradients", "update", "log"):
            assert name in text


async def test_replay_steps_but_refuses_to_change_or_continue(tmp_path: Path) -> None:
    from backprop_tui.core.traces.replay import ReplayDebugger
    from backprop_tui.tui.cli import main
    from click.testing import CliRunner

    trace = tmp_path / "xor.npz"
    result = CliRunner().invoke(main, ["run", "xor", "--steps", "20", "--save", str(trace)])
    assert result.exit_code == 0, result.output
    replay = ReplayDebugger(str(trace))
    app = make_app(replay)
    async with app.run_test(size=LARGE) as pilot:
        assert "replay" in pane_text(app, "header")
        await pilot.press("n", "n")
        assert replay.step_index == 2
        assert "dL/dW hidden.kernel" in pane_text(app, "gradients")  # recorded gradients
        assert "A recording keeps" in pane_text(app, "activations")
        for key in ("c", "w", "g"):
            await pilot.press(key)
            assert "recorded replay" in pane_text(app, "status")
            assert not app.session.running
        await pilot.press("b")
        assert replay.step_index == 1
        assert "loss" in pane_text(app, "chart")


async def test_big_layers_are_summarised_not_dumped(scenario_file: Callable[[str], Path]) -> None:
    big = """
        name: wide
        description: 784 → 512 relu → 10 softmax on glyphs.
        seed: 0
        data: {generator: glyphs, size: 28, n: 64}
        model:
          inputs: 784
          layers:
            - {name: hidden, type: dense, units: 512, activation: relu}
            - {name: output, type: dense, units: 10, activation: softmax}
        loss: categorical_crossentropy
        optimizer: {name: sgd, learning_rate: 0.1}
        training: {epochs: 1, batch_size: 32}
    """
    app = make_app(debugger_on(scenario_file(big)))
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("n")
        app.query_one("#updates", Lines).focus()
        await pilot.pause()
        updates = pane_text(app, "updates")
        assert "401,920 numbers" in updates and "top 200 by |change|" in updates
        rows = _update_rows(app)
        changes = [abs(r[3]) for r in rows]
        assert changes == sorted(changes, reverse=True)
        await pilot.press("o")
        assert "index order" in pane_text(app, "updates")
        app.query_one("#gradients", Lines).focus()
        await pilot.pause()
        assert "cell" in pane_text(app, "gradients")
        assert len(pane_text(app, "gradients").splitlines()) < 20
        assert np.isfinite(app.session.dbg.loss)


async def test_the_update_row_under_the_cursor_is_marked(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=LARGE) as pilot:
        await pilot.press("n")
        marked = [
            line for line in xor_app.query_one("#updates", Lines).lines if line.style == "reverse"
        ]
        assert [line.plain.split()[:2] for line in marked] == [["kernel", "0,0"]]
        xor_app.query_one("#gradients", Lines).focus()
        await pilot.press("right", "down")
        strips = xor_app.query_one("#updates", Lines)
        marked = [line for line in strips.lines if line.style == "reverse"]
        assert [line.plain.split()[:2] for line in marked] == [["kernel", "1,1"]]
        rendered = [strips.render_line(y) for y in range(len(strips.lines))]
        reversed_rows = [
            "".join(seg.text for seg in strip).split()[1]
            for strip in rendered
            if any(seg.style is not None and seg.style.reverse for seg in strip)
        ]
        assert reversed_rows == ["1,1"]  # what is drawn, not only what was built


async def test_update_table_lists_kernel_then_bias_and_scrolls(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=SMALL) as pilot:
        await pilot.press("n")
        xor_app.query_one("#updates", Lines).focus()
        await pilot.pause()
        first = [line.split()[:2] for line in pane_text(xor_app, "updates").splitlines()[3:]]
        assert first[0] == ["kernel", "0,0"] and ["bias", "0"] in first
        await pilot.press("down", "down", "down")
        text = pane_text(xor_app, "updates")
        assert "rows 4–12" in text.splitlines()[0]  # 12 numbers, 9 rows a page: stops at the end
        assert ["bias", "3"] in [line.split()[:2] for line in text.splitlines()[3:]]


def test_an_unread_step_done_is_replaced_but_a_stop_is_not() -> None:
    from backprop_tui.tui.runner import RunStopped, StepDone

    assert StepDone(2, 10.0).can_replace(StepDone(1, 10.0))
    assert not StepDone(2, 10.0).can_replace(RunStopped("paused", "info", 1))
    assert not RunStopped("paused", "info", 1).can_replace(StepDone(1, 10.0))


async def test_a_key_is_served_while_the_engine_runs(
    scenario_file: Callable[[str], Path],
) -> None:
    from textual import events

    dbg = debugger_on(scenario_file(LONG_XOR))
    app = make_app(dbg)
    async with app.run_test(size=LARGE) as pilot:
        await pilot.press("c")
        for n in range(20):  # [ and ] select a layer and redraw: they need the engine's lock
            key = "right_square_bracket" if n % 2 == 0 else "left_square_bracket"
            app.post_message(events.Key(key, None))
            wanted = "▶ output" if n % 2 == 0 else "▶ hidden"
            deadline = time.monotonic() + 30
            while wanted not in pane_text(app, "network"):  # redrawn, under the lock
                assert time.monotonic() < deadline, f"key {n} was never served"
                await asyncio.sleep(0.001)
            assert app.session.running  # served while running, not once the run ended
        app.action_pause()
        await wait_stopped(app, pilot)
    # A plain lock around the engine let the worker take it back step after step while
    # the screen waited. This asserts every key is served during the run; how fast (the
    # design's 100 ms) is a speed figure, measured by bench/bench_ui.py, since timed
    # tests fail on a busy machine.


async def test_z_zooms_the_focused_pane_and_tab_zooms_the_next(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=SMALL) as pilot:
        await pilot.press("tab", "z")
        first = xor_app.focused_pane()
        assert first is not None and xor_app.zoomed == first
        shown = [p.id for p in xor_app.panes() if p.display]
        assert shown == [first]
        await pilot.press("tab")
        await pilot.pause()
        second = PANES[(PANES.index(first) + 1) % len(PANES)]
        assert xor_app.zoomed == second and xor_app.focused_pane() == second
        await pilot.press("z")
        await pilot.pause()
        assert xor_app.zoomed is None and all(p.display for p in xor_app.panes())


async def test_a_long_log_line_reads_in_full_at_80_columns() -> None:
    app = make_app(Debugger(load_scenario("bug_exploding")))
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("n", "n")
        entries = [e for e in app.session.log_entries() if e.level == "warning"]
        assert entries, "the exploding scenario warns after one step"
        app.query_one("#log", Lines).focus()
        await pilot.press("z")
        await pilot.pause()
        words = " ".join(pane_text(app, "log").split())
        assert " ".join(entries[-1].text.split()) in words  # wrapped, never cut with …
        text = pane_text(app, "log")
        assert "dense_1: dense_1:" not in text


async def test_training_stops_at_its_end_and_e_trains_on(xor_app: DebuggerApp) -> None:
    app = xor_app
    dbg = app.session.dbg
    async with app.run_test(size=SMALL) as pilot:
        while not dbg.finished:
            dbg.step("epoch")
        total = dbg.total_steps
        app.redraw_all()
        await pilot.press("n")
        assert dbg.step_index == total and "training finished" in pane_text(app, "status")
        header = pane_text(app, "header")
        assert f"step {total}/{total}" in header and f"{dbg.total_epochs}/" in header
        await pilot.press("E", "n")
        assert dbg.step_index == total + 1 and dbg.total_epochs == dbg.scenario.training.epochs + 1


async def _gradients_after_one_step(seed: int) -> str:
    app = make_app(Debugger(load_scenario("glyphs8", seed=seed)))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        await pilot.pause()
        return pane_text(app, "gradients")


async def test_heat_maps_belong_to_their_run_not_to_the_process() -> None:
    # Seed 1 drawn after seed 0 in the same process must look as seed 1 drawn first:
    # a cache of heat maps shared by the process showed seed 0's picture here.
    seed0 = await _gradients_after_one_step(0)
    after = await _gradients_after_one_step(1)
    alone = await _gradients_after_one_step(1)
    assert after == alone and after != seed0


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
@pytest.mark.parametrize(
    "name", ["xor", "glyphs", "bug_vanishing", "bug_exploding", "bug_dying_relu", "bug_saturation"]
)
async def test_every_layer_shows_its_gradient_norm(name: str, size: tuple[int, int]) -> None:
    app = make_app(Debugger(load_scenario(name)))
    async with app.run_test(size=size) as pilot:
        await pilot.press("n")
        app.query_one("#network", Lines).focus()  # a small screen opens the focused pane
        await pilot.pause()
        network = pane_text(app, "network")
        for layer in app.session.dbg.layer_names:
            line = next(row for row in network.splitlines() if f" {layer} " in row)
            assert re.search(r"‖g‖ [-+0-9.e]+\d", line), line  # the number in full, never cut
        app.query_one("#updates", Lines).focus()
        await pilot.press("z")
        await pilot.pause()
        table = pane_text(app, "updates")
        assert re.search(r"^\s*(param|p)\s+index", table, re.M), table


async def test_validation_figures_reach_the_header_the_chart_and_the_log() -> None:
    dbg = Debugger(load_scenario("moons"))
    assert dbg.scenario.data.has_validation
    app = make_app(dbg)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("e")  # one epoch
        for _ in range(100):
            if not app.session.running:
                break
            await pilot.pause(0.05)
        done = dbg.epoch_history[-1]
        assert done.val_loss is not None
        assert f"val_loss {done.val_loss:.4g}" in pane_text(app, "header")
        assert any(
            e.kind == "epoch" and f"val_loss {done.val_loss:.4g}" in e.text
            for e in app.session.log_entries()
        )
        app.query_one("#chart", Lines).focus()
        await pilot.press("z")
        await pilot.pause()
        assert "val_loss" in pane_text(app, "chart")


async def _wait_idle(app: DebuggerApp, pilot: Pilot[int]) -> None:
    for _ in range(200):
        if not app.session.running:
            return
        await pilot.pause(0.02)


async def test_g_goes_to_a_step_back_and_forward(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=SMALL) as pilot:
        dbg = xor_app.session.dbg
        await pilot.press("n", "n", "n", "n", "n")
        assert dbg.step_number == 5
        await pilot.press("G", "2", "enter")
        await _wait_idle(xor_app, pilot)
        assert dbg.step_number == 2 and "at step 2" in pane_text(xor_app, "status")
        await pilot.press("G")
        await pilot.press(*"12", "enter")
        await _wait_idle(xor_app, pilot)
        assert dbg.step_number == 12 and dbg.phase == "update"
        await pilot.press("G", *"x", "enter")
        await pilot.pause()
        assert len(xor_app.screen_stack) == 2  # a refusal keeps the prompt open
        await pilot.press("escape")


async def test_a_key_that_does_nothing_here_says_where_it_would(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=SMALL) as pilot:
        await pilot.press("o")
        assert "update pane" in pane_text(xor_app, "status")
        await pilot.press("tab")
        assert xor_app.focused_pane() in pane_text(xor_app, "status")


async def test_w_takes_nan_so_a_nan_breakpoint_can_be_tried(xor_app: DebuggerApp) -> None:
    async with xor_app.run_test(size=SMALL) as pilot:
        dbg = xor_app.session.dbg
        await pilot.press("w", *"nan", "enter")
        await pilot.pause()
        param, index = xor_app.session.cursor_param()
        assert np.isnan(dbg.params[param][index])
        await pilot.press("n")
        assert dbg.hit_breakpoint() is not None  # NaN stops, as a continue would


async def test_a_history_too_small_says_how_to_keep_more() -> None:
    # A snapshot every step, so that the cap, not the spacing, is what runs out.
    app = make_app(Debugger(load_scenario("glyphs8"), history_mb=0.01, keyframe_every=1))
    async with app.run_test(size=SMALL) as pilot:
        for _ in range(12):
            await pilot.press("n")
        dbg = app.session.dbg
        for _ in range(12):
            await pilot.press("b")
        assert dbg.step_number > 0 and "--history-mb" in pane_text(app, "status")


async def test_the_log_shows_the_start_of_an_entry_taller_than_it() -> None:
    """A small log pane shows what the newest entry is about (its step and first words),
    marked as going on, not its last words; and the screen's sizes keep Adam's rule whole."""
    app = make_app(Debugger(load_scenario("glyphs")))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        app.session.note("went somewhere " + "far " * 40 + "in the end")
        app.redraw_all()
        await pilot.pause()
        log = pane_text(app, "log").splitlines()
        assert "0 · info    went somewhere far" in log[0]
        assert log[-1].rstrip().endswith("…") and "in the end" not in pane_text(app, "log")
        network = " ".join(line.strip() for line in pane_text(app, "network").splitlines())
        assert "ε = 1e-07)" in network and "…" not in network.split("next batch")[0]


@pytest.mark.parametrize("name", ["xor", "glyphs", "overfit"])
async def test_folded_summaries_read_whole_at_80x24(name: str) -> None:
    """A folded pane's one line gives way a part at a time, instead of ending in a cut."""
    app = make_app(Debugger(load_scenario(name)))
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("n", "n")
        await pilot.pause()
        for pane in ("gradients", "boundary", "chart"):
            widget = app.query_one(f"#{pane}", Lines)
            text = widget.summary(widget.size.width - len(widget.TITLE) - 4).plain
            assert "…" not in text, (pane, text)


DEEP = """
name: deep
seed: 0
data:
  generator: xor
model:
  inputs: 2
  layers:
{layers}
    - {{name: output, type: dense, units: 1, activation: sigmoid}}
loss: binary_crossentropy
optimizer: {{name: sgd, learning_rate: 0.1}}
training: {{epochs: 2, batch_size: 4}}
"""


async def test_a_deep_network_shows_the_layers_around_the_selected_one(tmp_path: Path) -> None:
    """Thirty layers in half the column: the selected layer and its neighbours, with how
    many more there are above and below, and the panes below keep their rows."""
    layers = "\n".join(
        f"    - {{name: h{i}, type: dense, units: 3, activation: tanh}}" for i in range(30)
    )
    path = tmp_path / "deep.yaml"
    path.write_text(DEEP.format(layers=layers))
    app = make_app(debugger_on(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        app.action_select_layer(15)
        await pilot.pause()
        lines = pane_text(app, "network").splitlines()
        assert app.query_one("#network").size.height <= (40 - 4) // 2
        assert any(line.startswith("▶ h15 ") for line in lines), lines
        above = next(line for line in lines if "more above" in line)
        below = next(line for line in lines if "more below" in line)
        shown = [line for line in lines if re.match(r"[▶ ] h\d+ ", line)]
        first = int(re.search(r"(\d+) more above", above).group(1))  # type: ignore[union-attr]
        last = int(re.search(r"(\d+) more below", below).group(1))  # type: ignore[union-attr]
        assert first + len(shown) + last == 31  # every layer is counted once
        assert app.query_one("#log").size.height >= 1  # the panes below keep rows
        # a click on a shown layer selects that one: border, input line, "more above"
        await pilot.click("#network", offset=(4, 3))
        assert app.session.layer == first
