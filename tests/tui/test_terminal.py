"""The real ``backprop-tui`` command in a real terminal (tmux), keys in, screen text out."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMAND = Path(sys.executable).parent / "backprop-tui"

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)"
)


class Terminal:
    """One tmux session running a command at a fixed size, on a tmux server of its own.

    Its own server (``-L``) starts from this test's environment, not from whatever a
    tmux server already running on the machine was started with.
    """

    def __init__(self, command: str, width: int, height: int) -> None:
        self.name = f"backprop-tui-test-{uuid.uuid4().hex[:8]}"
        shell = f"cd {ROOT} && {command}; echo EXITED $?; sleep 30"
        subprocess.run(
            [
                *self.tmux,
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
            [*self.tmux, "capture-pane", "-p", "-J", "-t", self.name],
            capture_output=True,
            text=True,
        )
        return result.stdout

    def keys(self, *keys: str) -> None:
        for key in keys:
            subprocess.run([*self.tmux, "send-keys", "-t", self.name, key], check=True)

    def wait_until(self, holds: Callable[[str], bool], what: str, timeout: float = 15.0) -> str:
        """The screen once ``holds(screen)``; fails with the last screen after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if holds(screen):
                return screen
            assert "Traceback" not in screen, screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} never showed; the screen was:\n{screen}")
            time.sleep(0.05)  # a real terminal: nothing to await but its screen

    def wait_for(self, *texts: str, timeout: float = 15.0) -> str:
        """The screen once it shows every one of ``texts``."""
        return self.wait_until(
            lambda screen: all(text in screen for text in texts), repr(texts), timeout
        )

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)

    @property
    def tmux(self) -> list[str]:
        return ["tmux", "-L", self.name]


@pytest.fixture(params=[(80, 24), (200, 50)], ids=["80x24", "200x50"])
def terminal(request: pytest.FixtureRequest) -> Iterator[Terminal]:
    width, height = request.param
    term = Terminal(f"{COMMAND} scenarios/xor.yaml", width, height)
    yield term
    term.close()


# The key bar pads its keys at wide sizes ("? help" at 80 columns, " ?  help" at 200):
# a key and its label, with any spacing between them.
HELP_KEY = re.compile(r"\?\s+help")


def key_bar_drawn(screen: str) -> bool:
    lines = screen.rstrip().splitlines()
    return bool(lines) and HELP_KEY.search(lines[-1]) is not None  # at the bottom


def test_the_command_steps_helps_and_quits_in_a_real_terminal(terminal: Terminal) -> None:
    terminal.wait_until(key_bar_drawn, "the key bar")
    screen = terminal.wait_for("space: step a phase", "backprop-tui xor", "step 0/500")
    assert key_bar_drawn(screen)
    for stage in ("[input]", "[forward", "[loss]", "[gradients]", "[update]"):
        terminal.keys("Space")
        terminal.wait_for(stage)
    terminal.wait_for("step 1/500", "loss 0.7286")
    terminal.keys("n")
    terminal.wait_for("step 2/500")
    terminal.keys("?")
    terminal.wait_for("Step one phase of the pipeline", "Continue to the next breakpoint")
    terminal.keys("Escape")
    terminal.wait_until(
        lambda screen: "step 2/500" in screen and "Step one phase" not in screen,
        "the main screen again",
    )
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


def test_the_decision_boundary_opens_with_tab_at_80x24() -> None:
    term = Terminal(f"{COMMAND} scenarios/xor.yaml", 80, 24)
    try:
        term.wait_until(key_bar_drawn, "the key bar")
        term.keys("Tab")  # from the network, the first pane, to the boundary, the second
        term.wait_for("hidden unit 0/4 tanh · step 0", "1.1┤", "-0.1┤", "x0")
        term.keys("]", "n")
        screen = term.wait_for("output sigmoid · step 1", "▀")
    finally:
        term.close()
    assert "Traceback" not in screen


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_a_conv_weight_s_chain_rule_in_a_real_terminal(size: tuple[int, int]) -> None:
    term = Terminal(f"{COMMAND} glyphs8_cnn", *size)
    try:
        term.wait_until(key_bar_drawn, "the key bar")
        term.wait_for("step 0/1000")
        term.keys("n")  # a whole step: the update is shown
        term.wait_for("step 1/1000")
        term.keys("S-Right", "S-Right")
        screen = term.wait_for("cursor on conv.kernel[0, 0, 0, 2]")
        for _ in range(10):  # a small terminal folds the panes but one: Tab to the chain rule
            try:
                screen = term.wait_for("✓ same", timeout=1.0)
                break
            except AssertionError:
                term.keys("Tab")
        assert "✓ same" in screen and "Σ_b Σ_(y,x)" in screen, screen
        assert "✗" not in screen
        term.keys("q")
        assert "EXITED 0" in term.wait_for("EXITED")
    finally:
        term.close()
