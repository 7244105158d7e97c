"""One full training step of a 2-2-2 network, worked out by hand and compared to the engine.

Every number here is computed with plain Python floats, one sum at a time, so the
test shares no code with the engine's matrix arithmetic. The engine must agree
to 1e-12 in float64: forward values, the loss with Keras' reduction, every
gradient of the chain rule, and every weight after plain SGD.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backprop_tui.core import Debugger, load_scenario

X = [[0.5, -1.0], [1.5, 2.0], [-0.3, 0.8]]
W1 = [[0.1, -0.2], [0.3, 0.4]]  # (inputs, units), as Keras stores a Dense kernel
B1 = [0.05, -0.1]
W2 = [[0.7, -0.5], [-0.6, 0.9]]
B2 = [0.2, 0.0]
LR = 0.5
N, INPUTS, J, K = 3, 2, 2, 2  # samples, inputs, hidden units, output units

Matrix = list[list[float]]


def _yaml(loss: str, output: str, y: object) -> str:
    return f"""
name: by-hand
data:
  inline:
    x: {X}
    y: {y}
model:
  inputs: 2
  layers:
    - {{name: hidden, units: 2, activation: sigmoid, kernel: {W1}, bias: {B1}}}
    - {{name: output, units: 2, activation: {output}, kernel: {W2}, bias: {B2}}}
loss: {loss}
optimizer: {{name: sgd, learning_rate: {LR}}}
metrics: [accuracy]
training: {{epochs: 1, batch_size: 3, shuffle: false}}
"""


def _one_step(tmp_path: Path, text: str) -> tuple[Debugger, dict[str, np.ndarray]]:
    path = tmp_path / "hand.yaml"
    path.write_text(text)
    dbg = Debugger(load_scenario(path), dtype="float64")
    before = dbg.params
    dbg.step("batch")
    return dbg, before


def sigmoid(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))


def close(actual: Any, expected: Any) -> None:
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=1e-12, atol=1e-15)


def forward_hidden() -> tuple[Matrix, Matrix]:
    z1 = [[X[n][0] * W1[0][j] + X[n][1] * W1[1][j] + B1[j] for j in range(J)] for n in range(N)]
    a1 = [[sigmoid(z1[n][j]) for j in range(J)] for n in range(N)]
    return z1, a1


def output_logits(a1: Matrix) -> Matrix:
    return [[a1[n][0] * W2[0][k] + a1[n][1] * W2[1][k] + B2[k] for k in range(K)] for n in range(N)]


def backward_from(dz2: Matrix, a1: Matrix) -> dict[str, Any]:
    """Every gradient below the output's dL/dz, by the chain rule written out."""
    dW2 = [[sum(a1[n][j] * dz2[n][k] for n in range(N)) for k in range(K)] for j in range(J)]
    db2 = [sum(dz2[n][k] for n in range(N)) for k in range(K)]
    da1 = [[sum(dz2[n][k] * W2[j][k] for k in range(K)) for j in range(J)] for n in range(N)]
    dz1 = [[da1[n][j] * a1[n][j] * (1.0 - a1[n][j]) for j in range(J)] for n in range(N)]
    dW1 = [[sum(X[n][i] * dz1[n][j] for n in range(N)) for j in range(J)] for i in range(INPUTS)]
    db1 = [sum(dz1[n][j] for n in range(N)) for j in range(J)]
    return {"dW2": dW2, "db2": db2, "da1": da1, "dz1": dz1, "dW1": dW1, "db1": db1}


def sgd(value: Any, grad: Any) -> Any:
    if isinstance(value, list):
        return [sgd(v, g) for v, g in zip(value, grad, strict=True)]
    return value - LR * grad


def check_step(dbg: Debugger, before: dict[str, np.ndarray], hand: dict[str, Any]) -> None:
    """Compare the engine's records, params and grads with the hand-worked numbers."""
    fwd = [dbg.record_of("forward", 0), dbg.record_of("forward", 1)]
    bwd = [dbg.record_of("backward", 0), dbg.record_of("backward", 1)]
    assert all(r is not None for r in fwd + bwd)
    f0, f1, b0, b1 = fwd[0], fwd[1], bwd[0], bwd[1]
    assert f0 is not None and f1 is not None and b0 is not None and b1 is not None
    close(f0.arrays["a_prev"], X)
    close(f0.arrays["z"], hand["z1"])
    close(f0.arrays["a"], hand["a1"])
    close(f1.arrays["a_prev"], hand["a1"])
    close(f1.arrays["z"], hand["z2"])
    close(f1.arrays["a"], hand["a2"])

    loss_record = dbg.record_of("loss")
    assert loss_record is not None and loss_record.loss is not None
    assert dbg.loss is not None
    assert dbg.loss == pytest.approx(hand["loss"], rel=1e-12, abs=0)
    assert loss_record.loss == dbg.loss
    close(loss_record.arrays["dL_da"], hand["da2"])

    close(b1.arrays["dL_da"], hand["da2"])
    close(b1.arrays["dL_dz"], hand["dz2"])
    close(b1.arrays["output.kernel"], hand["dW2"])
    close(b1.arrays["output.bias"], hand["db2"])
    close(b0.arrays["dL_da"], hand["da1"])
    close(b0.arrays["dL_dz"], hand["dz1"])
    close(b0.arrays["hidden.kernel"], hand["dW1"])
    close(b0.arrays["hidden.bias"], hand["db1"])

    grads = dbg.grads
    assert list(grads) == ["hidden.kernel", "hidden.bias", "output.kernel", "output.bias"]
    close(grads["hidden.kernel"], hand["dW1"])
    close(grads["hidden.bias"], hand["db1"])
    close(grads["output.kernel"], hand["dW2"])
    close(grads["output.bias"], hand["db2"])

    new = {
        "hidden.kernel": sgd(W1, hand["dW1"]),
        "hidden.bias": sgd(B1, hand["db1"]),
        "output.kernel": sgd(W2, hand["dW2"]),
        "output.bias": sgd(B2, hand["db2"]),
    }
    params = dbg.params
    assert list(params) == list(new)
    for name, expected in new.items():
        assert params[name].dtype == np.float64
        close(params[name], expected)
    close(before["hidden.kernel"], W1)
    close(before["output.bias"], B2)

    update = dbg.record_of("update")
    assert update is not None
    for name, expected in new.items():
        close(update.arrays[name], before[name])
        close(update.arrays[f"{name}.new"], expected)
        close(update.arrays[f"{name}.grad"], grads[name])
        close(update.arrays[f"{name}.change"], np.asarray(expected) - before[name])


def test_mse_step_by_hand(tmp_path: Path) -> None:
    y = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    z1, a1 = forward_hidden()
    z2 = output_logits(a1)
    a2 = [[sigmoid(z2[n][k]) for k in range(K)] for n in range(N)]
    # Keras' mse: the mean over the output units, then the mean over the batch.
    per_sample = [sum((a2[n][k] - y[n][k]) ** 2 for k in range(K)) / K for n in range(N)]
    loss = sum(per_sample) / N
    da2 = [[2.0 * (a2[n][k] - y[n][k]) / (K * N) for k in range(K)] for n in range(N)]
    dz2 = [[da2[n][k] * a2[n][k] * (1.0 - a2[n][k]) for k in range(K)] for n in range(N)]
    hand = {"z1": z1, "a1": a1, "z2": z2, "a2": a2, "loss": loss, "da2": da2, "dz2": dz2}
    hand.update(backward_from(dz2, a1))

    dbg, before = _one_step(tmp_path, _yaml("mean_squared_error", "sigmoid", y))
    check_step(dbg, before, hand)


def test_bce_step_by_hand(tmp_path: Path) -> None:
    y = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    z1, a1 = forward_hidden()
    z2 = output_logits(a1)
    a2 = [[sigmoid(z2[n][k]) for k in range(K)] for n in range(N)]

    def bce(t: float, p: float) -> float:
        return -(t * math.log(p) + (1.0 - t) * math.log(1.0 - p))

    # Keras' binary cross-entropy: the mean over the units, then over the batch.
    per_sample = [sum(bce(y[n][k], a2[n][k]) for k in range(K)) / K for n in range(N)]
    loss = sum(per_sample) / N
    da2 = [
        [(-y[n][k] / a2[n][k] + (1.0 - y[n][k]) / (1.0 - a2[n][k])) / (K * N) for k in range(K)]
        for n in range(N)
    ]
    # sigmoid'(z) = a (1 − a) cancels the denominators: dL/dz = (a − y) / (K N).
    dz2 = [[(a2[n][k] - y[n][k]) / (K * N) for k in range(K)] for n in range(N)]
    hand = {"z1": z1, "a1": a1, "z2": z2, "a2": a2, "loss": loss, "da2": da2, "dz2": dz2}
    hand.update(backward_from(dz2, a1))

    dbg, before = _one_step(tmp_path, _yaml("binary_crossentropy", "sigmoid", y))
    check_step(dbg, before, hand)


@pytest.mark.parametrize(
    ("loss_name", "labels"),
    [
        ("categorical_crossentropy", [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]),
        ("sparse_categorical_crossentropy", [0, 1, 1]),
    ],
)
def test_categorical_step_by_hand(tmp_path: Path, loss_name: str, labels: list[Any]) -> None:
    y = [[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
    z1, a1 = forward_hidden()
    z2 = output_logits(a1)
    a2 = []
    for n in range(N):
        e = [math.exp(z2[n][k]) for k in range(K)]
        a2.append([e[k] / sum(e) for k in range(K)])
    # Keras' categorical cross-entropy: the sum over the classes, then the mean over the batch.
    per_sample = [-sum(y[n][k] * math.log(a2[n][k]) for k in range(K)) for n in range(N)]
    loss = sum(per_sample) / N
    da2 = [[-y[n][k] / a2[n][k] / N for k in range(K)] for n in range(N)]
    dz2 = [[(a2[n][k] - y[n][k]) / N for k in range(K)] for n in range(N)]
    hand = {"z1": z1, "a1": a1, "z2": z2, "a2": a2, "loss": loss, "da2": da2, "dz2": dz2}
    hand.update(backward_from(dz2, a1))

    dbg, before = _one_step(tmp_path, _yaml(loss_name, "softmax", labels))
    check_step(dbg, before, hand)
    # softmax's Jacobian applied to dL/da must give the same dL/dz as the fused form
    b1 = dbg.record_of("backward", 1)
    assert b1 is not None
    s = np.asarray(a2)
    jacobian_product = s * (np.asarray(da2) - (np.asarray(da2) * s).sum(axis=1, keepdims=True))
    close(b1.arrays["dL_dz"], jacobian_product)


def test_mae_loss_and_gradient_by_hand(tmp_path: Path) -> None:
    y = [[0.9, 0.1], [0.2, 0.8], [0.3, 0.6]]
    z1, a1 = forward_hidden()
    z2 = output_logits(a1)
    a2 = [[sigmoid(z2[n][k]) for k in range(K)] for n in range(N)]
    loss = sum(sum(abs(a2[n][k] - y[n][k]) for k in range(K)) / K for n in range(N)) / N
    da2 = [[math.copysign(1.0, a2[n][k] - y[n][k]) / (K * N) for k in range(K)] for n in range(N)]
    dz2 = [[da2[n][k] * a2[n][k] * (1.0 - a2[n][k]) for k in range(K)] for n in range(N)]
    hand = {"z1": z1, "a1": a1, "z2": z2, "a2": a2, "loss": loss, "da2": da2, "dz2": dz2}
    hand.update(backward_from(dz2, a1))

    dbg, before = _one_step(tmp_path, _yaml("mean_absolute_error", "sigmoid", y))
    check_step(dbg, before, hand)


def test_reductions_are_keras_means_not_sums(tmp_path: Path) -> None:
    """Doubling the batch with a copy of itself leaves every Keras-reduced loss unchanged."""
    y = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    for loss_name, output, labels in (
        ("mse", "sigmoid", y),
        ("binary_crossentropy", "sigmoid", y),
        ("categorical_crossentropy", "softmax", [[1, 0], [0, 1], [0, 1]]),
    ):
        single, _ = _one_step(tmp_path, _yaml(loss_name, output, labels))
        doubled_text = (
            _yaml(loss_name, output, labels + labels)
            .replace(f"x: {X}", f"x: {X + X}")
            .replace("batch_size: 3", "batch_size: 6")
        )
        doubled, _ = _one_step(tmp_path, doubled_text)
        assert doubled.loss == pytest.approx(single.loss, rel=1e-12)
        # means over the batch: the gradients do not grow with a repeated batch either
        for name, grad in single.grads.items():
            close(doubled.grads[name], grad)
