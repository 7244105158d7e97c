"""RunSnapshot: a run as it stood at one step boundary stays so while the run steps on."""

from __future__ import annotations

import math

import numpy as np
from backprop_tui.core import Debugger, RunReading, RunSnapshot, load_scenario
from backprop_tui.core.records import StepLog, StepStats
from backprop_tui.core.snapshot import Prefix, history_columns


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


def _item_columns(history: list[StepStats]) -> dict[str, list[float]]:
    """What a chart reads of each step, one record at a time."""
    out: dict[str, list[float]] = {}
    for stats in history:
        out.setdefault("loss", []).append(stats.loss)
        for name, value in stats.metrics.items():
            out.setdefault(name, []).append(value)
    return out


def test_history_columns_read_what_the_records_hold() -> None:
    """The chart's bulk read of a step log, a column at a time, gives each figure as the
    step records do: a metric only at the steps that measured it, floats not rounded."""
    log = StepLog()
    for i in range(300):
        metrics = {"accuracy": i / 7} if i % 5 else {}  # a step without it: a gap
        if i >= 100:
            metrics["late"] = float(i) * 1e-40 if i % 2 else math.nan  # float64 only
        log.append(StepStats(i, i // 10, 1.0 / (i + 1), metrics))
    for start in (0, 1, 99, 100, 101, 250, 300):
        got = history_columns(log, start)
        expected = _item_columns(log[start:])
        if start == 0:  # in the order the figures first appeared
            assert list(got) == list(expected)
        for name, values in expected.items():
            np.testing.assert_array_equal(got[name], values)
    snapshot_like = Prefix(log, 120)  # as a snapshot holds it while the run goes on
    got = history_columns(snapshot_like, 90)
    for name, values in _item_columns(log[90:120]).items():
        np.testing.assert_array_equal(got[name], values)
    as_list = list(log)  # a replay's history is a list
    for name, values in _item_columns(as_list[42:]).items():
        np.testing.assert_array_equal(history_columns(as_list, 42)[name], values)


def test_history_columns_of_a_run_follow_it_back_in_time() -> None:
    dbg = _run()
    for _ in range(12):
        dbg.step("batch")
    assert dbg.back()
    dbg.step("batch")
    got = history_columns(dbg.step_history, 0)
    for name, values in _item_columns(list(dbg.step_history)).items():
        np.testing.assert_array_equal(got[name], values)
