"""Backprop against central finite differences, for every activation × loss pair that can train.

The finite differences nudge one parameter at a time and rerun the forward pass
and the loss through a second backend, so they check the hand-written backward
pass against the engine's own forward pass. The forward pass itself is checked
against the textbook formulas at the end of this file (and in test_numbers).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backprop_tui.core import Debugger, ScenarioError, load_scenario
from backprop_tui.core.backends import make_backend
from backprop_tui.core.maths import activations
from backprop_tui.core.maths.activations import get_activation

HIDDEN = ("linear", "relu", "leaky_relu", "elu", "sigmoid", "tanh", "softplus", "swish", "gelu")
OUTPUTS = (*HIDDEN, "softmax")
LOSSES = (
    "mean_squared_error",
    "mean_absolute_error",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
)
# What the validator lets through: cross-entropies need their probability layer.
TRAINABLE = [(out, loss) for out in OUTPUTS for loss in LOSSES[:2]] + [
    ("sigmoid", "binary_crossentropy"),
    ("softmax", "categorical_crossentropy"),
    ("softmax", "sparse_categorical_crossentropy"),
]
UNTRAINABLE = [(out, loss) for out in OUTPUTS for loss in LOSSES if (out, loss) not in TRAINABLE]

SAMPLES, INPUTS, UNITS, OUT = 5, 3, 4, 3
STEP = 1e-6
RELATIVE, ABSOLUTE = 1e-6, 1e-9


def _labels(loss: str) -> list[Any]:
    rng = np.random.default_rng(7)
    if loss == "binary_crossentropy":
        return rng.integers(0, 2, (SAMPLES, OUT)).astype(float).tolist()
    ids = [0, 2, 1, 2, 0]
    if loss == "sparse_categorical_crossentropy":
        return ids
    if loss == "categorical_crossentropy":
        return np.eye(OUT)[ids].tolist()
    return rng.uniform(-1.0, 1.5, (SAMPLES, OUT)).round(3).tolist()


def _scenario_text(hidden: str, output: str, loss: str) -> str:
    x = np.random.default_rng(3).uniform(-1.5, 1.5, (SAMPLES, INPUTS)).round(3).tolist()
    init = "{name: random_normal, stddev: 0.8}"
    return f"""
name: fd
seed: 11
data: {{inline: {{x: {x}, y: {_labels(loss)}}}}}
model:
  inputs: {INPUTS}
  layers:
    - {{name: hidden, units: {UNITS}, activation: {hidden},
        kernel_initializer: {init}, bias_initializer: {init}}}
    - {{name: output, units: {OUT}, activation: {output},
        kernel_initializer: {init}, bias_initializer: {init}}}
loss: {loss}
optimizer: {{name: sgd, learning_rate: 0.1}}
training: {{epochs: 1, batch_size: {SAMPLES}, shuffle: false}}
"""


def _load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return load_scenario(path)


def _finite_difference_check(scenario: Any) -> float:
    """The worst error between backprop and central differences over every parameter.

    In units of the tolerance: below 1 passes.
    """
    dbg = Debugger(scenario, dtype="float64")
    for _ in range(4):  # input, forward, loss, backward
        dbg.step("phase")
    assert dbg.phase == "backward"
    grads = dbg.grads
    params = dbg.params
    batch = dbg.record_of("input")
    assert batch is not None
    x, y = batch.arrays["x"], batch.arrays["y"]

    probe = make_backend("numpy", scenario, params, "float64", "cpu")

    def loss_at(values: dict[str, np.ndarray]) -> float:
        probe.set_params(values)
        probe.begin(x, y)
        for i in range(len(scenario.layers)):
            probe.forward_layer(i)
        return probe.compute_loss()

    assert loss_at(params) == pytest.approx(dbg.loss, rel=1e-14)
    assert list(grads) == list(params)
    worst = 0.0
    for name, value in params.items():
        for index in np.ndindex(value.shape):
            up, down = value.copy(), value.copy()
            up[index] += STEP
            down[index] -= STEP
            numeric = (loss_at({**params, name: up}) - loss_at({**params, name: down})) / (2 * STEP)
            analytic = float(grads[name][index])
            # relative to the gradient, with a floor: rounding in the loss (about 1e-16 of
            # it, divided by 2·STEP) swamps gradients that nearly cancel to zero
            worst = max(worst, abs(numeric - analytic) / (RELATIVE * abs(numeric) + ABSOLUTE))
    return worst


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize(("output", "loss"), TRAINABLE)
def test_backprop_matches_finite_differences(
    tmp_path: Path, hidden: str, output: str, loss: str
) -> None:
    scenario = _load(tmp_path, _scenario_text(hidden, output, loss))
    assert _finite_difference_check(scenario) < 1.0


@pytest.mark.parametrize(("output", "loss"), UNTRAINABLE)
def test_pairs_that_cannot_train_are_refused(tmp_path: Path, output: str, loss: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        _load(tmp_path, _scenario_text("tanh", output, loss))
    assert caught.value.path == "model.layers[1].activation"
    assert caught.value.line == 10


def test_finite_differences_would_notice_a_wrong_gradient(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check has teeth: a tanh derivative off by 1% in the backward pass is reported."""
    right = activations.ACTIVATIONS["tanh"]
    assert right.derivative is not None
    derivative = right.derivative
    wrong = dataclasses.replace(right, derivative=lambda z, a: 1.01 * derivative(z, a))
    monkeypatch.setitem(activations.ACTIVATIONS, "tanh", wrong)
    scenario = _load(tmp_path, _scenario_text("tanh", "sigmoid", "binary_crossentropy"))
    assert _finite_difference_check(scenario) > 10.0


# ---------------------------------------------------------------- numerical stability
def _extreme_text(output: str, loss: str, labels: list[list[int]]) -> str:
    return f"""
name: extreme
data: {{inline: {{x: [[1.0], [-1.0]], y: {labels}}}}}
model:
  inputs: 1
  layers:
    - {{name: hidden, units: 1, activation: linear, kernel: [[1.0]], bias: [0.0]}}
    - {{name: output, units: 2, activation: {output}, kernel: [[1000.0, -1000.0]], bias: [0, 0]}}
loss: {loss}
optimizer: {{name: sgd, learning_rate: 0.01}}
training: {{epochs: 1, batch_size: 2, shuffle: false}}
"""


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("output", "loss", "wrong_loss"),
    [
        # every one of the 4 outputs is 1000 logits on the wrong side: −log σ(−1000) = 1000
        ("sigmoid", "binary_crossentropy", 1000.0),
        # each sample's true class is 2000 below the other: −log softmax = 2000
        ("softmax", "categorical_crossentropy", 2000.0),
        ("softmax", "sparse_categorical_crossentropy", 2000.0),
    ],
)
def test_logits_of_1000_stay_finite(
    tmp_path: Path, dtype: str, output: str, loss: str, wrong_loss: float
) -> None:
    for labels, expected in (([[0, 1], [1, 0]], wrong_loss), ([[1, 0], [0, 1]], 0.0)):
        y: list[Any] = labels
        if loss.startswith("sparse"):
            y = [row.index(1) for row in labels]
        scenario = _load(tmp_path, _extreme_text(output, loss, y))
        dbg = Debugger(scenario, dtype=dtype)
        dbg.step("batch")
        assert dbg.loss is not None and math.isfinite(dbg.loss)
        assert dbg.loss == pytest.approx(expected, abs=1e-3)
        for name, grad in dbg.grads.items():
            assert np.isfinite(grad).all(), name
        for name, value in dbg.params.items():
            assert np.isfinite(value).all(), name
        for i in range(2):
            for key, array in dbg.layer_arrays(i).items():
                assert np.isfinite(array).all(), (i, key)
        # completely wrong: dL/dz of the output is ±1/(batch·units) for BCE, ±1/batch for CCE
        out = dbg.record_of("backward", 1)
        assert out is not None
        per = 4.0 if loss == "binary_crossentropy" else 2.0
        expected_dz = (np.array(dbg.layer_arrays(1)["a"], dtype=np.float64) - labels) / per
        np.testing.assert_allclose(out.arrays["dL_dz"], expected_dz, atol=1e-6)


# ---------------------------------------------------------------- forward formulas
def _phi(t: float) -> float:
    return 0.5 * (1.0 + math.erf(t / math.sqrt(2.0)))


FORMULAS = {
    "linear": lambda t: t,
    "relu": lambda t: max(t, 0.0),
    "leaky_relu": lambda t: t if t > 0 else 0.2 * t,  # Keras 3's negative_slope
    "elu": lambda t: t if t > 0 else math.exp(t) - 1.0,
    "sigmoid": lambda t: 1.0 / (1.0 + math.exp(-t)),
    "tanh": math.tanh,
    "softplus": lambda t: math.log(1.0 + math.exp(t)),
    "swish": lambda t: t / (1.0 + math.exp(-t)),
    "gelu": lambda t: t * _phi(t),  # Keras 3's exact form (approximate=False)
}
POINTS = (-3.2, -0.7, -0.01, 0.02, 0.5, 2.9)


@pytest.mark.parametrize("name", sorted(FORMULAS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_activation_values_match_their_formulas(name: str, dtype: str) -> None:
    z = np.array([POINTS, POINTS[::-1]], dtype=dtype)
    a = get_activation(name).forward(z)
    assert a.shape == z.shape and a.dtype == np.dtype(dtype)
    expected = [[FORMULAS[name](float(t)) for t in row] for row in z]
    tolerance = 1e-14 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(a, expected, rtol=tolerance, atol=tolerance)


def test_softmax_values_match_the_formula() -> None:
    z = np.array([[0.3, -1.2, 2.0], [5.0, 5.0, -5.0]])
    a = get_activation("softmax").forward(z)
    for row_z, row_a in zip(z.tolist(), a.tolist(), strict=True):
        total = sum(math.exp(t) for t in row_z)
        assert row_a == pytest.approx([math.exp(t) / total for t in row_z], rel=1e-14)
