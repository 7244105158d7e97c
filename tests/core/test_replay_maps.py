"""A replay draws the input plane: a trace keeps a two-input network's data, and the map of
the step shown comes from the weights recorded at it (or last before it, which it says)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from backprop_tui.core import Debugger, Replay, TraceError, load_scenario
from backprop_tui.core.traces.recording import TraceRecorder, load_trace, save_trace


def record(name: str, steps: int, path: Path, every: int = 1) -> Path:
    dbg = Debugger(load_scenario(name))
    recorder = TraceRecorder(dbg, 8 * 1024 * 1024, path)
    recorder.params_every = every  # as a small --trace-mb would choose
    dbg.listeners.append(recorder.observe)
    dbg.run(steps)
    recorder.save()
    return path


@pytest.mark.parametrize("name", ["moons", "xor", "spirals"])
def test_the_replay_map_is_the_live_map_of_the_recorded_weights(name: str, tmp_path: Path) -> None:
    # Weights kept every third step only, so both cases come up.
    replay = Replay(str(record(name, 20, tmp_path / "t.npz", every=3)))
    assert replay.no_input_map is None
    every = int(replay.trace.header["params_every"])
    assert every == 3
    live = Debugger(load_scenario(name))
    for _ in range(every + 1):
        replay.step("batch")
        live.step("batch")
        shown = replay.input_map(30, 16)
        assert shown is not None
        step = int(replay.params_step or 0)
        assert shown.step_index == step  # which weights drew it: the recorded ones
        twin = Debugger(load_scenario(name))
        twin.run(step)
        expected = twin.input_map(30, 16)
        assert expected is not None
        np.testing.assert_array_equal(shown.values, expected.values)
        for ours, theirs in (
            (shown.train, expected.train),
            (shown.validation, expected.validation),
        ):
            np.testing.assert_array_equal(ours.xy, theirs.xy)
            np.testing.assert_array_equal(ours.labels, theirs.labels)
        assert shown.x_range == expected.x_range and shown.y_range == expected.y_range
    hidden = replay.input_map(30, 16, layer=0)
    assert hidden is not None and hidden.layer_index == 0


def test_a_network_with_more_inputs_keeps_no_plane(tmp_path: Path) -> None:
    replay = Replay(str(record("glyphs8", 2, tmp_path / "g.npz")))
    assert replay.trace.plane == {}
    assert replay.no_input_map is not None and "two inputs" in replay.no_input_map
    assert replay.input_map(30, 16) is None


def test_a_trace_without_data_says_why_there_is_no_map(tmp_path: Path) -> None:
    path = record("xor", 3, tmp_path / "t.npz")
    trace = load_trace(path)
    bare = tmp_path / "bare.npz"
    save_trace(bare, Trace_without_plane(trace))
    replay = Replay(str(bare))
    assert replay.no_input_map is not None and "no training data" in replay.no_input_map


def Trace_without_plane(trace: object) -> object:
    import dataclasses

    return dataclasses.replace(trace, plane={})  # type: ignore[type-var]


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: {**p, "x_train": p["x_train"][:, :1]},  # one column
        lambda p: {k: v for k, v in p.items() if k != "y_val"},  # a member missing
        lambda p: {**p, "y_train": p["y_train"][:-1]},  # rows that do not pair up
        lambda p: {**p, "x_val": p["x_val"].astype(np.int64)},  # not floating-point
    ],
)
def test_damaged_plane_data_is_a_trace_error(tmp_path: Path, damage: object) -> None:
    import dataclasses

    trace = load_trace(record("moons", 3, tmp_path / "t.npz"))
    bad = tmp_path / "bad.npz"
    save_trace(bad, dataclasses.replace(trace, plane=damage(trace.plane)))  # type: ignore[operator]
    with pytest.raises(TraceError, match="record it again"):
        load_trace(bad)


def test_a_small_trace_keeps_weights_before_data(tmp_path: Path) -> None:
    dbg = Debugger(load_scenario("moons"))
    data = dbg.scenario.data
    plane_bytes = sum(a.nbytes for a in (data.x_train, data.y_train, data.x_val, data.y_val))
    recorder = TraceRecorder(dbg, 7 * plane_bytes, tmp_path / "small.npz")  # under 8×: no data
    dbg.listeners.append(recorder.observe)
    dbg.run(5)
    recorder.save()
    replay = Replay(str(tmp_path / "small.npz"))
    assert replay.trace.plane == {} and len(replay.trace.param_steps) > 0
    assert replay.no_input_map is not None and "--trace-mb" in replay.no_input_map
