"""The learning rate changed while training: it applies from the step in progress (or the
next) on, going back before that step undoes it, a trace records it, and `run --lr`
overrides the scenario's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from backprop_tui.core import Debugger, NotPossible, Replay, load_scenario
from backprop_tui.core.traces.recording import TraceRecorder
from click.testing import CliRunner


def params_of(dbg: Debugger) -> dict[str, np.ndarray]:
    return {k: np.array(v) for k, v in dbg.params.items()}


@pytest.mark.parametrize("name", ["moons", "xor", "circles"])
def test_a_change_follows_the_new_rate_and_going_back_undoes_it(name: str) -> None:
    scenario = load_scenario(name)
    old_rate = scenario.optimizer.learning_rate
    never = Debugger(scenario)
    for _ in range(12):
        never.step("batch")

    dbg = Debugger(scenario)
    for _ in range(5):
        dbg.step("batch")
    dbg.set_learning_rate(old_rate / 4)
    assert dbg.learning_rate == old_rate / 4
    # The step after the change updates with the new rate.
    if scenario.optimizer.name == "sgd" and not scenario.optimizer.options["momentum"]:
        before = params_of(dbg)
        dbg.step("batch")
        for name_, value in dbg.params.items():
            expected = before[name_] - (old_rate / 4) * dbg.grads[name_]
            np.testing.assert_array_equal(value, expected)
    else:
        dbg.step("batch")
    assert f"lr = {old_rate / 4:g}" in dbg.update_rule  # beside the update it made
    twin = Debugger(scenario)
    for _ in range(6):
        twin.step("batch")
    assert any(not np.array_equal(dbg.params[k], twin.params[k]) for k in dbg.params)
    for _ in range(2):
        dbg.step("batch")

    while dbg.step_index > 4:  # back to before the change
        assert dbg.back()
    assert dbg.learning_rate == old_rate
    assert any("undid a learning-rate change" in e.text for e in dbg.log)
    for _ in range(8):
        dbg.step("batch")
    assert dbg.step_index == never.step_index
    for k in never.params:
        np.testing.assert_array_equal(dbg.params[k], never.params[k])


def test_going_back_to_after_the_change_keeps_it() -> None:
    dbg = Debugger(load_scenario("moons"))
    for _ in range(3):
        dbg.step("batch")
    dbg.set_learning_rate(0.05)
    for _ in range(3):
        dbg.step("batch")
    after = params_of(dbg)
    dbg.back()
    dbg.back()
    assert dbg.step_index == 4 and dbg.learning_rate == 0.05
    dbg.step("batch")
    dbg.step("batch")
    for k, v in after.items():
        np.testing.assert_array_equal(dbg.params[k], v)


def test_a_change_after_backward_recomputes_the_pending_update() -> None:
    dbg = Debugger(load_scenario("xor"))
    while dbg.phase != "backward" or dbg.layer_index != 0:
        dbg.step("phase")
    state, before = dbg.update_arrays("hidden.kernel")
    assert state == "pending"
    dbg.set_learning_rate(0.125)
    _, after = dbg.update_arrays("hidden.kernel")
    np.testing.assert_array_equal(after.change, -0.125 * np.asarray(dbg.grads["hidden.kernel"]))
    assert not np.array_equal(before.change, after.change)
    old = np.array(dbg.params["hidden.kernel"])
    dbg.step("phase")  # the update
    np.testing.assert_array_equal(dbg.params["hidden.kernel"], old + after.change)


def test_setting_the_rate_back_leaves_no_change() -> None:
    dbg = Debugger(load_scenario("xor"))
    dbg.step("batch")
    dbg.set_learning_rate(0.1)
    dbg.set_learning_rate(0.5)  # the scenario's own
    assert dbg.lr_changes == []


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan"), float("inf")])
def test_a_rate_must_be_positive(rate: float) -> None:
    dbg = Debugger(load_scenario("xor"))
    with pytest.raises(ValueError, match="positive"):
        dbg.set_learning_rate(rate)


def test_a_trace_records_the_change_and_a_replay_shows_it(tmp_path: Path) -> None:
    dbg = Debugger(load_scenario("xor"))
    recorder = TraceRecorder(dbg, 8 * 1024 * 1024, tmp_path / "lr.npz")
    dbg.listeners.append(recorder.observe)
    for _ in range(3):
        dbg.step("batch")
    dbg.set_learning_rate(0.25)
    for _ in range(3):
        dbg.step("batch")
    recorder.save()
    replay = Replay(str(tmp_path / "lr.npz"))
    assert replay.trace.header["lr_changes"] == [[3, 0.25]]
    replay.step("batch")
    assert replay.learning_rate == 0.5 and "lr = 0.5)" in replay.update_rule
    while replay.step_index < 4:
        replay.step("batch")
    assert replay.learning_rate == 0.25 and "lr = 0.25)" in replay.update_rule
    with pytest.raises(NotPossible):
        replay.set_learning_rate(0.1)
    assert not replay.can_set_learning_rate


def test_run_lr_overrides_the_scenario() -> None:
    from backprop_tui.tui.cli import main

    runner = CliRunner()
    given = runner.invoke(main, ["run", "xor", "--steps", "20", "--json", "--lr", "0.125"])
    assert given.exit_code == 0, given.output
    dbg = Debugger(load_scenario("xor"), learning_rate=0.125)
    dbg.run(20)
    assert json.loads(given.stdout)["loss"] == dbg.loss
    plain = Debugger(load_scenario("xor"))
    plain.run(20)
    assert plain.loss != dbg.loss
    bad = runner.invoke(main, ["run", "xor", "--lr", "0"])
    assert bad.exit_code == 2 and "--lr" in bad.output


def test_the_rule_beside_an_applied_update_is_the_rate_it_used() -> None:
    dbg = Debugger(load_scenario("xor"))
    for _ in range(3):
        dbg.step("batch")
    dbg.set_learning_rate(0.125)
    assert "lr = 0.5)" in dbg.update_rule  # the table still shows step 3's update
    dbg.step("phase")
    while dbg.phase != "backward" or dbg.layer_index != 0:
        dbg.step("phase")
    assert "lr = 0.125)" in dbg.update_rule  # the pending update uses the new rate
