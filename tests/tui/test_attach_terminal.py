"""``backprop-tui examples/cnn.py`` in a real terminal (tmux): opens, steps by phase and
by layer, shows module names, quits cleanly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("torch")

from test_terminal import COMMAND, Terminal, key_bar_drawn


@pytest.fixture(params=[(80, 24), (120, 40)], ids=["80x24", "120x40"])
def cnn_terminal(request: pytest.FixtureRequest) -> Iterator[Terminal]:
    width, height = request.param
    term = Terminal(f"{COMMAND} examples/cnn.py", width, height)
    yield term
    term.close()


def test_an_example_script_opens_steps_by_phase_and_layer_and_quits(
    cnn_terminal: Terminal,
) -> None:
    term = cnn_terminal
    term.wait_until(key_bar_drawn, "the key bar", timeout=60)
    term.wait_for("backprop-tui SmallCNN", "features.0", "Conv2d", "step 0/")
    term.keys("Space")
    term.wait_for("[input]")
    for _ in range(3):
        term.keys("l")
    # Both at once: on a loaded machine the panes are drawn a moment after the pipeline.
    term.wait_for("forward features.2", "MaxPool2d")
    term.keys("Space")  # the rest of the forward pass
    term.wait_for("[forward out]")
    term.keys("Space")
    term.wait_for("[loss]")
    term.keys("n")
    term.wait_for("step 1/")
    term.keys("q")
    screen = term.wait_for("EXITED", timeout=30)
    assert "EXITED 0" in screen
