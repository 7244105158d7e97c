"""The real ``backprop-tui`` command in a real terminal (tmux), keys in, screen text out."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMAND = Path(sys.executable).parent / "backprop-tui"

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"
)


class Terminal:
    """One tmux session running a command at a fixed size."""

    def __init__(self, command: str, width: int, height: int) -> None:
        self.name = f"backprop-tui-test-{uuid.uuid4().hex[:8]}"
        shell = f"cd {ROOT} && {command}; echo EXITED $?; sleep 30"
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                str(width),
                "-y",
                str(height),
                shell,
            ],
            check=True,
        )

    def screen(self) -> str:
        result = subprocess.run(
            ["tmux", "capture-pane", "-p", "-J", "-t", self.name], capture_output=True, text=True
        )
        return result.stdout

    def keys(self, *keys: str) -> None:
        for key in keys:
            subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        """The screen once it shows ``text``; fails with the last screen after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            assert "Traceback" not in screen, screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never showed; the screen was:\n{screen}")
            time.sleep(0.05)  # a real terminal: nothing to await but its screen

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture(params=[(80, 24), (200, 50)], ids=["80x24", "200x50"])
def terminal(request: pytest.FixtureRequest) -> Iterator[Terminal]:
    width, height = request.param
    term = Terminal(f"{COMMAND} scenarios/xor.yaml", width, height)
    yield term
    term.close()


def test_the_command_steps_helps_and_quits_in_a_real_terminal(terminal: Terminal) -> None:
    screen = terminal.wait_for("space: step a phase")
    assert "backprop-tui xor" in screen and "step 0/500" in screen
    assert "? help" in screen.rstrip().splitlines()[-1]  # the key bar, at the bottom
    for stage in ("[input]", "[forward", "[loss]", "[gradients]", "[update]"):
        terminal.keys("Space")
        terminal.wait_for(stage)
    screen = terminal.wait_for("step 1/500")
    assert "loss 0.7286" in screen
    terminal.keys("n")
    terminal.wait_for("step 2/500")
    terminal.keys("?")
    screen = terminal.wait_for("Step one phase of the pipeline")
    assert "Continue to the next breakpoint" in screen
    terminal.keys("Escape")
    terminal.wait_for("step 2/500")
    terminal.keys("c")
    terminal.wait_for("training finished")
    terminal.keys("q")
    screen = terminal.wait_for("EXITED")
    assert "EXITED 0" in screen


def test_a_scenario_that_does_not_load_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("model:\n  inputs: 2\n  layers: [{type: dense, units: four}]\n")
    term = Terminal(f"{COMMAND} {broken}", 80, 24)
    try:
        screen = term.wait_for("EXITED")
    finally:
        term.close()
    assert "EXITED 2" in screen
    assert "Traceback" not in screen
    assert "broken.yaml" in screen
