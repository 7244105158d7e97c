"""Every update rule shown reproduces the numbers of the update table beside it."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from backprop_tui.core import Debugger, load_scenario

SCENARIO = """
name: rules
description: Two dense layers, for the optimizer under test.
seed: 3
data: {{generator: moons, n: 64}}
model:
  inputs: 2
  layers:
    - {{name: hidden, type: dense, units: 5, activation: tanh}}
    - {{name: output, type: dense, units: 1, activation: sigmoid}}
loss: binary_crossentropy
optimizer: {optimizer}
training: {{epochs: 3, batch_size: 16}}
"""


def _rows(tmp_path: Path, optimizer: str, steps: int = 4) -> tuple[Debugger, list]:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.format(optimizer=optimizer))
    dbg = Debugger(load_scenario(path))
    for _ in range(steps):
        dbg.step("batch")
    return dbg, dbg.update_rows("hidden.kernel") + dbg.update_rows("output.bias")


def test_adams_rule_as_shown_gives_the_tables_new_value(tmp_path: Path) -> None:
    dbg, rows = _rows(tmp_path, "{name: adam, learning_rate: 0.01}")
    text = dbg.update_rule
    assert "ε/√(1−β₂ᵗ)" in text  # where the code really puts ε
    o = dbg.scenario.optimizer.options
    lr, b2, eps, t = 0.01, float(o["beta_2"]), float(o["epsilon"]), dbg.opt_state.step
    for r in rows:
        shown = r.value - lr * r.terms["m̂"] / (math.sqrt(r.terms["v̂"]) + eps / math.sqrt(1 - b2**t))
        assert shown == pytest.approx(r.new_value, rel=1e-12, abs=1e-15)


def test_the_textbook_rule_would_not(tmp_path: Path) -> None:
    # The reason for the rule above: ε added to √v̂ misses by about ε·lr/v̂ on small v.
    _, rows = _rows(tmp_path, "{name: adam, learning_rate: 0.01, epsilon: 0.001}")
    misses = [
        abs(r.value - 0.01 * r.terms["m̂"] / (math.sqrt(r.terms["v̂"]) + 0.001) - r.new_value)
        for r in rows
    ]
    assert max(misses) > 1e-9


@pytest.mark.parametrize("centered", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_rmsprops_rule_as_shown_gives_the_tables_change(
    tmp_path: Path, centered: bool, momentum: float
) -> None:
    optimizer = (
        f"{{name: rmsprop, learning_rate: 0.01, momentum: {momentum}, "
        f"centered: {str(centered).lower()}}}"
    )
    dbg, rows = _rows(tmp_path, optimizer)
    text = dbg.update_rule
    assert ("mg" in text) == centered and ("new = w − v" in text) == bool(momentum)
    eps = float(dbg.scenario.optimizer.options["epsilon"])
    for r in rows:
        if momentum:  # the velocity column is the step: new = w − v
            assert r.value - r.terms["velocity"] == pytest.approx(r.new_value, rel=1e-12)
        else:
            ms = r.terms["mean_square"]
            denominator = ms - r.terms["mean_grad"] ** 2 if centered else ms
            shown = r.value - 0.01 * r.gradient / math.sqrt(denominator + eps)
            assert shown == pytest.approx(r.new_value, rel=1e-12, abs=1e-15)


def test_nesterovs_rule_as_shown_gives_the_tables_new_value(tmp_path: Path) -> None:
    dbg, rows = _rows(tmp_path, "{name: sgd, learning_rate: 0.1, momentum: 0.9, nesterov: true}")
    assert dbg.update_rule.startswith("v = 0.9·v − lr·g;  new = w + 0.9·v − lr·g")
    for r in rows:
        shown = r.value + 0.9 * r.terms["velocity"] - 0.1 * r.gradient
        assert shown == pytest.approx(r.new_value, rel=1e-12, abs=1e-15)
