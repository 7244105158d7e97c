"""RunView: a scenario run and a replay both satisfy it; reading never computes; edits mid-step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from backprop_tui.core import Debugger, Replay, RunView, TraceRecorder, load_scenario
from backprop_tui.core.maths import optimizers


def test_a_debugger_and_a_replay_are_run_views(tmp_path: Path) -> None:
    dbg = Debugger(load_scenario("xor"))
    assert isinstance(dbg, RunView) and dbg.can_train and dbg.shows_phases
    recorder = TraceRecorder(dbg, 1 << 20, path=str(tmp_path / "t.npz"))
    dbg.listeners.append(lambda _run: recorder.observe(dbg))
    for _ in range(3):
        dbg.step("batch")
    recorder.save()
    replay = Replay(str(tmp_path / "t.npz"))
    assert isinstance(replay, RunView) and not replay.can_train and not replay.can_edit
    assert replay.layer_names == dbg.layer_names and replay.where == dbg.where


def test_the_update_table_is_computed_once_by_the_engine_never_by_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dbg = Debugger(load_scenario("xor"))
    calls = []
    real = optimizers.update

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(optimizers, "update", counted)
    while not (dbg.phase == "backward" and dbg.layer_index == 0):
        dbg.step("layer")
    assert len(calls) == 1  # when backward finished, on the engine's side
    for _ in range(5):
        state, arrays = dbg.update_arrays("hidden.kernel") or (None, None)
        assert state == "pending" and arrays is not None
    assert len(calls) == 1  # reading it again computed nothing
    dbg.step("phase")
    assert dbg.update_arrays("hidden.kernel") is not None and len(calls) == 1


def test_a_weight_edited_mid_step_restarts_the_step_with_it() -> None:
    edited = Debugger(load_scenario("xor"))
    edited.step("phase")
    edited.step("phase")
    edited.step("phase")  # input, forward, loss done
    edited.set_weight("hidden.kernel", (0, 1), 2.0)
    assert (edited.phase, edited.step_number) == ("loss", 1)  # back where the user was
    assert "restarted from its input" in edited.log[-1].text
    fresh_scenario = load_scenario("xor")
    plain = Debugger(fresh_scenario)
    plain.set_weight("hidden.kernel", (0, 1), 2.0)  # the same weight, set before the step
    plain.step("phase")
    plain.step("phase")
    plain.step("phase")
    np.testing.assert_array_equal(
        edited.record_of("forward", 0).arrays["z"],  # type: ignore[union-attr]
        plain.record_of("forward", 0).arrays["z"],  # type: ignore[union-attr]
    )
    assert edited.loss == plain.loss
    edited.step("batch")
    plain.step("batch")
    for name, value in plain.params.items():
        np.testing.assert_array_equal(edited.params[name], value)


def test_numbering_is_one_and_the_same_across_a_run() -> None:
    dbg = Debugger(load_scenario("xor"))  # one step per epoch
    assert (dbg.step_number, dbg.epoch_number) == (0, 0)
    dbg.step("phase")
    assert (dbg.step_number, dbg.epoch_number) == (1, 1)
    dbg.step("batch")
    assert (dbg.step_number, dbg.epoch_number) == (1, 1)
    assert dbg.stats is not None and (dbg.stats.step, dbg.stats.epoch) == (1, 1)
    dbg.step("batch")
    assert (dbg.step_number, dbg.epoch_number) == (2, 2)
    dbg.back()
    assert (dbg.step_number, dbg.epoch_number) == (1, 1)
    assert dbg.log[-1].step == 1
