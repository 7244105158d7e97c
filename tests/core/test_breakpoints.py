"""Breakpoints on the Debugger: add, toggle, remove, hits after full steps, and run_until."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from backprop_tui.core import Debugger, ExpressionError, NotPossible, ScenarioError, load_scenario
from backprop_tui.core.spec.scenario import parse_scenario
from backprop_tui.core.spec.yamlio import load_yaml

# NumPy warns on the way to an overflow; the stops are what is tested here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:overflow encountered", "ignore:invalid value encountered"
)

PROBE = """
name: probe
seed: 1
data: {generator: circles, n: 50, validation_split: 0.2}
model:
  inputs: 2
  layers:
    - {name: hidden, units: 6, activation: relu}
    - {name: output, units: 1, activation: sigmoid}
loss: binary_crossentropy
optimizer: {name: adam, learning_rate: 0.05}
metrics: [accuracy]
training: {epochs: 3, batch_size: 16}
"""
# 40 training samples in batches of 16: 3 steps per epoch, 9 in all


@pytest.fixture
def dbg() -> Debugger:
    return Debugger(parse_scenario(load_yaml(PROBE, "probe.yaml"), Path(".")))


def breaks(dbg: Debugger) -> list[str]:
    return [e.text for e in dbg.log if e.level == "break"]


def test_run_until_stops_when_the_expression_holds(dbg: Debugger) -> None:
    result = dbg.run_until("step >= 4")
    assert (result.stopped_by, result.steps, dbg.step_index) == ("breakpoint: step >= 4", 4, 4)
    assert result.hit is not None and result.hit.kind == "until"
    assert result.hit.reason == "step = 4 >= 4"
    assert breaks(dbg) == ["until step >= 4 hit: step = 4 >= 4"]
    # A condition that still holds stops again after one more step, as gdb's would.
    again = dbg.run_until("step >= 4")
    assert (again.stopped_by, again.steps, dbg.step_index) == ("breakpoint: step >= 4", 1, 5)


def test_run_until_stops_at_the_end_or_after_max_steps(dbg: Debugger) -> None:
    assert dbg.run_until("loss < 0").stopped_by == "end"
    assert dbg.step_index == dbg.total_steps == 9
    assert dbg.run_until("loss < 0").steps == 0  # nothing left to train
    with pytest.raises(NotPossible, match="training finished"):
        dbg.step("batch")
    assert dbg.run_until("loss < 0", max_steps=4).stopped_by == "end"  # no training on unasked
    dbg.extend(2)
    assert dbg.total_steps == 15 and not dbg.finished
    limited = dbg.run_until("loss < 0", max_steps=4)
    assert (limited.stopped_by, limited.steps, dbg.step_index) == ("steps", 4, 13)
    assert dbg.run_until(max_steps=0).steps == 0


def test_run_until_finishes_a_step_begun_by_phases(dbg: Debugger) -> None:
    dbg.step("phase")
    dbg.step("phase")
    assert dbg.hit_breakpoint() is None  # only full steps are checked
    result = dbg.run_until("step >= 1")
    assert (result.steps, dbg.step_index, dbg.phase) == (1, 1, "update")


def test_a_bad_expression_fails_before_any_step(dbg: Debugger) -> None:
    with pytest.raises(ExpressionError) as caught:
        dbg.run_until("grad_norm(hiden) > 1")
    assert caught.value.column == 10
    assert dbg.step_index == 0 and dbg.phase == "update"


def test_undefined_values_wait_for_the_first_epoch(dbg: Debugger) -> None:
    result = dbg.run_until("val_loss > 0")
    assert dbg.step_index == 3 and dbg.epoch == 1  # the first epoch's end
    assert result.hit is not None
    assert result.hit.reason == f"val_loss = {dbg.epoch_history[0].val_loss:.4g} > 0"


def test_breakpoints_are_added_toggled_and_removed(dbg: Debugger) -> None:
    first = dbg.add_breakpoint("step >= 2")
    second = dbg.add_breakpoint("accuracy >= 0")  # holds at every step
    assert dbg.breakpoints == [first, second]
    assert (first.text, first.enabled, first.hits) == ("step >= 2", True, 0)
    with pytest.raises(ExpressionError):
        dbg.add_breakpoint("step >")
    assert len(dbg.breakpoints) == 2

    dbg.step("batch")
    hit = dbg.hit_breakpoint()
    assert hit is not None and hit.text == "accuracy >= 0" and hit.kind == "breakpoint"
    assert hit.stopped_by == "breakpoint: accuracy >= 0"
    assert (first.hits, second.hits) == (0, 1)

    assert dbg.toggle_breakpoint(1) is False
    dbg.step("batch")
    hit = dbg.hit_breakpoint()
    assert hit is not None and hit.text == "step >= 2"
    assert (first.hits, second.hits) == (1, 1)  # a disabled breakpoint counts nothing

    assert dbg.remove_breakpoint(0) is first
    assert dbg.breakpoints == [second]
    dbg.step("batch")
    assert dbg.hit_breakpoint() is None
    assert dbg.toggle_breakpoint(0) is True
    dbg.step("batch")
    assert dbg.hit_breakpoint() is not None


def test_asking_twice_gives_one_answer_and_one_log_line(dbg: Debugger) -> None:
    dbg.add_breakpoint("step >= 1")
    dbg.step("batch")
    hit = dbg.hit_breakpoint()
    assert hit is not None and dbg.hit_breakpoint() is hit
    assert dbg.breakpoints[0].hits == 1
    assert breaks(dbg) == ["breakpoint step >= 1 hit: step = 1 >= 1"]
    assert dbg.log[-1].kind == "breakpoint" and dbg.log[-1].step == 1


def test_no_hit_after_going_back(dbg: Debugger) -> None:
    dbg.add_breakpoint("step >= 0")
    dbg.run(2)
    assert dbg.back()
    assert dbg.hit_breakpoint() is None
    dbg.step("batch")
    assert dbg.hit_breakpoint() is not None


def test_run_until_stops_at_an_enabled_breakpoint_with_its_reason(dbg: Debugger) -> None:
    dbg.add_breakpoint("step >= 7 and loss > 0")
    result = dbg.run_until("loss < 0")
    assert result.stopped_by == "breakpoint: step >= 7 and loss > 0"
    assert result.hit is not None
    assert result.hit.reason == f"step = 7 >= 7 and loss = {dbg.loss:.4g} > 0"
    # The expression to run until comes first when both hold.
    dbg.add_breakpoint("step >= 0")
    assert dbg.run_until("step >= 8").stopped_by == "breakpoint: step >= 8"


def test_a_per_layer_breakpoint_reports_the_layer_numbers(dbg: Debugger) -> None:
    result = dbg.run_until("grad_norm(hidden) > 0 and dead_fraction(hidden) >= 0")
    assert result.steps == 1
    assert dbg.stats is not None
    norm = dbg.stats.grad_norm("hidden")
    dead = dbg.stats.dead_fraction("hidden")
    assert norm is not None and dead is not None
    assert result.hit is not None
    assert result.hit.reason == (
        f"grad_norm(hidden) = {norm:.4g} > 0 and dead_fraction(hidden) = {dead:.4g} >= 0"
    )


def test_nan_stops_by_default_and_can_be_told_not_to() -> None:
    scenario = load_scenario("bug_nan")
    stopping = Debugger(scenario)
    result = stopping.run_until()
    assert result.stopped_by == "nan"
    assert stopping.loss is not None and not math.isfinite(stopping.loss)
    assert breaks(stopping) == ["stopped: Inf first appeared in the loss"]
    assert stopping.log[-1].kind == "nan"

    going_on = Debugger(dataclasses.replace(scenario, diagnostics={"stop_on_nan": False}))
    result = going_on.run_until(max_steps=result.steps + 20)
    assert result.stopped_by == "steps"
    # An expression can still ask for NaN or Inf by name.
    again = Debugger(dataclasses.replace(scenario, diagnostics={"stop_on_nan": False}))
    hit = again.run_until("nan or inf").hit
    assert hit is not None and hit.reason == "inf: Inf first appeared in the loss"


def test_scenario_breakpoints_are_set_at_construction(tmp_path: Path) -> None:
    path = tmp_path / "probe.yaml"
    path.write_text(PROBE + "breakpoints:\n  - step >= 5\n  - loss < 0\n")
    dbg = Debugger(load_scenario(path))
    assert [b.text for b in dbg.breakpoints] == ["step >= 5", "loss < 0"]
    assert dbg.run_until().stopped_by == "breakpoint: step >= 5"


def test_a_bad_scenario_breakpoint_names_the_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "probe.yaml"
    path.write_text(PROBE + "breakpoints:\n  - step >= 5\n  - dead_fraction(output) > 0\n")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{PROBE.count(chr(10)) + 3}:")
    assert "breakpoints[1]" in message
    assert "at column 15 of 'dead_fraction(output) > 0'" in message
    assert "relu" in message
