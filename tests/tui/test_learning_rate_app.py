"""L sets the learning rate in the app: the log, the status and the update table say so, going
back undoes it, a replay refuses it; weight penalties show in the header, chain rule and table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from backprop_tui.core import Debugger, Replay, load_scenario
from backprop_tui.core.traces.recording import TraceRecorder
from backprop_tui.tui.app import make_app
from tui_helpers import pane_text, screen_text

SIZE = (120, 40)


async def test_l_sets_the_rate_and_the_next_steps_use_it() -> None:
    app = make_app(Debugger(load_scenario("xor")))
    async with app.run_test(size=SIZE) as pilot:
        dbg = app.session.dbg
        for _ in range(3):
            await pilot.press("n")
        await pilot.press("L", *"0.125", "enter")
        await pilot.pause()
        assert dbg.learning_rate == 0.125
        assert "learning rate 0.5 → 0.125 from step 4 on" in pane_text(app, "status")
        assert "learning rate 0.5 → 0.125" in pane_text(app, "log")
        before = {k: np.array(v) for k, v in dbg.params.items()}
        await pilot.press("n")
        await pilot.pause()
        for name, value in dbg.params.items():
            np.testing.assert_array_equal(value, before[name] - 0.125 * dbg.grads[name])
        assert "(lr = 0.125)" in pane_text(app, "updates")
        await pilot.press("b", "b")
        await pilot.pause()
        assert dbg.learning_rate == 0.5 and dbg.step_index == 2


async def test_a_bad_rate_is_explained_and_escape_keeps_the_old_one() -> None:
    app = make_app(Debugger(load_scenario("xor")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("L", *"-2", "enter")
        assert "positive number" in str(app.screen.query_one("#weight-error").render())
        await pilot.press("escape")
        await pilot.pause()
        assert app.session.dbg.learning_rate == 0.5
        assert "unchanged" in pane_text(app, "status")


async def test_a_replay_refuses_to_change_the_rate(tmp_path: Path) -> None:
    dbg = Debugger(load_scenario("xor"))
    recorder = TraceRecorder(dbg, 8 * 1024 * 1024, tmp_path / "t.npz")
    dbg.listeners.append(recorder.observe)
    dbg.run(3)
    recorder.save()
    app = make_app(Replay(str(tmp_path / "t.npz")))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("L")
        await pilot.pause()
        assert "changing the learning rate is not possible here" in pane_text(app, "status")


PENALISED = """
name: penalised
seed: 0
data: {generator: xor}
model:
  inputs: 2
  layers:
    - {name: hidden, units: 4, activation: tanh, kernel_regularizer: {l2: 0.25}}
    - {name: output, units: 1, activation: sigmoid}
loss: binary_crossentropy
optimizer: {name: sgd, learning_rate: 0.5}
training: {epochs: 50, batch_size: 4}
"""


async def test_a_penalty_shows_in_the_header_chain_rule_and_update_table(tmp_path: Path) -> None:
    path = tmp_path / "penalised.yaml"
    path.write_text(PENALISED)
    app = make_app(Debugger(load_scenario(path)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        await pilot.pause()
        dbg = app.session.dbg
        assert dbg.penalty is not None
        assert f"(penalty {dbg.penalty:.4g})" in pane_text(app, "header")
        chain = pane_text(app, "chain")
        assert "+ 2·0.25·w" in chain and "+ penalty" in chain and "✓ same" in chain
        table = pane_text(app, "updates")
        assert "g = data part + penalty (kernel: 2·0.25·w)" in table
        assert "penalty" in table.splitlines()[3]  # the column, beside the gradient
        assert "…" not in screen_text(app).split("chain rule")[1].split("╰")[0]
