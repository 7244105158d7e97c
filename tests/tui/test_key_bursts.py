"""A burst of keys never ends the app: a held key or a paste must not lose the session.

Keys are posted in bursts of 40 without waiting between them, as a terminal
delivers a paste, drawn with a fixed seed from every key the app answers to —
stepping, continue and pause, time travel, zoom, every dialog (help, breakpoints,
weight editor, learning rate, go-to-step, gradient check, the command palette) with Enter, Escape and text.
"""

from __future__ import annotations

import random

import pytest
from backprop_tui.core import Debugger, load_scenario
from backprop_tui.tui.app import make_app
from textual import events

KEYS = [
    "space",
    "s",
    "l",
    "n",
    "e",
    "c",
    "p",
    "b",
    "tab",
    "shift+tab",
    "z",
    "E",
    "left_square_bracket",
    "right_square_bracket",
    "g",
    "B",
    "w",
    "L",
    "G",
    "question_mark",
    "up",
    "down",
    "left",
    "right",
    "shift+up",
    "shift+left",
    "o",
    "pageup",
    "pagedown",
    "ctrl+p",
    "enter",
    "escape",
    "escape",
    "enter",
    "1",
    "0",
    "minus",
    "full_stop",
    "a",
    "d",
    "backspace",
]
CHARS = {
    "space": " ",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "question_mark": "?",
    "minus": "-",
    "full_stop": ".",
    "enter": "\r",
    "escape": "\x1b",
    "backspace": "\x7f",
}


def _character(key: str) -> str | None:
    return CHARS.get(key, key if len(key) == 1 else None)


@pytest.mark.parametrize(("seed", "size"), [(0, (80, 24)), (1, (80, 24)), (2, (120, 40))])
async def test_two_thousand_keys_in_bursts_leave_a_working_app(
    seed: int, size: tuple[int, int]
) -> None:
    rng = random.Random(seed)
    app = make_app(Debugger(load_scenario("xor")))
    async with app.run_test(size=size) as pilot:
        for _ in range(50):
            for _ in range(40):
                key = rng.choice(KEYS)
                app.post_message(events.Key(key, _character(key)))
            await pilot.pause()
            if not app.is_running:  # Quit, chosen in the command palette: a clean exit
                assert app.return_code == 0
                return
        # Still working: close whatever is open, pause a run, and step.
        for _ in range(4):
            await pilot.press("escape")
        await pilot.press("p")
        for _ in range(50):  # a run stops within a step of being paused
            if not app.session.running:
                break
            await pilot.pause(0.1)
        assert not app.session.running
        dbg = app.session.dbg
        before = (dbg.step_index, dbg.phase)
        if not dbg.finished:
            await pilot.press("space")
            assert (dbg.step_index, dbg.phase) != before
        assert len(app.screen_stack) == 1
