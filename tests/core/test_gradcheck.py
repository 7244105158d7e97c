"""The gradient check: passes on a right backward pass, fails on a wrong one, disturbs nothing."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backprop_tui.core import Debugger, load_scenario
from backprop_tui.core.backends.numpy_backend import NumpyBackend
from backprop_tui.core.maths import activations
from backprop_tui.core.run.gradcheck import gradient_check
from backprop_tui.tui.cli import main
from click.testing import CliRunner


def _wrong_tanh(monkeypatch: pytest.MonkeyPatch, factor: float = 1.01) -> None:
    right = activations.ACTIVATIONS["tanh"]
    assert right.derivative is not None
    derivative = right.derivative
    wrong = dataclasses.replace(right, derivative=lambda z, a: factor * derivative(z, a))
    monkeypatch.setitem(activations.ACTIVATIONS, "tanh", wrong)


def test_xor_passes_before_and_after_training() -> None:
    dbg = Debugger(load_scenario("xor"))
    fresh = gradient_check(dbg)
    assert fresh.passed and fresh.max_error < 1e-7
    assert [p.name for p in fresh.params] == dbg.scenario.param_names
    assert all(p.checked == p.total for p in fresh.params)  # small layers: every entry
    dbg.run(200)
    trained = gradient_check(dbg)
    assert trained.passed and trained.step_index == 200
    assert trained.loss != fresh.loss


def test_big_layers_are_sampled_and_relu_kinks_do_not_fail_the_check() -> None:
    dbg = Debugger(load_scenario("glyphs8"))  # 64 → relu → softmax
    dbg.run(20)
    result = gradient_check(dbg, sample=40, seed=3)
    assert result.passed, "\n".join(result.table())
    kernel = result.params[0]
    assert kernel.name == "hidden.kernel" and kernel.checked == 40 < kernel.total
    assert len({tuple(i) for i in kernel.indices}) == 40  # distinct entries
    again = gradient_check(dbg, sample=40, seed=3)
    np.testing.assert_array_equal(again.params[0].indices, kernel.indices)
    other = gradient_check(dbg, sample=40, seed=4)
    assert not np.array_equal(other.params[0].indices, kernel.indices)


def test_a_wrong_activation_derivative_fails_upstream_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _wrong_tanh(monkeypatch)
    dbg = Debugger(load_scenario("xor"))  # hidden tanh → output sigmoid
    dbg.run(5)
    result = gradient_check(dbg)
    assert not result.passed
    verdicts = {p.name: p.passed for p in result.params}
    # the output layer's gradients do not pass through the hidden tanh
    assert verdicts == {
        "hidden.kernel": False,
        "hidden.bias": False,
        "output.kernel": True,
        "output.bias": True,
    }
    assert result.max_error > 1e-3  # a 1% error, far above the tolerance
    assert "FAILED" in result.table()[-1]


def test_a_wrong_backend_backward_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    right = NumpyBackend.backward_layer

    def forgets_a_sample(self: NumpyBackend, i: int) -> None:
        right(self, i)
        if i == 1:  # the output bias gradient misses the batch's first sample
            self.grads["output.bias"] = self.dL_dz[i][1:].sum(axis=0)

    monkeypatch.setattr(NumpyBackend, "backward_layer", forgets_a_sample)
    result = gradient_check(Debugger(load_scenario("xor")))
    assert [p.name for p in result.params if not p.passed] == ["output.bias"]


def test_the_check_leaves_the_debugger_as_it_was() -> None:
    dbg = Debugger(load_scenario("xor"))
    dbg.run(3)
    for _ in range(3):
        dbg.step("phase")  # mid-step, after the loss
    params, grads = dbg.params, dbg.grads
    state = (dbg.phase, dbg.step_index, dbg.loss, len(dbg.records), len(dbg.history), len(dbg.log))
    gradient_check(dbg)
    assert (
        dbg.phase,
        dbg.step_index,
        dbg.loss,
        len(dbg.records),
        len(dbg.history),
        len(dbg.log),
    ) == state
    for name, value in dbg.params.items():
        assert value is params[name] or np.array_equal(value, params[name])
        np.testing.assert_array_equal(dbg.grads[name], grads[name])
    # and the run goes on exactly as an unchecked one
    dbg.step("batch")
    twin = Debugger(load_scenario("xor"))
    twin.run(4)
    for name, value in twin.params.items():
        np.testing.assert_array_equal(dbg.params[name], value)


def test_it_checks_the_batch_of_the_current_step() -> None:
    dbg = Debugger(load_scenario("spirals"))  # shuffled, several batches per epoch
    dbg.run(7)
    between = gradient_check(dbg, sample=4)  # between steps: the next step's batch
    dbg.step("phase")  # input
    dbg.step("phase")  # forward
    dbg.step("phase")  # loss
    assert dbg.loss is not None
    assert between.loss == pytest.approx(dbg.loss, rel=1e-12)
    assert gradient_check(dbg, sample=4).loss == pytest.approx(dbg.loss, rel=1e-12)
    assert between.batch_size == dbg.scenario.training.batch_size


def test_a_float32_run_is_checked_in_float64() -> None:
    dbg = Debugger(load_scenario("xor"), dtype="float32")
    dbg.run(50)
    result = gradient_check(dbg)
    assert result.passed and result.max_error < 1e-6


def _kink_scenario(tmp_path: Path) -> Any:
    # sample 2 has x = 0, so its hidden z is exactly the bias, 0: nudging the
    # bias moves it across relu's kink, where relu has no derivative.
    path = tmp_path / "kink.yaml"
    path.write_text(
        """
name: kink
data: {inline: {x: [[1.0], [0.0], [-2.0]], y: [[0.5], [1.0], [0.2]]}}
model:
  inputs: 1
  layers:
    - {name: hidden, units: 1, activation: relu, kernel: [[0.7]], bias: [0.0]}
    - {name: output, units: 1, activation: linear, kernel: [[1.3]], bias: [0.1]}
loss: mse
optimizer: {name: sgd, learning_rate: 0.1}
training: {epochs: 1, batch_size: 3, shuffle: false}
"""
    )
    return load_scenario(path)


def test_entries_at_a_kink_are_reported_and_left_out(tmp_path: Path) -> None:
    result = gradient_check(Debugger(_kink_scenario(tmp_path)))
    bias = next(p for p in result.params if p.name == "hidden.bias")
    assert bias.kinked.tolist() == [True]
    # one-sided slopes differ, so the central difference disagrees with backprop ...
    assert bias.error[0] > 1e-3
    # ... and the entry is not held against the check
    assert result.passed
    kernel = next(p for p in result.params if p.name == "hidden.kernel")
    assert not kernel.kinked.any()
    assert "1 at a kink" in "\n".join(result.table())


def test_layer_and_argument_errors() -> None:
    dbg = Debugger(load_scenario("xor"))
    only = gradient_check(dbg, layer="output")
    assert [p.name for p in only.params] == ["output.kernel", "output.bias"]
    with pytest.raises(ValueError, match="no layer named 'nope'; the layers are hidden, output"):
        gradient_check(dbg, layer="nope")
    with pytest.raises(ValueError, match="sample"):
        gradient_check(dbg, sample=0)


def test_cli_exit_status(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["gradcheck", "xor", "--steps", "3"])
    assert ok.exit_code == 0, ok.output
    assert "hidden.kernel" in ok.output and "gradient check passed" in ok.output
    assert "at step 4" in ok.output
    bad_layer = runner.invoke(main, ["gradcheck", "xor", "--layer", "nope"])
    assert bad_layer.exit_code == 2
    assert "no layer named 'nope'" in bad_layer.output
    missing = runner.invoke(main, ["gradcheck", "no_such_scenario"])
    assert missing.exit_code == 2
    _wrong_tanh(monkeypatch, factor=0.9)
    wrong = runner.invoke(main, ["gradcheck", "xor", "--layer", "hidden"])
    assert wrong.exit_code == 1, wrong.output
    assert "FAIL" in wrong.output and "output.kernel" not in wrong.output


def test_the_check_reads_the_gradients_of_the_backend_that_was_chosen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("torch")
    from backprop_tui.core.backends.torch_backend import TorchBackend

    right = TorchBackend.backward_layer

    def off_by_a_percent(self: TorchBackend, i: int) -> None:
        right(self, i)
        if i == 0:  # torch's hidden.kernel gradient, 1% too large
            self.grads["hidden.kernel"] = self.grads["hidden.kernel"] * 1.01

    monkeypatch.setattr(TorchBackend, "backward_layer", off_by_a_percent)
    with_torch = gradient_check(Debugger(load_scenario("xor"), backend="torch"))
    assert [p.name for p in with_torch.params if not p.passed] == ["hidden.kernel"]
    assert "backprop by torch cpu" in with_torch.table()[-1]
    # the same weights and batch through the NumPy reference pass
    with_numpy = gradient_check(Debugger(load_scenario("xor"), backend="numpy"))
    assert with_numpy.passed, "\n".join(with_numpy.table())
    assert "backprop by numpy cpu" in with_numpy.table()[-1]
    runner = CliRunner()
    failed = runner.invoke(main, ["gradcheck", "xor", "--backend", "torch"])
    assert failed.exit_code == 1, failed.output
    assert "FAIL" in failed.output
    passed = runner.invoke(main, ["gradcheck", "xor", "--backend", "numpy"])
    assert passed.exit_code == 0, passed.output


def test_a_float32_torch_run_is_checked_in_float64() -> None:
    pytest.importorskip("torch")
    dbg = Debugger(load_scenario("xor"), backend="torch", dtype="float32")
    dbg.run(20)
    result = gradient_check(dbg)
    assert result.passed and result.max_error < 1e-6, "\n".join(result.table())


def test_the_table_says_relative_error_as_the_app_does() -> None:
    table = gradient_check(Debugger(load_scenario("xor"))).table()
    assert "max rel err" in table[0] and "max error" not in table[0]
    assert "largest relative error" in table[-1]
