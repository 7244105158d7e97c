"""The input plane: a two-input network's output over a grid, checked against a forward
pass written out here, point by point."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from backprop_tui.core import (
    MAX_MAP_POINTS,
    Debugger,
    Replay,
    RunView,
    TraceRecorder,
    load_scenario,
)
from backprop_tui.core.run.boundary import fit_grid, plane_range


def _forward_by_hand(
    params: dict[str, np.ndarray], x0: float, x1: float
) -> tuple[list[float], float]:
    """xor's 2-4-1 network (tanh, sigmoid) at one point, in plain Python floats."""
    kernel, bias = params["hidden.kernel"], params["hidden.bias"]
    hidden = [
        math.tanh(x0 * float(kernel[0, j]) + x1 * float(kernel[1, j]) + float(bias[j]))
        for j in range(4)
    ]
    out_k, out_b = params["output.kernel"], params["output.bias"]
    z = sum(h * float(out_k[j, 0]) for j, h in enumerate(hidden)) + float(out_b[0])
    return hidden, 1.0 / (1.0 + math.exp(-z))


@pytest.mark.parametrize("steps", [0, 25])
def test_xor_map_is_the_network_at_each_grid_point(steps: int) -> None:
    dbg = Debugger(load_scenario("xor"))
    dbg.run(steps)
    found = dbg.input_map(30, 12)
    hidden_map = dbg.input_map(30, 12, layer=0)
    assert found is not None and hidden_map is not None
    assert found.shape == (12, 30) and found.units == 1 and hidden_map.units == 4
    assert found.step_index == steps
    # xor's points span 0..1: the grid spans them and 10% more on each side
    assert found.x_range == pytest.approx((-0.1, 1.1)) and found.y_range == pytest.approx(
        (-0.1, 1.1)
    )
    params = dbg.params
    for row, col in [(0, 0), (0, 29), (11, 0), (11, 29), (5, 17)]:
        x0 = -0.1 + (col + 0.5) * 1.2 / 30  # cell centres, row 0 at the top
        x1 = 1.1 - (row + 0.5) * 1.2 / 12
        hidden, out = _forward_by_hand(params, x0, x1)
        assert found.values[row, col, 0] == pytest.approx(out, rel=1e-12)
        assert hidden_map.values[row, col] == pytest.approx(hidden, rel=1e-12, abs=1e-15)
    assert found.kind == "value" and found.classes == 2 and found.value_mid == 0.5
    assert hidden_map.value_range == (-1.0, 1.0) and not hidden_map.is_output
    assert hidden_map.predicted_classes() is None and hidden_map.classes == 2


def test_xor_points_and_predicted_classes() -> None:
    dbg = Debugger(load_scenario("xor"))
    dbg.run(400)
    found = dbg.input_map(20, 20)
    assert found is not None
    assert found.train.xy.tolist() == dbg.scenario.data.x_train.tolist()
    assert found.train.labels.tolist() == dbg.scenario.data.y_train[:, 0].tolist()
    assert len(found.validation.ids) == 0
    classes = found.predicted_classes()
    assert classes is not None
    xs, ys = found.cell_centres()
    for (x0, x1), label in zip(found.train.xy, found.train.labels, strict=True):
        col = int(np.argmin(abs(xs - x0)))
        row = int(np.argmin(abs(ys - x1)))
        assert classes[row, col] == label  # trained: each corner's cell is its class


def test_softmax_classes_are_the_argmax_of_predict() -> None:
    dbg = Debugger(load_scenario("spirals"))
    dbg.run(3)
    found = dbg.input_map(16, 8)
    assert found is not None and found.kind == "classes" and found.classes == 3
    xs, ys = found.cell_centres()
    grid = np.array([[x, y] for y in ys for x in xs])
    expected = np.argmax(dbg.backend.predict(grid)[1], axis=1).reshape(8, 16)
    classes = found.predicted_classes()
    assert classes is not None and (classes == expected).all()
    labels = np.argmax(dbg.scenario.data.y_val, axis=1)
    assert found.validation.labels.tolist() == labels.tolist()
    assert len(found.validation.ids) == len(dbg.scenario.data.x_val) > 0


def test_a_map_is_computed_once_per_weights_and_again_after_they_change() -> None:
    dbg = Debugger(load_scenario("xor"))
    first = dbg.input_map(10, 10)
    assert dbg.maps_computed == 1
    assert dbg.input_map(10, 10) is first and dbg.maps_computed == 1
    dbg.step("phase")  # input: the weights are the same
    assert dbg.input_map(10, 10) is first
    dbg.step("batch")
    second = dbg.input_map(10, 10)
    assert dbg.maps_computed == 2 and second is not None and second.step_index == 1
    assert not np.array_equal(first.values if first else None, second.values)
    dbg.back()  # time travel: the map of the step it stands at
    again = dbg.input_map(10, 10)
    assert dbg.maps_computed == 3 and again is not None and again.step_index == 0
    assert np.array_equal(first.values if first else None, again.values)
    dbg.set_weight("output.bias", (0,), 3.0)  # an edit is new weights too
    edited = dbg.input_map(10, 10)
    assert dbg.maps_computed == 4 and edited is not None
    assert edited.values.min() > again.values.min()


def test_a_big_grid_is_scaled_down_to_the_cap() -> None:
    dbg = Debugger(load_scenario("moons"))
    found = dbg.input_map(1000, 600)
    assert found is not None
    rows, cols = found.shape
    assert rows * cols <= MAX_MAP_POINTS and cols / rows == pytest.approx(1000 / 600, rel=0.05)
    assert fit_grid(40, 20) == (40, 20)


def test_range_of_constant_or_empty_data_is_not_empty() -> None:
    x_range, y_range = plane_range(np.array([[1.0, 2.0], [1.0, 4.0]]))
    assert x_range == (0.0, 2.0) and y_range == pytest.approx((1.8, 4.2))
    assert plane_range(np.zeros((0, 2))) == ((-1.2, 1.2), (-1.2, 1.2))


def test_more_than_two_inputs_says_it_needs_two() -> None:
    dbg = Debugger(load_scenario("glyphs8"))
    assert dbg.input_map(20, 20) is None
    assert dbg.no_input_map is not None and "two inputs" in dbg.no_input_map
    assert "64" in dbg.no_input_map


def test_a_replay_draws_the_map_and_says_why_when_it_cannot() -> None:
    dbg = Debugger(load_scenario("xor"))
    recorder = TraceRecorder(dbg, 1 << 20)
    dbg.listeners.append(recorder.observe)
    dbg.run(3)
    trace = recorder.trace()
    replay = Replay(trace)
    assert isinstance(replay, RunView)
    assert replay.no_input_map is None and replay.input_map(10, 10) is not None
    bare = Replay(dataclasses.replace(trace, plane={}))  # as an older trace, without data
    assert bare.input_map(10, 10) is None
    assert bare.no_input_map is not None and "training data" in bare.no_input_map


def test_torch_and_numpy_draw_the_same_map() -> None:
    pytest.importorskip("torch")
    maps = []
    for backend in ("numpy", "torch"):
        dbg = Debugger(load_scenario("moons"), backend=backend)
        dbg.run(20)
        maps.append((dbg.input_map(30, 20), dbg.input_map(30, 20, layer=0)))
    for a, b in zip(*maps, strict=True):
        assert a is not None and b is not None
        np.testing.assert_allclose(a.values, b.values, rtol=1e-10, atol=1e-12)
