"""A conv2d layer's kernel_regularizer and bias_regularizer: the penalty in the loss, the
gradient check and the torch backend agree with the NumPy reference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from backprop_tui.core import Debugger
from backprop_tui.core.maths.regularizers import Regularizer
from cnn_cases import scenario as cnn_scenario

try:
    import torch  # noqa: F401
except ImportError:
    TORCH = False
else:
    TORCH = True


def test_a_conv2d_kernel_penalty_agrees_across_backends_and_finite_differences() -> None:
    base = cnn_scenario("valid_max", optimizer={"name": "sgd", "learning_rate": 0.1})
    layers = tuple(
        dataclasses.replace(
            layer,
            kernel_regularizer=Regularizer(l1=0.125, l2=0.25),
            bias_regularizer=Regularizer(l2=0.5),
        )
        if layer.type == "conv2d"
        else layer
        for layer in base.layers
    )
    penalised = dataclasses.replace(base, layers=layers)
    conv = penalised.layers[0]
    assert set(conv.regularizers) == {"conv.kernel", "conv.bias"}
    numpy_run = Debugger(penalised)
    numpy_run.step("batch")
    kernel = np.asarray(Debugger(penalised).params["conv.kernel"])
    bias = np.asarray(Debugger(penalised).params["conv.bias"])
    expected = 0.125 * np.abs(kernel).sum() + 0.25 * (kernel**2).sum() + 0.5 * (bias**2).sum()
    assert numpy_run.penalty == pytest.approx(expected, rel=1e-12)
    assert numpy_run.gradient_check().passed
    if TORCH:
        torch_run = Debugger(penalised, backend="torch")
        torch_run.step("batch")
        assert torch_run.loss == pytest.approx(numpy_run.loss, rel=1e-10)
        for name in numpy_run.grads:
            np.testing.assert_allclose(
                torch_run.grads[name], numpy_run.grads[name], rtol=1e-9, atol=1e-12
            )
