"""Diagnostics never contradict themselves: advice fits the layer and the step, in pipeline order."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backprop_tui.core import Debugger, LogEntry, Scenario, load_scenario
from backprop_tui.core.watch.diagnostics import PERSIST, Diagnostics
from backprop_tui.core.watch.stats import StepArrays, StepStatistics

pytestmark = pytest.mark.filterwarnings(
    "ignore:overflow encountered", "ignore:invalid value encountered"
)

RAISE = "raise the learning rate"
LOWER = "lower the learning rate"


def with_lr(name: str, lr: float, **diagnostics: Any) -> Debugger:
    scenario = load_scenario(name)
    options = {**scenario.optimizer.options, "learning_rate": lr}
    changed: Scenario = dataclasses.replace(
        scenario,
        optimizer=dataclasses.replace(scenario.optimizer, options=options),
        breakpoints=(),
        diagnostics={**scenario.diagnostics, **diagnostics},
    )
    return Debugger(changed)


def warnings_of(dbg: Debugger, kind: str | None = None) -> list[LogEntry]:
    return [e for e in dbg.log if e.level == "warning" and (kind is None or e.kind == kind)]


def test_a_huge_learning_rate_is_never_told_to_go_up() -> None:
    # lr = 1e6: the output's updates are far too big while the hidden tanh units
    # saturate, so the hidden layer stops moving. Its zero update ratio comes from
    # the saturation, and the advice says so instead of "raise the learning rate".
    dbg = with_lr("xor", 1e6)
    dbg.run_until(max_steps=300)
    texts = [e.text for e in warnings_of(dbg)]
    assert any(LOWER in t for t in texts)
    assert {e.kind for e in warnings_of(dbg)} >= {"update_ratio_high", "update_ratio_low"}
    assert not [t for t in texts if RAISE in t]
    low = warnings_of(dbg, "update_ratio_low")[0]
    assert low.layer == "hidden"
    assert "hidden's tanh units are saturated" in low.text
    assert "sigmoid" not in " ".join(texts)  # no layer of this network is a sigmoid but the output


def test_a_dead_relu_layer_is_told_it_is_dead_not_to_swap_sigmoid() -> None:
    dbg = with_lr("bug_dying_relu", 10.0)
    dbg.run_until(max_steps=40)
    vanishing = warnings_of(dbg, "vanishing_gradients")
    assert [e.layer for e in vanishing] == ["hidden"]
    assert "relu units are dead" in vanishing[0].text
    assert "sigmoid" not in vanishing[0].text
    dead = warnings_of(dbg, "dead_relu")[0]
    # it already starts from he_uniform; the units died from updates, not from the start
    assert "he_uniform" not in dead.text
    assert LOWER in dead.text and "leaky_relu" in dead.text
    for entry in warnings_of(dbg, "update_ratio_low"):
        assert RAISE not in entry.text and "dead" in entry.text


def test_initializer_advice_names_only_what_the_layer_does_not_use() -> None:
    exploding = Debugger(load_scenario("bug_exploding"))
    exploding.step("batch")
    text = warnings_of(exploding, "exploding_gradients")[0].text
    assert "glorot_uniform weights instead of random_normal" in text
    saturated = Debugger(dataclasses.replace(load_scenario("bug_saturation"), breakpoints=()))
    saturated.run_until(max_steps=PERSIST)
    found = warnings_of(saturated, "saturation")
    assert [e.layer for e in found] == ["hidden"]
    assert "instead of random_normal" in found[0].text  # saturated from the first step
    assert LOWER not in found[0].text
    # the circles data is about ±1: the inputs are not what to change
    assert "scale the inputs" not in found[0].text


def test_a_low_update_ratio_beside_a_high_one_does_not_say_raise() -> None:
    # bug_vanishing's ratios run from about 5e-8 (layer_1) to 0.1 (output) at every
    # step; with the vanishing-gradient check off, only the ratios speak.
    quiet = {"vanishing_grad_ratio": 0.0, "vanishing_grad_norm": 0.0}
    both = with_lr("bug_vanishing", 0.5, update_ratio_high=1e-3, **quiet)
    both.run(PERSIST)
    assert [e.layer for e in warnings_of(both, "update_ratio_high")][-1] == "output"
    low = warnings_of(both, "update_ratio_low")
    assert low and low[0].layer == "layer_1"
    assert RAISE not in low[0].text
    assert "output's update/weight ratio is" in low[0].text
    assert "one learning rate cannot suit both" in low[0].text
    # alone, with no layer too fast and nothing blocking, a low ratio is told to go up
    alone = with_lr("bug_vanishing", 0.5, **quiet)
    alone.run(PERSIST)
    assert warnings_of(alone, "update_ratio_low")
    assert all(RAISE in e.text for e in warnings_of(alone, "update_ratio_low"))
    # with its gradient vanishing, it is told so instead
    vanishing = with_lr("bug_vanishing", 0.5)
    vanishing.run(PERSIST)
    for entry in warnings_of(vanishing, "update_ratio_low"):
        assert RAISE not in entry.text and "vanishes" in entry.text


def _stats(dbg: Debugger, loss: float, arrays: StepArrays) -> StepStatistics:
    return StepStatistics(
        step=dbg.step_index,
        epoch=1,
        loss=loss,
        metrics={},
        val_metrics={},
        layers=dbg.scenario.layers,
        arrays=arrays,
        to_host=np.asarray,
    )


def test_nan_and_inf_are_told_in_the_order_the_step_made_them() -> None:
    dbg = with_lr("xor", 0.5)
    dbg.step("batch")
    b = dbg.backend
    grads = dict(b.grads)
    grads["hidden.kernel"] = np.full_like(grads["hidden.kernel"], np.nan)
    arrays = StepArrays(
        x=b.x,
        z=list(b.z),
        a=list(b.a),
        dL_da=list(b.dL_da),
        dL_dz=list(b.dL_dz),
        grads=grads,
        params=dict(b.params),
        update={},
    )
    found = Diagnostics().observe(_stats(dbg, math.inf, arrays))
    # the loss came before the backward pass, so Inf is told first
    assert [f.kind for f in found] == ["inf", "nan"]
    assert found[0].text.startswith("Inf first appeared in the loss")
    assert found[1].text.startswith("NaN first appeared in the backward pass, layer hidden")


def test_one_steps_warnings_follow_the_pipeline() -> None:
    # lr = 1e6 on xor: at step 11 the hidden layer's saturation (forward), its
    # vanishing gradient (backward) and its stalled update (update) come together.
    dbg = with_lr("xor", 1e6)
    dbg.run_until(max_steps=40)
    by_step: dict[int, list[LogEntry]] = {}
    for entry in warnings_of(dbg):
        by_step.setdefault(entry.step, []).append(entry)
    together = max(by_step.values(), key=len)
    assert [e.kind for e in together] == ["saturation", "vanishing_gradients", "update_ratio_low"]
    # and the exploding gradients of a deep net: from the last layer down, as backprop goes
    deep = Debugger(load_scenario("bug_exploding"))
    deep.step("batch")
    layers = [e.layer for e in warnings_of(deep, "exploding_gradients")]
    assert layers == [spec.name for spec in reversed(deep.scenario.layers)]


BIG_INPUTS = """
name: big-inputs
data: {inline: {x: [[100, -50], [30, 80], [-90, 10], [60, -70]], y: [[0], [1], [1], [0]]}}
model:
  inputs: 2
  layers:
    - {name: hidden, units: 4, activation: tanh}
    - {name: output, units: 1, activation: sigmoid}
loss: binary_crossentropy
optimizer: {name: sgd, learning_rate: 0.1}
training: {epochs: 40, batch_size: 4, shuffle: false}
"""


def test_inputs_far_from_one_are_named_as_the_cause(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(BIG_INPUTS)
    dbg = Debugger(load_scenario(path))
    dbg.run(PERSIST)
    found = warnings_of(dbg, "saturation")
    assert [e.layer for e in found] == ["hidden"]
    assert "scale the inputs to about ±1" in found[0].text
    assert "glorot_uniform" not in found[0].text  # it starts from glorot_uniform already
    assert LOWER not in found[0].text
