"""Expectations: validated where they are written, run in order, and every bundled one holds."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from backprop_tui.core import Debugger, ScenarioError, load_scenario
from backprop_tui.core.spec.expect import Condition, run_expectations
from backprop_tui.core.spec.scenario import bundled_dir
from backprop_tui.tui.cli import main
from click.testing import CliRunner
from threadpoolctl import threadpool_limits

HEAD = """name: tiny
seed: 1
data: {generator: moons, n: 40, noise: 0.1, validation_split: 0.25}
model:
  inputs: 2
  layers:
    - {name: hidden, units: 3, activation: tanh}
    - {name: output, units: 1, activation: sigmoid}
loss: binary_crossentropy
optimizer: {name: adam, learning_rate: 0.05}
metrics: [accuracy]
training: {epochs: 4, batch_size: 10, shuffle: true}
expect:
"""
FIRST_EXPECT_LINE = HEAD.count("\n") + 1


def _write(tmp_path: Path, entries: str, head: str = HEAD) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(head + entries)
    return path


# ------------------------------------------------------------------ the xor block by hand
def _xor_step_one_by_hand() -> dict[str, float]:
    """XOR's first step in plain Python floats: loss, one gradient, the weight after SGD."""
    rng = np.random.default_rng([0, 0])  # the scenario's seed; glorot_uniform limits below
    w1 = rng.uniform(-1.0, 1.0, (2, 4)).tolist()  # sqrt(6 / (2 + 4)) = 1
    w2 = rng.uniform(-math.sqrt(1.2), math.sqrt(1.2), (4, 1)).tolist()  # sqrt(6 / (4 + 1))
    points = [((0.0, 0.0), 0.0), ((0.0, 1.0), 1.0), ((1.0, 0.0), 1.0), ((1.0, 1.0), 0.0)]
    loss = grad = 0.0
    for x, y in points:  # biases start at zero
        a1 = [math.tanh(x[0] * w1[0][j] + x[1] * w1[1][j]) for j in range(4)]
        p = 1.0 / (1.0 + math.exp(-sum(a1[j] * w2[j][0] for j in range(4))))
        loss += -(y * math.log(p) + (1.0 - y) * math.log(1.0 - p)) / 4
        dz2 = (p - y) / 4  # sigmoid with cross-entropy, averaged over 4 samples
        grad += x[0] * dz2 * w2[1][0] * (1.0 - a1[1] ** 2)  # chain rule to kernel[0, 1]
    return {"loss": loss, "grad": grad, "param": w1[0][1] - 0.5 * grad}


def test_the_xor_expectations_agree_with_the_hand_computation() -> None:
    hand = _xor_step_one_by_hand()
    checks = {(e.quantity, e.step, e.phase): e for e in load_scenario("xor").expectations}
    for key, quantity, phase in (
        ("loss", "loss", "loss"),
        ("grad", "grad", "backward"),
        ("param", "param", "update"),
    ):
        e = checks[(quantity, 1, phase)]
        assert e.condition.op == "=="
        assert abs(e.condition.target - hand[key]) <= e.condition.tol, (key, hand[key])
        assert e.condition.tol <= 1e-6
    assert checks[("grad", 1, "backward")].index == (0, 1)


def test_every_bundled_expectation_holds() -> None:
    with_expectations = []
    for path in sorted(bundled_dir().glob("*.yaml")):
        written = (yaml.safe_load(path.read_text()) or {}).get("expect")
        if written is None:
            continue
        with_expectations.append(path.stem)
        scenario = load_scenario(path)
        with threadpool_limits(limits=1):  # see test_bundled_scenarios
            results = run_expectations(Debugger(scenario))
        assert len(results) >= len(written)
        failed = [r.line() for r in results if not r.passed]
        assert not failed, f"{path.name}: " + "; ".join(failed)
    assert "xor" in with_expectations


# ------------------------------------------------------------------------- running
def test_checks_run_in_order_and_report_actual_values(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """  - {epoch: 2, loss: "< 100", val_accuracy: ">= 0", accuracy: "> 2"}
  - {step: 3, phase: forward, param: output.bias, index: [0], value: "!= 12345"}
  - {step: 1, phase: loss, loss: 0.5, tol: 1e-9}
  - {step: 5, val_loss: "> 0"}
""",
    )
    scenario = load_scenario(path)
    assert [e.line for e in scenario.expectations] == [FIRST_EXPECT_LINE] * 3 + [
        FIRST_EXPECT_LINE + 1,
        FIRST_EXPECT_LINE + 2,
        FIRST_EXPECT_LINE + 3,
    ]
    dbg = Debugger(scenario)
    seen: list[int] = []
    results = run_expectations(dbg, progress=seen.append)
    assert [r.expectation.when() for r in results] == [
        "step 1 loss",
        "step 3 forward",
        "step 5 update",
        "epoch 2",
        "epoch 2",
        "epoch 2",
    ]
    assert seen == list(range(1, 7))  # epoch 2 ends after 2 × 3 steps
    assert dbg.step_index == 6 and dbg.phase == "update" and dbg.epoch == 2
    by_what = {r.expectation.what(): r for r in results}

    twin = Debugger(scenario)
    for _ in range(3):
        twin.step("phase")
    first_loss = by_what["loss = 0.5 ± 1e-09"]
    assert first_loss.actual == twin.loss and not first_loss.passed
    assert "FAIL" in first_loss.line() and f"actual {twin.loss:.6g}" in first_loss.line()
    assert by_what["accuracy > 2"].actual == dbg.epoch_history[1].metrics["accuracy"]
    assert not by_what["accuracy > 2"].passed
    assert by_what["loss < 100"].passed
    assert by_what["loss < 100"].actual == dbg.epoch_history[1].loss
    assert by_what["val_accuracy >= 0"].actual == dbg.epoch_history[1].val_metrics["accuracy"]
    assert by_what["val_loss > 0"].passed
    assert by_what["output.bias[0] != 12345"].passed


def test_a_check_already_behind_the_run_fails_with_a_note(tmp_path: Path) -> None:
    scenario = load_scenario(_write(tmp_path, "  - {step: 2, loss: '> 0'}\n"))
    dbg = Debugger(scenario)
    dbg.run(3)
    [result] = run_expectations(dbg)
    assert not result.passed and "already past" in result.note
    fresh = run_expectations(Debugger(scenario))
    assert fresh[0].passed


def test_a_nan_never_satisfies_a_condition() -> None:
    for op in ("==", "!=", ">=", "<=", ">", "<"):
        assert not Condition(op, 0.0, tol=math.inf).holds(math.nan)
    assert Condition("==", 1.0, 0.1).holds(1.05) and not Condition("==", 1.0, 0.01).holds(1.05)
    assert Condition("!=", 1.0, 0.01).holds(1.05)


# ------------------------------------------------------------------------- validation
BAD: list[tuple[str, str, int, str]] = [
    # (entries, key path, column, part of the message)
    ("  - {step: 1, vale: 3}\n", "expect[0].vale", 15, "did you mean 'value'?"),
    ("  - {step: 1, epoch: 2, loss: 1}\n", "expect[0]", 5, "step: N or epoch: N"),
    ("  - {loss: 1}\n", "expect[0]", 5, "step: N or epoch: N"),
    ("  - {epoch: 1, phase: loss, loss: 1}\n", "expect[0].phase", 16, "goes with step:"),
    ("  - {step: 1, phase: fwd, loss: 1}\n", "expect[0].phase", 15, "use one of input, forward"),
    ("  - {step: 0, loss: 1}\n", "expect[0].step", 6, "at least 1, got 0"),
    ("  - {step: 1, param: hiden.kernel, index: [0, 0], value: 1}\n", "expect[0].param", 15,
     "did you mean 'hidden.kernel'?"),
    ("  - {step: 1, phase: loss, grad: hidden.bias, index: [0], value: 1}\n", "expect[0].phase",
     15, "from its backward phase on"),
    ("  - {step: 1, param: hidden.kernel, index: [0], value: 1}\n", "expect[0].index", 37,
     "2 whole number(s) for a parameter of shape 2 × 3"),
    ("  - {step: 1, param: hidden.kernel, index: [1, 3], value: 1}\n", "expect[0].index[1]", 48,
     "from 0 to 2"),
    ("  - {step: 1, param: hidden.kernel, index: [1, 2]}\n", "expect[0]", 5,
     "the key 'value' is missing"),
    ("  - {step: 1, grad: output.bias, param: output.bias, index: [0], value: 1}\n",
     "expect[0].grad", 15, "not both"),
    ("  - {step: 1, loss: 'about 3'}\n", "expect[0].loss", 15, "a comparison such as '>= 0.95'"),
    ("  - {step: 1, loss: 1, tol: -1}\n", "expect[0].tol", 24, "at least 0"),
    ("  - {step: 1, loss: 1, tol: fine}\n", "expect[0].tol", 24, "expected a number"),
    ("  - {step: 1, phase: forward, loss: 1}\n", "expect[0].phase", 15, "from its loss phase"),
    ("  - {step: 1}\n", "expect[0]", 5, "nothing to check"),
    ("  - {step: 1, value: 3}\n", "expect[0].value", 15, "goes with param: or grad:"),
    ("  - [step, 1]\n", "expect[0]", 5, "expected a mapping"),
    ("  - {step: 1, loss: 1}\n  - {epoch: 1, val_loss: .nan}\n", "expect[1].val_loss", 16,
     "finite"),
    # hostile shapes: a mapping or a list where a name or a phase goes is a placed error
    ("  - {step: 1, phase: backward, grad: {}, index: [0], value: 1}\n", "expect[0].grad", 32,
     "no parameter named {}"),
    ("  - {step: 1, phase: [loss], loss: 1}\n", "expect[0].phase", 15, "unknown phase ['loss']"),
    ("  - {step: 1, loss: \"\\e]2;x\\a\"}\n", "expect[0].loss", 15, "cannot read '␛]2;x␇'"),
]  # fmt: skip


@pytest.mark.parametrize(("entries", "path", "column", "message"), BAD)
def test_bad_entries_are_placed_in_the_file(
    tmp_path: Path, entries: str, path: str, column: int, message: str
) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(_write(tmp_path, entries))
    err = caught.value
    assert err.path == path
    assert (err.line, err.column) == (FIRST_EXPECT_LINE + entries.count("\n") - 1, column)
    assert message in err.message
    assert str(err).startswith(f"{tmp_path / 'tiny.yaml'}:{err.line}:{column}: {path}: ")


def test_metrics_the_scenario_does_not_compute_are_refused(tmp_path: Path) -> None:
    no_metrics = HEAD.replace("metrics: [accuracy]\n", "").replace(", validation_split: 0.25", "")
    with pytest.raises(ScenarioError, match=r"computes no accuracy; add metrics: \[accuracy\]"):
        load_scenario(_write(tmp_path, "  - {epoch: 1, accuracy: '> 0.5'}\n", no_metrics))
    with pytest.raises(ScenarioError, match="no validation data") as caught:
        load_scenario(_write(tmp_path, "  - {epoch: 1, val_loss: '< 1'}\n", no_metrics))
    assert caught.value.path == "expect[0].val_loss"
    with pytest.raises(ScenarioError, match="expected a list of checks"):
        load_scenario(_write(tmp_path, "  step: 1\n"))


def test_numbers_written_without_a_dot_are_numbers(tmp_path: Path) -> None:
    # the issue's own example writes tol: 1e-4, which plain YAML 1.1 reads as text
    scenario = load_scenario(_write(tmp_path, "  - {step: 1, loss: 2e-1, tol: 1e-4}\n"))
    assert scenario.expectations[0].condition == Condition("==", 0.2, 1e-4)


# ------------------------------------------------------------------------- the command
def test_check_reports_each_expectation_and_its_exit_status(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["check", "xor"])
    assert ok.exit_code == 0, ok.output
    assert "hidden.kernel[0, 1] = -0.475031 ± 1e-06: actual -0.475031" in ok.output
    assert "5 of 5 expectations hold" in ok.output

    path = _write(tmp_path, "  - {step: 2, loss: '< 0'}\n  - {epoch: 1, loss: '> 0'}\n")
    failing = runner.invoke(main, ["check", str(path)])
    assert failing.exit_code == 1, failing.output
    lines = [line.strip() for line in failing.output.splitlines()]
    assert any(line.startswith("FAIL  expect[0]  step 2 update") for line in lines)
    assert any(line.startswith("ok    expect[1]  epoch 1") for line in lines)
    assert "1 of 2 expectations hold" in failing.output

    skipped = runner.invoke(main, ["check", str(path), "--no-expect"])
    assert skipped.exit_code == 0 and "expectations" not in skipped.output

    bad = _write(tmp_path, "  - {step: 1, los: 3}\n")
    refused = runner.invoke(main, ["check", str(bad)])
    assert refused.exit_code == 2
    assert f"{bad}:{FIRST_EXPECT_LINE}:15: expect[0].los: unknown key 'los'" in refused.output
    assert "Traceback" not in refused.output
