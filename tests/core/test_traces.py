"""Traces: round trip, the size cap, damaged files, atomic saves (even under kill -9), replay."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backprop_tui.core import Debugger, NotPossible, RunView, load_scenario
from backprop_tui.core.traces.recording import (
    MB,
    Trace,
    TraceError,
    TraceRecorder,
    load_trace,
    save_trace,
)
from backprop_tui.core.traces.replay import ReplayDebugger
from backprop_tui.tui.cli import main
from click.testing import CliRunner


def _scenario(tmp_path: Path) -> Any:
    """Moons with validation, shuffled, three steps an epoch (the last one short)."""
    path = tmp_path / "moons.yaml"
    path.write_text(
        """
name: moons-trace
seed: 2
data: {generator: moons, n: 50, noise: 0.2, validation_split: 0.2}
model:
  inputs: 2
  layers:
    - {name: hidden, units: 5, activation: relu}
    - {name: output, units: 1, activation: sigmoid}
loss: binary_crossentropy
optimizer: {name: adam, learning_rate: 0.02}
metrics: [accuracy]
training: {epochs: 50, batch_size: 16, shuffle: true}
"""
    )
    return load_scenario(path)


def _record(
    dbg: Debugger, steps: int, max_bytes: int = 64 * MB, each: Callable[[], None] | None = None
) -> tuple[TraceRecorder, dict[int, tuple[dict[str, Any], dict[str, Any]]]]:
    """Run ``steps`` steps recording a trace; also keep every step's params and grads."""
    recorder = TraceRecorder(dbg, max_bytes)
    dbg.listeners.append(recorder.observe)
    seen = {dbg.step_index: (dbg.params, dbg.grads)}
    for _ in range(steps):
        if each is not None:
            each()
        dbg.step("batch")
        seen[dbg.step_index] = (dbg.params, dbg.grads)
    return recorder, seen


# --------------------------------------------------------------------------- round trip
def test_round_trip_keeps_every_number(tmp_path: Path) -> None:
    dbg = Debugger(_scenario(tmp_path))
    dbg.run(2)  # the recording starts mid-epoch

    def edit_now_and_then() -> None:
        if dbg.step_index % 7 == 0:
            dbg.set_weight("output.bias", (0,), 0.25)  # logs an edit

    recorder, seen = _record(dbg, 20, each=edit_now_and_then)
    path = tmp_path / "run.npz"
    size = save_trace(path, recorder.trace())
    assert size == path.stat().st_size
    trace = load_trace(path)

    assert trace.start_step == 2 and trace.steps == 20
    history = dbg.step_history[2:]
    assert trace.loss.tolist() == [s.loss for s in history]
    assert trace.metrics["accuracy"].tolist() == [s.metrics["accuracy"] for s in history]
    assert trace.step_epoch.tolist() == [s.epoch for s in history]
    assert trace.param_steps.tolist() == list(range(2, 23))
    assert trace.grad_steps.tolist() == list(range(3, 23))
    for i, step in enumerate(trace.param_steps):
        for name, value in seen[int(step)][0].items():
            assert trace.params[name][i].tobytes() == value.tobytes()
    for i, step in enumerate(trace.grad_steps):
        for name, value in seen[int(step)][1].items():
            assert trace.grads[name][i].tobytes() == value.tobytes()
            row = int(step) - trace.start_step - 1  # grad_norm has a row per recorded step
            assert trace.grad_norm[row, trace.param_names.index(name)] == pytest.approx(
                np.linalg.norm(value), rel=1e-15
            )
    # the epochs that ended during the recording, with validation, as the debugger has them
    ended = dbg.epoch_history  # epoch 0 ended at step 3, inside the recording
    assert len(ended) == 7
    assert trace.epochs["end"].tolist() == [3.0 * (e.epoch + 1) for e in ended]
    assert trace.epochs["val_loss"].tolist() == [e.val_loss for e in ended]
    assert trace.epochs["val_metric/accuracy"].tolist() == [
        e.val_metrics["accuracy"] for e in ended
    ]
    edits = [item for item in trace.log if item["kind"] == "edit"]
    assert [item["step"] for item in edits] == [7, 14, 21]
    assert all(item["position"] == item["step"] + 1 for item in edits)
    assert trace.header["scenario"]["layers"][0]["activation"] == "relu"
    assert trace.header["backend"] == {"name": "numpy", "device": "cpu", "dtype": "float64"}


def test_a_float32_run_is_stored_in_float32(tmp_path: Path) -> None:
    dbg = Debugger(_scenario(tmp_path), dtype="float32")
    recorder, seen = _record(dbg, 4)
    save_trace(tmp_path / "f32.npz", recorder.trace())
    trace = load_trace(tmp_path / "f32.npz")
    assert trace.params["hidden.kernel"].dtype == np.float32
    np.testing.assert_array_equal(trace.params["hidden.kernel"][-1], seen[4][0]["hidden.kernel"])


def test_the_file_stays_under_the_cap(tmp_path: Path) -> None:
    scenario = load_scenario("glyphs8")  # 2,410 parameters: 19 KB of weights a step
    cap = MB // 2
    dbg = Debugger(scenario)
    recorder, seen = _record(dbg, 200, max_bytes=cap)
    path = tmp_path / "capped.npz"
    size = save_trace(path, recorder.trace())
    trace = load_trace(path)
    assert size <= cap
    every = trace.header["params_every"]
    assert every > 1 and every & (every - 1) == 0  # a power of two
    steps = trace.param_steps.tolist()
    assert steps[-1] == 200 and all(s % every == 0 for s in steps[:-1])
    assert steps[:-1] == list(range(0, 200, every))
    # the cap was used, not wasted: twice as many weights would not have fitted
    one = sum(v.nbytes for v in seen[0][0].values())
    assert (len(range(0, 200, every // 2)) + 1) * 2 * one > cap - size + len(steps) * 2 * one
    np.testing.assert_array_equal(trace.params["output.kernel"][-1], seen[200][0]["output.kernel"])
    roomy = TraceRecorder(Debugger(scenario), 4 * MB)
    assert roomy.params_every == 1


def test_recording_stops_when_the_per_step_records_fill_the_cap(tmp_path: Path) -> None:
    cap = 80_000
    dbg = Debugger(load_scenario("xor"))
    recorder, _ = _record(dbg, 400, max_bytes=cap)
    assert recorder.stopped is not None and "cap" in recorder.stopped
    path = tmp_path / "full.npz"
    size = save_trace(path, recorder.trace())
    assert size <= cap
    trace = load_trace(path)
    assert 10 < trace.steps < 400
    assert trace.header["stopped"] == recorder.stopped
    assert ReplayDebugger(trace).summary_lines()[-1] == f"note      {recorder.stopped}"


# --------------------------------------------------------------------------- damaged files
def _good(tmp_path: Path) -> Path:
    dbg = Debugger(load_scenario("xor"))
    recorder, _ = _record(dbg, 5)
    path = tmp_path / "good.npz"
    save_trace(path, recorder.trace())
    return path


def _rewrite_header(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    with np.load(path) as loaded:
        arrays = {k: loaded[k] for k in loaded.files}
    header = json.loads(arrays["header"].tobytes())
    change(header)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez(path, **arrays)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("step/loss.npy")
    middle = info.header_offset + 30 + len(info.filename) + info.file_size - 4
    data[middle] ^= 0xFF
    path.write_bytes(bytes(data))


def _drop_array(path: Path) -> None:
    with np.load(path) as loaded:
        arrays = {k: loaded[k] for k in loaded.files if k != "params/hidden.kernel"}
    np.savez(path, **arrays)


def _write(path: Path, save: Callable[..., None], *args: Any, **kwargs: Any) -> None:
    with open(path, "wb") as handle:  # a handle, so NumPy adds no suffix to the name
        save(handle, *args, **kwargs)


def _pickled_header(path: Path) -> None:
    with np.load(path) as loaded:
        arrays: dict[str, Any] = {k: loaded[k] for k in loaded.files}
    arrays["header"] = np.array([{"format": "backprop-tui-trace"}], dtype=object)
    np.savez(path, **arrays)


DAMAGE: list[tuple[str, Callable[[Path], None], str]] = [
    ("empty", lambda p: p.write_bytes(b""), "not a backprop-tui trace (not an .npz archive)"),
    ("text", lambda p: p.write_text("step,loss\n1,0.5\n"), "not an .npz archive"),
    ("truncated", _truncate, "is damaged (the archive is cut short or corrupted)"),
    ("flipped", _flip_bytes, "is damaged"),
    ("npy", lambda p: _write(p, np.save, np.zeros(3)), "a single NumPy array"),
    ("foreign npz", lambda p: _write(p, np.savez, x=np.zeros(3)), "it has no header"),
    ("not json", lambda p: _write(p, np.savez, header=np.zeros(4, np.uint8)), "not valid JSON"),
    ("other format", lambda p: _rewrite_header(p, lambda h: h.update(format="tb")), "another format"),
    ("newer", lambda p: _rewrite_header(p, lambda h: h.update(version=99)), "upgrade backprop-tui"),
    ("steps", lambda p: _rewrite_header(p, lambda h: h.update(steps=6)), "inconsistent contents"),
    ("missing array", _drop_array, "inconsistent contents"),
    ("pickle", _pickled_header, "is damaged"),
]  # fmt: skip


@pytest.mark.parametrize(("what", "damage", "message"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_a_damaged_or_foreign_file_gets_one_clear_line(
    tmp_path: Path, what: str, damage: Callable[[Path], None], message: str
) -> None:
    path = _good(tmp_path)
    damage(path)
    with pytest.raises(TraceError) as caught:
        load_trace(path)
    text = str(caught.value)
    assert text.startswith(f"{path}: ") and message in text
    assert "\n" not in text
    result = CliRunner().invoke(main, ["replay", str(path), "--summary"])
    assert result.exit_code == 2 and result.output == f"backprop-tui: {text}\n"


def test_a_missing_file_and_a_folder(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such file"):
        load_trace(tmp_path / "absent.npz")
    with pytest.raises(TraceError, match="is a folder"):
        load_trace(tmp_path)


# --------------------------------------------------------------------------- atomic saves
def test_a_failure_mid_write_leaves_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _good(tmp_path)
    before = path.read_bytes()
    longer = Debugger(load_scenario("xor"))
    recorder, _ = _record(longer, 9)
    import numpy.lib.format as npy_format

    real_write = npy_format.write_array
    calls = []

    def fails_on_the_third(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_write(*args, **kwargs)

    monkeypatch.setattr(npy_format, "write_array", fails_on_the_third)
    with pytest.raises(OSError, match="No space left"):
        save_trace(path, recorder.trace())
    assert path.read_bytes() == before
    assert load_trace(path).steps == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.npz"]  # no temporary left


KILLED_MID_SAVE = r"""
import sys, time
import numpy.lib.format as npy_format
from backprop_tui.core import Debugger, load_scenario
from backprop_tui.core.traces.recording import TraceRecorder, save_trace

path = sys.argv[1]
dbg = Debugger(load_scenario("xor"))
recorder = TraceRecorder(dbg, 64 << 20)
dbg.listeners.append(recorder.observe)
dbg.run(5)
save_trace(path, recorder.trace())
dbg.run(30)
real_write = npy_format.write_array
calls = []

def stalls(*args, **kwargs):
    real_write(*args, **kwargs)
    calls.append(1)
    if len(calls) == 4:  # part of the new archive is on disk
        args[0].flush()
        print("writing", flush=True)
        time.sleep(60)

npy_format.write_array = stalls
save_trace(path, recorder.trace())
print("finished", flush=True)
"""


def test_kill_minus_nine_mid_save_leaves_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "run.npz"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_SAVE, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line == "writing\n", child.stderr.read() if child.stderr else line
        temporaries = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert len(temporaries) == 1 and temporaries[0].stat().st_size > 0
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    trace = load_trace(path)
    assert trace.steps == 5  # the first save, whole


# --------------------------------------------------------------------------- replay
def _replay(tmp_path: Path, steps: int = 12, max_bytes: int = 64 * MB) -> tuple[Any, Any, Trace]:
    dbg = Debugger(_scenario(tmp_path))
    recorder, seen = _record(dbg, steps, max_bytes=max_bytes)
    dbg.set_weight("hidden.bias", (1,), 0.5)  # between steps: logged after the last step
    save_trace(tmp_path / "r.npz", recorder.trace())
    return dbg, seen, load_trace(tmp_path / "r.npz")


def test_replay_steps_forward_and_back_through_the_recording(tmp_path: Path) -> None:
    dbg, seen, trace = _replay(tmp_path)
    replay = ReplayDebugger(trace)
    moved: list[int] = []
    replay.listeners.append(lambda r: moved.append(r.step_index))
    assert not replay.can_edit and not replay.can_train and replay.phase == "update"
    assert (replay.step_index, replay.epoch, replay.loss, replay.metrics) == (0, 0, None, {})
    assert replay.grads == {} and not replay.back()
    np.testing.assert_array_equal(replay.params["hidden.kernel"], seen[0][0]["hidden.kernel"])
    assert [layer.name for layer in replay.scenario.layers] == ["hidden", "output"]
    assert replay.scenario.layers[0].inputs == 2 and replay.scenario.steps_per_epoch() == 3
    assert replay.scenario.optimizer.name == "adam" and replay.scenario.loss == dbg.scenario.loss

    replay.step("phase")  # every granularity below an epoch is one recorded step
    assert replay.step_index == 1 and replay.loss == dbg.step_history[0].loss
    assert replay.metrics == dict(dbg.step_history[0].metrics)
    np.testing.assert_array_equal(replay.grads["output.kernel"], seen[1][1]["output.kernel"])
    assert replay.epoch == 0 and replay.epoch_history == []
    replay.step("epoch")
    assert replay.step_index == 3 and replay.epoch == 1
    assert replay.epoch_history[0].as_dict() == dbg.epoch_history[0].as_dict()
    assert [s.loss for s in replay.step_history] == [s.loss for s in dbg.step_history[:3]]
    assert (
        replay.run_until(max_steps=100).steps == 9 and replay.finished and replay.step_index == 12
    )
    assert replay.epoch == dbg.epoch
    assert replay.log == []  # the edit came after the last recorded step
    for expected in range(11, -1, -1):
        assert replay.back() and replay.step_index == expected
    assert not replay.back()
    assert moved[:3] == [1, 3, 4] and moved[-1] == 0
    with pytest.raises(NotPossible, match="editing a weight"):
        replay.set_weight("hidden.bias", (0,), 1.0)
    assert replay.record_of("forward", 0) is None and replay.layer_arrays(0) == {}
    assert replay.update_arrays("hidden.kernel") is None and list(replay.records) == []
    assert isinstance(replay, RunView) and not replay.shows_phases
    for refused in (
        lambda: replay.add_breakpoint("loss < 1"),
        lambda: replay.run_until("loss < 1"),
        lambda: replay.gradient_check(),
    ):
        with pytest.raises(NotPossible):
            refused()


def test_replay_shows_the_nearest_recorded_weights_at_or_before(tmp_path: Path) -> None:
    _, seen, trace = _replay(tmp_path, steps=40, max_bytes=80_000)
    every = trace.header["params_every"]
    assert every > 1
    replay = ReplayDebugger(trace)
    replay.goto(every + 1)
    assert replay.params_step == every and replay.grads_step == every
    np.testing.assert_array_equal(replay.params["hidden.kernel"], seen[every][0]["hidden.kernel"])
    replay.goto(40)
    assert replay.params_step == 40
    np.testing.assert_array_equal(replay.grads["hidden.bias"], seen[40][1]["hidden.bias"])
    assert not replay.params["hidden.kernel"].flags.writeable


def test_run_save_then_replay_summary_and_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    path = tmp_path / "xor.npz"
    result = runner.invoke(main, ["run", "xor", "--steps", "40", "--save", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["steps"] == 40  # stdout stays one JSON object
    assert f"trace saved to {path}" in result.stderr
    summary = runner.invoke(main, ["replay", str(path), "--summary"])
    assert summary.exit_code == 0
    assert "scenario  xor: 2 → 4 tanh → 1 sigmoid" in summary.output
    assert "recorded  steps 1–40 (40 steps, 40 epochs ended) on numpy cpu float64" in summary.output

    opened: list[tuple[Any, float]] = []

    class FakeApp:
        return_code = 0

        def run(self) -> None:
            pass

    def make_app(debugger: Any, fps: float = 10.0) -> FakeApp:
        opened.append((debugger, fps))
        return FakeApp()

    import backprop_tui.tui.app as app_module

    monkeypatch.setattr(app_module, "make_app", make_app)
    shown = runner.invoke(main, ["replay", str(path), "--fps", "4"])
    assert shown.exit_code == 0, shown.output
    [(debugger, fps)] = opened
    assert isinstance(debugger, ReplayDebugger) and fps == 4.0 and debugger.end == 40

    missing_folder = runner.invoke(
        main, ["run", "xor", "--steps", "2", "--save", str(tmp_path / "no" / "x.npz")]
    )
    assert missing_folder.exit_code == 2
    assert "its folder does not exist" in missing_folder.output


async def test_the_app_says_when_replayed_numbers_were_recorded(tmp_path: Path) -> None:
    from backprop_tui.tui.app import make_app
    from backprop_tui.tui.widgets.gradients import GradientsPane

    _, _, trace = _replay(tmp_path, steps=40, max_bytes=80_000)
    replay = ReplayDebugger(trace)
    kept = {int(s) for s in trace.grad_steps} | {int(s) for s in trace.param_steps}
    target = next(s for s in range(2, 40) if s not in kept)  # a step whose numbers are older
    app = make_app(replay)
    async with app.run_test(size=(120, 40)) as pilot:
        replay.goto(target)
        app.redraw_all()
        await pilot.pause()
        what = app.query_one(GradientsPane).arrays()[0]
        kind = "grads" if what.startswith("dL/dW") else "params"
        recorded = replay.recorded_step(kind)
        assert recorded is not None and recorded != target
        assert f"recorded at step {recorded}" in what
