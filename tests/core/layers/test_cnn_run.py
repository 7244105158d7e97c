"""A convolutional run through the debugger: time travel with dropout, prediction without
it, breakpoints and diagnostics on conv layers, the layer views the panes read."""

from __future__ import annotations

import math

import numpy as np
import pytest
from backprop_tui.core import Debugger
from cnn_cases import from_text, scenario


def _snapshot(dbg: Debugger) -> list[tuple[str, np.ndarray]]:
    return [
        (f"{r.phase} {r.layer_name} {key}", np.array(r.arrays[key], copy=True))
        for r in dbg.records
        for key in r.arrays
    ]


def test_time_travel_is_bit_exact_with_dropout_and_batch_norm() -> None:
    dbg = Debugger(scenario("small_cnn", batch_size=4), keyframe_every=3)
    for _ in range(5):
        dbg.step("batch")
    seen = _snapshot(dbg)
    params = {k: v.copy() for k, v in dbg.params.items()}
    masks = [r.arrays["mask"].copy() for r in dbg.records if "mask" in r.arrays]
    assert masks and not np.all(masks[0] > 0)  # some inputs were dropped
    assert dbg.back() and dbg.back() and dbg.step_index == 3
    dbg.step("batch")
    dbg.step("batch")
    again = _snapshot(dbg)
    assert [k for k, _ in again] == [k for k, _ in seen]
    for (key, a), (_, b) in zip(seen, again, strict=True):
        assert np.array_equal(a, b), key
    for name, value in dbg.params.items():
        assert np.array_equal(value, params[name]), name  # moving statistics included


def test_masks_differ_from_step_to_step_and_not_between_backends() -> None:
    pytest.importorskip("torch")
    s = scenario("small_cnn", batch_size=4)
    a, b = Debugger(s), Debugger(s, backend="torch")
    masks = []
    for _ in range(2):
        a.step("batch")
        b.step("batch")
        ra = next(r for r in a.records if "mask" in r.arrays).arrays["mask"]
        rb = next(r for r in b.records if "mask" in r.arrays).arrays["mask"]
        assert np.array_equal(ra, rb)
        masks.append(ra.copy())
    assert not np.array_equal(masks[0], masks[1])
    assert set(np.unique(masks[0])) == {0.0, 1.0 / (1.0 - 0.3)}


def test_validation_uses_no_dropout_and_the_moving_statistics() -> None:
    dbg = Debugger(scenario("small_cnn", batch_size=4, validation=True))
    dbg.step("epoch")
    x = dbg.scenario.data.x_val
    _, predicted = dbg.backend.predict(x)
    p = dbg.params
    a = x.reshape(len(x), 8, 8, 1)
    # The same network written out in NumPy, in inference mode.
    kernel, bias = p["conv.kernel"], p["conv.bias"]
    windows = np.lib.stride_tricks.sliding_window_view(a, (3, 3), axis=(1, 2))
    z = np.einsum("nhwcij,ijcf->nhwf", windows, kernel) + bias
    h = np.maximum(z, 0).reshape(len(x), 3, 2, 3, 2, 4).max(axis=(2, 4)).reshape(len(x), -1)
    h = (h - p["norm.moving_mean"]) / np.sqrt(p["norm.moving_variance"] + 1e-3)
    logits = (h * p["norm.gamma"] + p["norm.beta"]) @ p["out.kernel"] + p["out.bias"]
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(predicted, expected, rtol=1e-12)
    assert dbg.epoch_history[0].val_loss is not None


DEAD = """
name: dead
data: {generator: glyphs, size: 8, n: 20}
training: {epochs: 12, batch_size: 20}
model:
  input_shape: [8, 8, 1]
  layers:
    - {name: conv, type: conv2d, filters: 4, kernel_size: 3, activation: relu,
       bias_initializer: {name: constant, value: -50}}
    - {name: flat, type: flatten}
    - {name: out, type: dense, units: 10, activation: softmax}
loss: categorical_crossentropy
breakpoints: ["dead_fraction(conv) >= 1"]
"""


def test_dead_filters_are_found_and_break() -> None:
    dbg = Debugger(from_text(DEAD))
    hit = dbg.run_until(max_steps=3)
    assert hit.stopped_by != "steps" and dbg.step_index == 1
    assert dbg.stats is not None and dbg.stats.dead_fraction("conv") == 1.0
    dbg.run(10)  # the diagnostics speak once a condition has lasted 10 steps
    warnings = [e.text for e in dbg.log if "dying ReLU" in e.text]
    assert warnings and "4 of 4 (100%) relu filters" in warnings[0]


def test_grad_norm_of_a_conv_kernel_and_layers_without_parameters() -> None:
    dbg = Debugger(scenario("small_cnn"))
    dbg.step("batch")
    grads = dbg.grads
    expected = math.sqrt(sum(float((grads[k] ** 2).sum()) for k in ("conv.kernel", "conv.bias")))
    assert dbg.grad_norm("conv") == pytest.approx(expected, rel=1e-12)
    assert dbg.stats is not None and dbg.stats.grad_norm("pool") is None
    dbg.step("phase")
    while dbg.phase != "backward" or dbg.layer_index != 0:
        dbg.step("layer")
    assert dbg.grad_norm("pool") is None and dbg.grad_norm("conv") is not None
    assert dbg.run_until("grad_norm(conv) > 0", max_steps=2).steps == 1


OVERFLOW = """
name: overflow
data: {inline: {x: [[1e308, 1e308, 1e308, 1e308]], y: [[1, 0]]}}
model:
  input_shape: [2, 2, 1]
  layers:
    - {name: conv, type: conv2d, filters: 1, kernel_size: 2, kernel_initializer: ones}
    - {name: flat, type: flatten}
    - {name: out, type: dense, units: 2, activation: softmax}
loss: categorical_crossentropy
"""


def test_nan_origin_in_a_conv_layer() -> None:
    dbg = Debugger(from_text(OVERFLOW))
    result = dbg.run_until(max_steps=2)
    assert result.stopped_by in ("nan", "inf")
    assert dbg.stats is not None
    where = dbg.stats.first("inf")
    assert where is not None and (where.phase, where.layer, where.tensor) == (
        "forward",
        "conv",
        "z",
    )


def test_layer_views_give_shapes_for_the_panes() -> None:
    dbg = Debugger(scenario("small_cnn"))
    conv, pool, flat, drop, norm, out = dbg.layers
    assert out.kernel_shape == (36, 3)
    assert (conv.inputs, conv.units, conv.kernel_shape) == (9, 4, (3, 3, 1, 4))
    assert conv.output_shape == (6, 6, 4) and conv.is_image and conv.activation == "relu"
    assert pool.kernel is None and pool.param_count == 0 and pool.output_shape == (3, 3, 4)
    assert flat.output_shape == (36,) and drop.activation is None
    assert (norm.kernel, norm.bias, norm.inputs, norm.units) == ("norm.gamma", "norm.beta", 1, 36)
    assert norm.state_names == ("norm.moving_mean", "norm.moving_variance")
    assert dbg.input_shape == (8, 8, 1)
    assert list(dbg.params) == [
        "conv.kernel",
        "conv.bias",
        "norm.gamma",
        "norm.beta",
        "norm.moving_mean",
        "norm.moving_variance",
        "out.kernel",
        "out.bias",
    ]


def test_a_two_input_network_with_dropout_says_why_it_has_no_input_plane() -> None:
    text = """
name: moons_dropout
data: {generator: moons, n: 40}
model:
  inputs: 2
  layers:
    - {name: hidden, type: dense, units: 8, activation: relu}
    - {name: drop, type: dropout, rate: 0.2}
    - {name: out, type: dense, units: 1, activation: sigmoid}
loss: binary_crossentropy
"""
    dbg = Debugger(from_text(text))
    assert dbg.no_input_map is not None and "drop is dropout" in dbg.no_input_map
    assert dbg.input_map(20, 10) is None
    dbg.step("batch")  # and it trains
    assert dbg.loss is not None
