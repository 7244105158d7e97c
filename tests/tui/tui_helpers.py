"""Helpers of the UI tests: scenarios written inline, and what the screen shows as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backprop_tui.core import Debugger, load_scenario
from backprop_tui.tui.app import DebuggerApp
from backprop_tui.tui.widgets.base import Lines

LONG_XOR = """
name: long-xor
description: XOR with enough epochs that a continue runs until paused.
seed: 0
data: {generator: xor}
model:
  inputs: 2
  layers:
    - {name: hidden, type: dense, units: 4, activation: tanh}
    - {name: output, type: dense, units: 1, activation: sigmoid}
loss: binary_crossentropy
optimizer: {name: sgd, learning_rate: 0.5}
metrics: [accuracy]
training: {epochs: 1000000, batch_size: 4, shuffle: true}
"""

EXPLODING = """
name: exploding
description: A linear regression with a learning rate so large the loss overflows.
seed: 0
data:
  inline: {x: [[1.0], [2.0], [3.0], [4.0]], y: [[2.0], [4.0], [6.0], [8.0]]}
model:
  inputs: 1
  layers:
    - {name: out, type: dense, units: 1, activation: linear}
loss: mse
optimizer: {name: sgd, learning_rate: 50.0}
training: {epochs: 100000, batch_size: 4, shuffle: false}
"""


def pane_text(app: DebuggerApp, name: str) -> str:
    """What a pane or bar shows now, as plain text."""
    return app.query_one(f"#{name}", Lines).plain


def screen_text(app: DebuggerApp) -> str:
    """The whole screen as plain text, line by line."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


def debugger_on(path: Path, **kwargs: Any) -> Debugger:
    return Debugger(load_scenario(path), **kwargs)
