"""``backprop-tui run``: exit status, warnings in text, one numbering, --no-breakpoints,
--epochs, NaN or Inf by name, progress without a terminal, and an interrupt that keeps
the trace (a real process, a real signal)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest
from backprop_tui.core import Debugger, load_scenario, load_trace
from backprop_tui.tui.cli import main
from click.testing import CliRunner, Result

pytestmark = pytest.mark.filterwarnings(
    "ignore:overflow encountered", "ignore:invalid value encountered"
)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def report(*args: str, status: int = 0) -> Any:
    result = invoke("run", *args, "--json")
    assert result.exit_code == status, result.output
    return json.loads(result.stdout)


# ---------------------------------------------------------------- exit status
def test_exit_status_says_how_the_run_ended() -> None:
    assert invoke("run", "xor", "--steps", "3").exit_code == 0  # --steps
    assert invoke("run", "xor", "--until", "step >= 2").exit_code == 0  # a breakpoint
    assert invoke("run", "bug_dying_relu").exit_code == 0  # the scenario's own breakpoint
    assert invoke("run", "bug_nan").exit_code == 1  # stopped on Inf
    assert invoke("run", "no_such_scenario").exit_code == 2
    assert invoke("run", "xor", "--until", "loss <").exit_code == 2
    assert invoke("run", "xor", "--steps", "-1").exit_code == 2  # usage
    assert invoke("run", "xor", "--epochs", "0").exit_code == 2


def test_a_finished_run_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "short.yaml"
    path.write_text(
        "data: {generator: xor}\nloss: mse\n"
        "model: {inputs: 2, layers: [{units: 3, activation: tanh}, {units: 1}]}\n"
        "training: {epochs: 4, batch_size: 4}\n"
    )
    result = invoke("run", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith("stopped by end")


# ------------------------------------------------------------ what it prints
def test_text_mode_prints_the_warnings_as_json_does() -> None:
    as_json = report("bug_exploding")
    text = invoke("run", "bug_exploding")
    assert text.exit_code == 0, text.output
    assert as_json["warnings"]
    printed = [line.removeprefix("warning: ") for line in text.stdout.splitlines()]
    assert [line for line in printed if line in as_json["warnings"]] == as_json["warnings"]
    assert text.stdout.rstrip().endswith("stopped by breakpoint: grad_norm > 1000")


def test_json_counts_steps_taken_and_the_epoch_of_the_last_step() -> None:
    # bug_exploding: 200 samples in batches of 20, 10 steps an epoch; it stops at step 1
    out = report("bug_exploding")
    assert (out["steps"], out["epoch"]) == (1, 1)
    # xor: one step an epoch
    seven = report("xor", "--steps", "7")
    assert (seven["steps"], seven["epoch"]) == (7, 7)
    # the header's numbers: the engine's own step_number and epoch_number
    dbg = Debugger(load_scenario("bug_symmetry"))
    result = dbg.run_until()
    out = report("bug_symmetry")
    assert out["steps"] == result.steps == dbg.step_number
    assert out["epoch"] == dbg.epoch_number >= 10  # the breakpoint reads "epoch >= 10"
    assert out["epoch"] == dbg.step_history[-1].epoch + 1


def test_a_nan_stop_says_whether_it_was_nan_or_inf() -> None:
    out = report("bug_nan", status=1)
    assert out["stopped_by"] == "inf"
    assert out["warnings"][-1].startswith("Inf first appeared in the loss")
    text = invoke("run", "bug_nan")
    assert text.exit_code == 1
    assert text.stdout.rstrip().endswith("stopped by inf")


def test_without_a_terminal_progress_says_what_it_is() -> None:
    result = invoke("run", "xor", "--steps", "5", "--json")
    assert result.exit_code == 0
    assert result.stderr.strip() != "xor"
    first = result.stderr.splitlines()[0]
    assert "training xor" in first and "5 steps" in first and "numpy cpu" in first
    json.loads(result.stdout)  # stdout holds the JSON alone
    checked = invoke("check", "xor")
    assert checked.exit_code == 0, checked.output
    assert checked.stderr.splitlines()[0].startswith("backprop-tui: checking xor, up to 500 steps")


# ---------------------------------------------------- breakpoints and epochs
def test_no_breakpoints_runs_past_the_scenarios_own() -> None:
    stopped = report("bug_dying_relu")
    assert stopped["stopped_by"].startswith("breakpoint:")
    free = report("bug_dying_relu", "--no-breakpoints", "--steps", "60")
    assert free["stopped_by"] == "steps" and free["steps"] == 60
    # the diagnostics still speak, and --until still stops
    assert any("dying ReLU" in text for text in free["warnings"])
    until = report("bug_dying_relu", "--no-breakpoints", "--until", "step >= 5")
    assert until["stopped_by"] == "breakpoint: step >= 5" and until["steps"] == 5
    # NaN and Inf stop whatever the breakpoints
    assert report("bug_nan", "--no-breakpoints", status=1)["stopped_by"] == "inf"


def test_epochs_overrides_the_scenarios_epochs() -> None:
    short = report("xor", "--epochs", "3")
    assert (short["steps"], short["epoch"], short["stopped_by"]) == (3, 3, "end")
    # training on past the scenario's 500 epochs is asked for explicitly
    assert report("xor", "--steps", "600")["steps"] == 500
    longer = report("xor", "--epochs", "600", "--steps", "550")
    assert (longer["steps"], longer["epoch"], longer["stopped_by"]) == (550, 550, "steps")


def test_the_engine_options_behind_the_flags() -> None:
    scenario = load_scenario("bug_dying_relu")
    dbg = Debugger(scenario, epochs=2, breakpoints=False)
    assert dbg.breakpoints == [] and dbg.total_epochs == 2
    assert dbg.total_steps == 2 * scenario.steps_per_epoch()
    assert dbg.run_until().stopped_by == "end" and dbg.finished
    assert scenario.training.epochs == 20  # the loaded scenario is left as it was
    with pytest.raises(ValueError, match="epochs"):
        Debugger(scenario, epochs=0)


# ------------------------------------------------------------- interrupted
def _wait_for(stream: IO[str], words: str, limit_s: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if words in line:
            return seen
    raise AssertionError(f"no {words!r} in {limit_s} s; stderr so far: {seen}")


@pytest.mark.parametrize(
    ("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_an_interrupted_recording_keeps_its_trace(
    tmp_path: Path, sig: signal.Signals, status: int
) -> None:
    trace = tmp_path / "t.npz"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # glyphs trains its 10 epochs in seconds: --epochs keeps it going until the signal
    command = ["run", "glyphs", "--save", str(trace), "--steps", "100000", "--epochs", "10000"]
    process = subprocess.Popen(
        [sys.executable, "-m", "backprop_tui.tui.cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stderr is not None
        _wait_for(process.stderr, "glyphs: step ", limit_s=120)  # it is training
        process.send_signal(sig)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == status, err
    assert "Aborted" not in err and "Traceback" not in err
    assert out.rstrip().endswith("stopped by interrupt")
    steps = int(out.split()[1])
    assert 0 < steps < 100000
    loaded = load_trace(trace)
    assert loaded.steps == steps  # every step taken is in the trace
    assert [p.name for p in tmp_path.iterdir()] == ["t.npz"]  # written atomically: no leftovers


def test_the_app_command_takes_no_breakpoints_and_epochs(monkeypatch: pytest.MonkeyPatch) -> None:
    from backprop_tui.tui import app as app_module

    opened: list[Any] = []

    class NoScreen:
        return_code = 0

        def run(self) -> None:
            pass

    def make_app(run: Any, **_: Any) -> NoScreen:
        opened.append(run)
        return NoScreen()

    monkeypatch.setattr(app_module, "make_app", make_app)
    assert invoke("bug_dying_relu", "--no-breakpoints", "--epochs", "3").exit_code == 0
    assert invoke("open", "bug_dying_relu").exit_code == 0
    free, shipped = opened
    assert free.breakpoints == [] and free.total_epochs == 3
    assert [b.text for b in shipped.breakpoints] == list(shipped.scenario.breakpoints)
    assert shipped.total_epochs == 20


def test_on_a_terminal_progress_is_a_bar() -> None:
    import pty

    leader, follower = pty.openpty()
    try:
        finished = subprocess.run(
            [sys.executable, "-m", "backprop_tui.tui.cli", "run", "xor", "--steps", "5"],
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=120,
            check=False,
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: everything is read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert finished.returncode == 0
    text = shown.decode(errors="replace")
    assert "5/5" in text and "xor" in text  # a few steps: the bar fits the pty buffer
    assert "training xor" not in text  # the bar, not the lines for a pipe


def test_a_second_signal_stops_at_once_with_its_own_status() -> None:
    from backprop_tui.tui.cli import Interrupts

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped, Interrupts() as interrupts:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handler runs between bytecodes
        assert interrupts.signal == signal.SIGINT  # the first: noted, training goes on
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)
        pytest.fail("a second signal must stop at once")
    assert stopped.value.code == 143
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers are given back
