"""One forward and backward of a small conv net against numbers worked out by hand,
from Keras' documented layer math (cross-correlation without a kernel flip, channels
last, TensorFlow's 'same' padding, pooling windows, inverted dropout, batch
normalization with the batch's biased variance) — not from the implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from backprop_tui.core import Debugger
from backprop_tui.core.layers import make_layer
from backprop_tui.core.maths.windows import pad_amounts
from backprop_tui.core.spec.types import InitSpec, LayerSpec
from cnn_cases import from_text

NET = """
name: by_hand
data: {inline: {x: [[1, 2, 0, 0, 1, 3, 2, 1, 1]], y: [[1, 0]]}}
model:
  input_shape: [3, 3, 1]
  layers:
    - {name: conv, type: conv2d, filters: 1, kernel_size: 2,
       kernel: [[[[1]], [[0]]], [[[-1]], [[2]]]], bias: [0.5]}
    - {name: pool, type: max_pooling2d, pool_size: 2}
    - {name: flat, type: flatten}
    - {name: out, type: dense, units: 2, activation: softmax, kernel: [[0.1, -0.2]]}
loss: categorical_crossentropy
optimizer: {name: sgd, learning_rate: 0.1}
training: {epochs: 1, batch_size: 1}
"""


def test_a_small_conv_net_by_hand() -> None:
    dbg = Debugger(from_text(NET))
    dbg.step("batch")
    conv = dbg.layer_arrays(0)
    # image [[1 2 0] [0 1 3] [2 1 1]], kernel [[1 0] [-1 2]], bias 0.5, no flip:
    # z[0,0] = 1·1 + 2·0 + 0·(−1) + 1·2 + .5; z[0,1] = 2 + 0 − 1 + 6 + .5; …
    np.testing.assert_array_equal(conv["z"][0, :, :, 0], [[3.5, 7.5], [0.5, 2.5]])
    assert dbg.layer_arrays(1)["z"].reshape(-1).tolist() == [7.5]
    p1 = 1.0 / (1.0 + math.exp(0.75 + 1.5))  # softmax of the logits [0.75, −1.5]
    assert dbg.loss == pytest.approx(-math.log(1.0 - p1), rel=1e-14)
    # dL/dflat = (p − y)·kernelᵀ = −p1·0.1 + p1·(−0.2) = −0.3·p1, passed to the
    # pooling window's winner (row 0, column 1) only.
    g = -0.3 * p1
    np.testing.assert_allclose(conv["dL_dz"][0, :, :, 0], [[0.0, g], [0.0, 0.0]], rtol=1e-14)
    # dL/dkernel = Σ over output positions of input patch × dL/dz: the patch at (0, 1).
    np.testing.assert_allclose(
        dbg.grads["conv.kernel"][:, :, 0, 0], g * np.array([[2.0, 0.0], [1.0, 3.0]]), rtol=1e-14
    )
    assert dbg.grads["conv.bias"].tolist() == pytest.approx([g], rel=1e-14)
    assert dbg.params["conv.bias"].tolist() == pytest.approx([0.5 - 0.1 * g], rel=1e-14)


def test_same_padding_puts_the_odd_pixel_after_as_tensorflow() -> None:
    assert pad_amounts(4, 3, 2, "same") == (0, 1)
    assert pad_amounts(5, 3, 1, "same") == (1, 1)
    assert pad_amounts(5, 2, 1, "same") == (0, 1)
    assert pad_amounts(6, 3, 3, "same") == (0, 0)
    assert pad_amounts(5, 3, 1, "valid") == (0, 0)


def _layer(kind: str, shape: tuple[int, ...], out: tuple[int, ...], **extra: object) -> LayerSpec:
    return LayerSpec(
        name="l",
        type=kind,
        inputs=int(np.prod(shape)),
        units=out[-1],
        activation="linear",
        use_bias=False,
        kernel_initializer=InitSpec("zeros"),
        bias_initializer=InitSpec("zeros"),
        input_shape=shape,
        output_shape=out,
        **extra,  # type: ignore[arg-type]
    )


def test_average_pooling_leaves_the_padding_out_of_the_count() -> None:
    spec = _layer(
        "average_pooling2d",
        (1, 3, 1),
        (1, 2, 1),
        kernel_size=(1, 2),
        strides=(1, 2),
        padding="same",
    )
    x = np.array([1.0, 2.0, 3.0]).reshape(1, 1, 3, 1)
    # windows [1, 2] and [3, padding]: 1.5 and 3 (not 1.5).
    assert make_layer(spec).forward({}, x).z.reshape(-1).tolist() == [1.5, 3.0]


def test_max_pooling_never_picks_the_padding() -> None:
    spec = _layer(
        "max_pooling2d", (1, 3, 1), (1, 2, 1), kernel_size=(1, 2), strides=(1, 2), padding="same"
    )
    x = np.array([-1.0, -2.0, -3.0]).reshape(1, 1, 3, 1)
    assert make_layer(spec).forward({}, x).z.reshape(-1).tolist() == [-1.0, -3.0]


def test_batch_normalization_by_hand() -> None:
    spec = _layer("batch_normalization", (1,), (1,), momentum=0.9, epsilon=1e-3)
    layer = make_layer(spec)
    params = {
        "l.gamma": np.array([2.0]),
        "l.beta": np.array([0.5]),
        "l.moving_mean": np.array([0.0]),
        "l.moving_variance": np.array([1.0]),
    }
    x = np.array([[1.0], [5.0]])  # batch mean 3, biased variance 4
    step = layer.forward(params, x)
    expected = 0.5 + 2.0 * np.array([-2.0, 2.0]) / math.sqrt(4.0 + 1e-3)
    np.testing.assert_allclose(step.z[:, 0], expected, rtol=1e-14)
    assert step.state["l.moving_mean"].tolist() == pytest.approx([0.9 * 0 + 0.1 * 3])
    assert step.state["l.moving_variance"].tolist() == pytest.approx([0.9 * 1 + 0.1 * 4])
    # Prediction reads the moving statistics, not the batch's.
    predicted = layer.forward(params, x, training=False).z[:, 0]
    np.testing.assert_allclose(predicted, 0.5 + 2.0 * x[:, 0] / math.sqrt(1.0 + 1e-3))
