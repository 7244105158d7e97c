"""RunSnapshot: a run as it stood at one step boundary stays so while the run steps on."""

from __future__ import annotations

import numpy as np
from backprop_tui.core import Debugger, RunReading, RunSnapshot, load_scenario


def _run(name: str = "circles") -> Debugger:
    return Debugger(load_scenario(name))


def test_a_snapshot_is_a_run_to_read() -> None:
    dbg = _run()
    dbg.step("batch")
    assert isinstance(RunSnapshot(dbg), RunReading)


def test_it_keeps_the_step_it_was_taken_at() -> None:
    dbg = _run()
    for _ in range(3):
        dbg.step("batch")
    snap = RunSnapshot(dbg)
    before = {
        "step": dbg.step_number,
        "loss": dbg.loss,
        "params": {k: v.copy() for k, v in dbg.params.items()},
        "grads": {k: v.copy() for k, v in dbg.grads.items()},
        "z": dbg.layer_arrays(0)["z"].copy(),
        "history": len(dbg.step_history),
        "log": len(dbg.log),
        "update": {
            name: found[1].change.copy()
            for name in dbg.scenario.param_names
            if (found := dbg.update_arrays(name)) is not None
        },
    }
    for _ in range(dbg.steps_per_epoch + 2):  # on, past an epoch's end
        dbg.step("batch")
    assert dbg.step_number != snap.step_number
    assert snap.step_number == before["step"]
    assert snap.loss == before["loss"]
    assert len(snap.step_history) == before["history"]
    assert len(list(snap.step_history)) == before["history"]
    assert len(snap.log) == before["log"]
    for name, value in before["params"].items():
        np.testing.assert_array_equal(snap.params[name], value)
    for name, value in before["grads"].items():
        np.testing.assert_array_equal(snap.grads[name], value)
    np.testing.assert_array_equal(snap.layer_arrays(0)["z"], before["z"])
    for name, change in before["update"].items():
        found = snap.update_arrays(name)
        assert found is not None and found[0] == "applied"
        np.testing.assert_array_equal(found[1].change, change)


def test_it_reads_what_the_run_reads() -> None:
    dbg = _run("glyphs8")
    dbg.step("batch")
    snap = RunSnapshot(dbg)
    assert snap.step_history[-1] == dbg.step_history[-1]
    assert snap.step_history[:] == dbg.step_history[:]
    for i, layer in enumerate(dbg.layers):
        assert snap.grad_norm(layer.name) == dbg.grad_norm(layer.name)
        for phase in ("forward", "backward"):
            assert snap.record_of(phase, i) is dbg.record_of(phase, i)
    for name in dbg.scenario.param_names:
        ours, theirs = snap.update_arrays(name), dbg.update_arrays(name)
        assert ours is not None and theirs is not None
        row, expected = ours[1].row(0), theirs[1].row(0)
        assert row == expected


def test_derived_data_is_worked_out_once() -> None:
    dbg = _run()
    dbg.step("batch")
    snap = RunSnapshot(dbg, detailed=True)
    calls: list[int] = []

    def work() -> int:
        calls.append(1)
        return 42

    assert snap.derived("key", work) == 42
    assert snap.derived("key", work) == 42
    assert calls == [1]
