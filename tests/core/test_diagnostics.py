"""Diagnostics: each one on a network built to trigger it, the bug scenarios, the healthy ones."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backprop_tui.core import Debugger, LogEntry, Scenario, ScenarioError, load_scenario
from backprop_tui.core.spec.scenario import bundled_dir, parse_scenario
from backprop_tui.core.spec.yamlio import load_yaml
from backprop_tui.core.watch.diagnostics import PERSIST
from backprop_tui.core.watch.stats import Location, StepArrays, StepStatistics
from threadpoolctl import threadpool_limits

# NumPy warns on the way to an overflow; the diagnostics are what is tested here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:overflow encountered", "ignore:invalid value encountered"
)

XOR = """
name: probe
data: {generator: xor}
model:
  inputs: 2
  layers:
    - {name: hidden, units: HIDDEN_UNITS, activation: HIDDEN_ACT HIDDEN_EXTRA}
    - {name: output, units: 1, activation: sigmoid OUTPUT_EXTRA}
loss: binary_crossentropy
optimizer: {name: sgd, learning_rate: LR}
metrics: [accuracy]
training: {epochs: 400, batch_size: 4, shuffle: false}
"""


def scenario_from(text: str, **diagnostics: Any) -> Scenario:
    scenario = parse_scenario(load_yaml(text, "probe.yaml"), Path("."))
    return dataclasses.replace(scenario, diagnostics=diagnostics) if diagnostics else scenario


def xor_net(
    act: str = "tanh",
    units: int = 3,
    hidden_extra: str = "",
    output_extra: str = "",
    lr: float = 0.5,
    **diagnostics: Any,
) -> Debugger:
    text = (
        XOR.replace("HIDDEN_UNITS", str(units))
        .replace("HIDDEN_ACT", act)
        .replace(" HIDDEN_EXTRA", hidden_extra)
        .replace(" OUTPUT_EXTRA", output_extra)
        .replace("LR", str(lr))
    )
    return Debugger(scenario_from(text, **diagnostics))


def warnings_of(dbg: Debugger, kind: str | None = None) -> list[LogEntry]:
    return [e for e in dbg.log if e.level == "warning" and (kind is None or e.kind == kind)]


def steps(dbg: Debugger, n: int) -> None:
    for _ in range(n):
        dbg.step("batch")


# ------------------------------------------------------------------ NaN / Inf
def test_a_nan_weight_is_reported_where_it_first_appears() -> None:
    dbg = xor_net()
    steps(dbg, 3)
    dbg.set_weight("hidden.kernel", (0, 1), math.nan)
    dbg.step("batch")
    assert dbg.stats is not None
    assert dbg.stats.first("nan") == Location("forward", "hidden", "z")
    assert dbg.stats.first("inf") is None
    found = warnings_of(dbg)
    assert [(e.kind, e.layer, e.step) for e in found] == [("nan", None, 4)]
    assert "NaN first appeared in the forward pass, layer hidden, z" in found[0].text
    # The NaN is told once, not at every later step, and drowns no other warning.
    steps(dbg, 30)
    assert len(warnings_of(dbg)) == 1


def _arrays(stats_like: Debugger, **broken: Any) -> StepArrays:
    b = stats_like.backend
    grads = dict(b.grads)
    arrays: dict[str, Any] = {
        "x": b.x,
        "z": list(b.z),
        "a": list(b.a),
        "dL_da": list(b.dL_da),
        "dL_dz": list(b.dL_dz),
        "grads": grads,
        "params": dict(b.params),
        "update": {},
    }
    for key, value in broken.items():
        if key == "grad":
            grads.update(value)
        else:
            name, i = key.rsplit("_", 1)
            arrays[name][int(i)] = value
    return StepArrays(**arrays)


def test_the_first_non_finite_value_follows_the_order_of_the_step() -> None:
    dbg = xor_net()
    dbg.step("batch")
    layers = dbg.scenario.layers
    inf_dz = np.full((4, 3), np.inf)
    nan_grad = np.full((2, 3), np.nan)

    def stats(loss: float, arrays: StepArrays) -> StepStatistics:
        return StepStatistics(
            step=1,
            epoch=0,
            loss=loss,
            metrics={},
            val_metrics={},
            layers=layers,
            arrays=arrays,
            to_host=np.asarray,
        )

    clean = stats(0.5, _arrays(dbg))
    assert clean.nonfinite is None and clean.value("nan") == 0.0

    backward = stats(0.5, _arrays(dbg, dL_dz_0=inf_dz, grad={"hidden.kernel": nan_grad}))
    assert backward.first("inf") == Location("backward", "hidden", "dL/dz")
    assert backward.first("nan") == Location("backward", "hidden", "hidden.kernel gradient")
    assert backward.nonfinite == ("inf", Location("backward", "hidden", "dL/dz"))
    assert backward.value("nan") == 1.0 and backward.value("inf") == 1.0
    assert "the backward pass, layer hidden, dL/dz" in backward.describe("inf")

    at_loss = stats(math.nan, _arrays(dbg, dL_dz_1=inf_dz[:, :1]))
    assert at_loss.nonfinite == ("nan", Location("loss", None, "loss"))
    assert at_loss.first("inf") == Location("backward", "output", "dL/dz")

    forward = stats(0.5, _arrays(dbg, a_1=np.full((4, 1), np.inf), dL_dz_0=inf_dz))
    assert forward.nonfinite == ("inf", Location("forward", "output", "a"))


# ------------------------------------------------------------- gradient norms
def test_grad_norms_are_the_norms_of_the_step_gradients() -> None:
    dbg = xor_net()
    steps(dbg, 2)
    assert dbg.stats is not None
    grads = dbg.grads
    for layer in ("hidden", "output"):
        by_hand = math.sqrt(
            float(np.sum(grads[f"{layer}.kernel"] ** 2) + np.sum(grads[f"{layer}.bias"] ** 2))
        )
        assert dbg.stats.grad_norm(layer) == pytest.approx(by_hand, rel=1e-12)
    total = math.sqrt(sum(float(np.sum(g**2)) for g in grads.values()))
    assert dbg.stats.grad_norm() == pytest.approx(total, rel=1e-12)
    weights = math.sqrt(sum(float(np.sum(p**2)) for p in dbg.params.values()))
    assert dbg.stats.weight_norm() == pytest.approx(weights, rel=1e-12)


def test_exploding_gradients_are_reported_per_layer_with_the_numbers() -> None:
    dbg = xor_net(exploding_grad_norm=1e-3)
    dbg.step("batch")
    assert dbg.stats is not None
    found = warnings_of(dbg, "exploding_gradients")
    # in the order backprop computes them: from the last layer down
    assert [e.layer for e in found] == ["output", "hidden"]
    norm = dbg.stats.grad_norm("hidden")
    assert norm is not None and norm > 1e-3
    assert f"gradient norm {norm:.3g} is above 0.001" in found[1].text
    # It lasts, but is not told again at every step.
    steps(dbg, 20)
    assert len(warnings_of(dbg, "exploding_gradients")) == 2


def test_vanishing_gradients_are_measured_against_the_largest_layer() -> None:
    dbg = Debugger(load_scenario("bug_vanishing"))
    dbg.breakpoints.clear()
    steps(dbg, PERSIST - 1)
    assert not warnings_of(dbg, "vanishing_gradients")  # one unlucky batch is not enough
    dbg.step("batch")
    found = warnings_of(dbg, "vanishing_gradients")
    assert dbg.stats is not None
    norms = {spec.name: dbg.stats.grad_norm(spec.name) or 0.0 for spec in dbg.scenario.layers}
    largest = max(norms.values())
    starved = [name for name, norm in norms.items() if norm < 1e-4 * largest]
    assert starved and "layer_1" in starved
    assert [e.layer for e in found] == starved[::-1]  # backward: from the last layer down
    assert f"gradient norm {norms['layer_1']:.3g}" in found[-1].text


# ---------------------------------------------------------------- dead units
def test_dead_relu_units_are_counted_over_the_whole_batch() -> None:
    # Three of four units start with a bias so negative that no input wakes them.
    dbg = xor_net(act="relu", units=4, hidden_extra=", bias: [-50, -50, -50, 0.1]")
    dbg.step("batch")
    assert dbg.stats is not None
    a = dbg.layer_arrays(0)["a"]
    assert dbg.stats.dead_fraction("hidden") == pytest.approx(float(np.mean(~(a > 0).any(0))))
    assert dbg.stats.dead_fraction("hidden") == 0.75
    assert dbg.stats.dead_fraction("output") is None  # not a relu layer
    steps(dbg, PERSIST - 2)
    assert not warnings_of(dbg, "dead_relu")
    dbg.step("batch")
    found = warnings_of(dbg, "dead_relu")
    assert [(e.layer, e.step) for e in found] == [("hidden", PERSIST)]
    assert "3 of 4 (75%) relu units output zero" in found[0].text


def test_a_healthy_relu_layer_is_not_reported() -> None:
    dbg = xor_net(act="relu", units=4, hidden_extra=", bias: [0.5, 0.5, 0.5, 0.5]", lr=0.1)
    steps(dbg, 50)
    assert not warnings_of(dbg, "dead_relu")


def test_saturated_hidden_units_are_reported_but_not_a_saturated_output() -> None:
    kernel = "kernel: [[30, 30, 30], [30, -30, 30]], bias: [20, 20, -20]"
    dbg = xor_net(
        act="tanh", hidden_extra=f", {kernel}", output_extra=", kernel: [[40], [40], [40]]"
    )
    steps(dbg, PERSIST)
    assert dbg.stats is not None
    assert dbg.stats.saturated_fraction("hidden") == 1.0
    found = warnings_of(dbg, "saturation")
    assert [e.layer for e in found] == ["hidden"]
    assert "100% of its tanh outputs" in found[0].text
    assert dbg.stats.saturated_fraction("output") is not None
    assert dbg.stats.saturated_fraction("output") > 0.5  # measured, but the output is not warned of


def test_saturation_is_the_share_of_flat_outputs() -> None:
    # σ'(z) < 1% of σ'(0) where |z| > 5.99. On the four XOR corners, z per unit is:
    #   unit 0: 10·x0        → 0, 0, 10, 10   two of four flat
    #   unit 1: 10·x1        → 0, 10, 0, 10   two of four flat
    #   unit 2: 20           → 20 everywhere  four of four flat
    #   unit 3: 10·(x0+x1)-5 → -5, 5, 5, 15   one of four flat (|±5| is still sloped)
    # so 9 of the batch's 16 outputs are saturated.
    kernel = "kernel: [[10, 0, 0, 10], [0, 10, 0, 10]], bias: [0, 0, 20, -5]"
    dbg = xor_net(act="sigmoid", units=4, hidden_extra=f", {kernel}")
    dbg.step("batch")
    assert dbg.stats is not None
    a = dbg.layer_arrays(0)["a"]
    assert a.shape == (4, 4)
    assert int(np.sum(a * (1 - a) < 0.01 * 0.25)) == 9  # the arithmetic above holds
    assert dbg.stats.saturated_fraction("hidden") == pytest.approx(9 / 16)


# ----------------------------------------------------------- update ratios
def test_update_ratio_is_the_change_over_the_weights_before_it() -> None:
    dbg = xor_net()
    steps(dbg, 2)
    before = dbg.params
    dbg.step("batch")
    after = dbg.params
    assert dbg.stats is not None
    for layer in ("hidden", "output"):
        names = (f"{layer}.kernel", f"{layer}.bias")
        change = math.sqrt(sum(float(np.sum((after[n] - before[n]) ** 2)) for n in names))
        old = math.sqrt(sum(float(np.sum(before[n] ** 2)) for n in names))
        assert dbg.stats.update_ratio(layer) == pytest.approx(change / old, rel=1e-9)


def test_update_ratios_far_from_a_thousandth_are_reported() -> None:
    high = xor_net(update_ratio_high=1e-9)
    steps(high, PERSIST)
    assert {e.layer for e in warnings_of(high, "update_ratio_high")} == {"hidden", "output"}
    assert "is above 1e-09" in warnings_of(high, "update_ratio_high")[0].text
    low = xor_net(update_ratio_low=10.0)
    steps(low, PERSIST)
    assert {e.layer for e in warnings_of(low, "update_ratio_low")} == {"hidden", "output"}
    assert not warnings_of(low, "update_ratio_high")


def test_update_ratio_is_undefined_against_all_zero_weights() -> None:
    dbg = xor_net(act="sigmoid", hidden_extra=", kernel_initializer: zeros")
    dbg.step("batch")
    assert dbg.stats is not None
    assert dbg.stats.update_ratio("hidden") is None
    assert dbg.stats.update_ratio("output") is not None


# ------------------------------------------------------------- rising loss
def test_a_loss_rising_for_a_run_of_steps_is_reported_with_the_numbers() -> None:
    scenario = load_scenario("bug_nan")
    dbg = Debugger(dataclasses.replace(scenario, diagnostics={"loss_rising_steps": 4}))
    steps(dbg, 60)
    found = warnings_of(dbg, "loss_rising")
    assert found
    losses = [s.loss for s in dbg.step_history]
    rises, expected = 0, 0
    for i in range(1, len(losses)):
        rises = rises + 1 if losses[i] > losses[i - 1] else 0
        if rises == 4:
            expected = i + 1  # steps done when the fourth rise in a row came
            break
    first = found[0]
    assert first.step == expected
    start, end = losses[expected - 5], losses[expected - 1]
    assert f"rose 4 steps in a row, from {start:.4g} to {end:.4g}" in first.text
    # Told again as the run doubles, not at every step.
    assert len(found) < 10


def test_a_falling_loss_is_not_reported() -> None:
    dbg = xor_net(lr=0.1, loss_rising_steps=3)
    steps(dbg, 100)
    losses = [s.loss for s in dbg.step_history]
    assert losses[-1] < losses[0]
    assert not warnings_of(dbg, "loss_rising")


# ------------------------------------------------------------------ symmetry
def test_identical_units_are_reported_as_symmetry_that_never_breaks() -> None:
    dbg = xor_net(
        act="sigmoid",
        hidden_extra=", kernel_initializer: zeros",
        output_extra=", kernel_initializer: zeros",
        lr=0.5,
    )
    steps(dbg, PERSIST)
    assert dbg.stats is not None and dbg.stats.symmetric("hidden")
    assert not dbg.stats.symmetric("output")  # one unit is never "symmetric"
    found = warnings_of(dbg, "symmetry")
    assert [(e.layer, e.step) for e in found] == [("hidden", PERSIST)]
    assert "all 3 units have identical weights" in found[0].text


def test_random_starts_are_not_symmetric() -> None:
    dbg = xor_net(act="sigmoid")
    steps(dbg, PERSIST * 2)
    assert dbg.stats is not None and not dbg.stats.symmetric("hidden")
    assert not warnings_of(dbg, "symmetry")


# ------------------------------------------------------ reporting and settings
def test_a_lasting_condition_is_reminded_every_report_every_steps() -> None:
    scenario = load_scenario("bug_dying_relu")
    quiet = Debugger(dataclasses.replace(scenario, breakpoints=()))
    steps(quiet, 200)
    dead = warnings_of(quiet, "dead_relu")
    assert 1 <= len(dead) <= 3  # the start, and once or twice as more units died
    chatty = Debugger(
        dataclasses.replace(scenario, breakpoints=(), diagnostics={"report_every": 50})
    )
    steps(chatty, 200)
    assert len(warnings_of(chatty, "dead_relu")) >= 4


def test_diagnostics_can_be_turned_off_but_nan_still_stops() -> None:
    scenario = load_scenario("bug_nan")
    off = Debugger(dataclasses.replace(scenario, diagnostics={"enabled": False}))
    result = off.run_until(max_steps=300)
    assert not warnings_of(off)
    assert result.stopped_by == "nan"


def test_unknown_or_wrong_diagnostic_settings_are_scenario_errors(tmp_path: Path) -> None:
    base = XOR.replace("HIDDEN_UNITS", "3").replace("HIDDEN_ACT", "tanh")
    base = base.replace(" HIDDEN_EXTRA", "").replace(" OUTPUT_EXTRA", "").replace("LR", "0.5")
    for block, words in [
        ("diagnostics: {report_every: 0}", "diagnostics.report_every"),
        ("diagnostics: {enabled: 3}", "diagnostics.enabled"),
        ("diagnostics: {loss_rising_steps: 2.5}", "diagnostics.loss_rising_steps"),
        ("diagnostics: {dead_fraktion: 0.5}", "did you mean 'dead_fraction'"),
    ]:
        path = tmp_path / "probe.yaml"
        path.write_text(base + block + "\n")
        with pytest.raises(ScenarioError) as caught:
            load_scenario(path)
        assert words in str(caught.value)
    path.write_text(base + "diagnostics: {vanishing_grad_ratio: 0.01, enabled: true}\n")
    assert load_scenario(path).diagnostics == {"vanishing_grad_ratio": 0.01, "enabled": True}


# ------------------------------------------------------------ bug scenarios
BUGS = [
    # scenario, how run_until stops, (diagnostic, layer) already warned of when it stops
    (
        "bug_dying_relu",
        "breakpoint: epoch >= 2 and dead_fraction(hidden) > 0.5",
        ("dead_relu", "hidden"),
    ),
    ("bug_exploding", "breakpoint: grad_norm > 1000", ("exploding_gradients", "dense_1")),
    (
        "bug_vanishing",
        "breakpoint: epoch >= 2 and grad_norm(layer_1) < 1e-4 * grad_norm(output)",
        ("vanishing_gradients", "layer_1"),
    ),
    (
        "bug_saturation",
        "breakpoint: epoch >= 2 and saturated_fraction(hidden) > 0.5",
        ("saturation", "hidden"),
    ),
    (
        "bug_symmetry",
        "breakpoint: epoch >= 10 and val_accuracy < 0.8",
        ("symmetry", "hidden"),
    ),
    ("bug_nan", "nan", ("inf", None)),
]


@pytest.mark.parametrize(("name", "stop", "warning"), BUGS, ids=[b[0] for b in BUGS])
def test_each_bug_scenario_is_caught(name: str, stop: str, warning: tuple[str, str | None]) -> None:
    dbg = Debugger(load_scenario(name))
    result = dbg.run_until(max_steps=400)
    assert result.stopped_by == stop
    assert result.hit is not None and result.hit.step == dbg.step_index
    assert dbg.log[-1].level == "break"
    # Where it stops, the diagnosis it is about is on the log already.
    assert warning in {(e.kind, e.layer) for e in warnings_of(dbg)}


def test_the_nan_scenario_says_where_the_overflow_began() -> None:
    dbg = Debugger(load_scenario("bug_nan"))
    result = dbg.run_until()
    assert result.stopped_by == "nan"
    assert result.hit is not None and result.hit.kind == "nan"
    assert result.hit.reason == "Inf first appeared in the loss"
    assert dbg.loss is not None and math.isinf(dbg.loss)
    # The gradients were reported exploding long before the overflow.
    exploding = warnings_of(dbg, "exploding_gradients")
    assert exploding and exploding[0].step < result.hit.step - 50


def test_every_bug_scenario_is_tested() -> None:
    shipped = {p.stem for p in bundled_dir().glob("bug_*.yaml")}
    assert shipped == {name for name, *_ in BUGS}
    for name in shipped:
        assert "Fix:" in load_scenario(name).description


# ----------------------------------------------------------- healthy ones
HEALTHY = sorted(p for p in bundled_dir().glob("*.yaml") if not p.stem.startswith("bug_"))
CAP = 300  # steps per scenario, to keep the suite quick; whole runs were checked by hand


@pytest.mark.parametrize("path", HEALTHY, ids=[p.stem for p in HEALTHY])
def test_healthy_scenarios_raise_no_warning(path: Path) -> None:
    dbg = Debugger(load_scenario(path))
    with threadpool_limits(limits=1):  # see test_bundled_scenarios
        result = dbg.run_until(max_steps=min(CAP, dbg.total_steps))
    assert result.stopped_by == "steps", result
    assert [e.text for e in dbg.log if e.level in ("warning", "break")] == []
