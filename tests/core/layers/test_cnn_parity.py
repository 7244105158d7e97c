"""The torch backend (torch's own conv2d, pooling, batch norm and autograd) gives the
NumPy reference's numbers for convolutional networks: every record of every layer,
the weights, the moving statistics and the validation figures, after several steps."""

from __future__ import annotations

import pytest
from backprop_tui.core import Debugger
from cnn_cases import NETWORKS, compare, scenario

pytest.importorskip("torch", reason="the torch backend needs PyTorch: pip install 'torch==2.13.0'")


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_float64_agrees_to_1e_10_after_several_steps(name: str) -> None:
    s = scenario(name, validation=True)
    worst, where, count = compare(Debugger(s), Debugger(s, backend="torch"), steps=4)
    assert count > 50
    assert worst <= 1e-10, f"{name}: relative error {worst:.3g} at {where}"


@pytest.mark.parametrize(
    "optimizer",
    [{"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}, {"name": "rmsprop"}],
    ids=["sgd_momentum", "rmsprop"],
)
def test_other_optimizers_agree_on_the_small_cnn(optimizer: dict[str, object]) -> None:
    s = scenario("small_cnn", optimizer=optimizer)
    worst, where, _ = compare(Debugger(s), Debugger(s, backend="torch"), steps=3)
    assert worst <= 1e-10, f"relative error {worst:.3g} at {where}"


def test_float32_agrees_to_1e_4_after_one_step() -> None:
    s = scenario("small_cnn")
    ref = Debugger(s, dtype="float32")
    got = Debugger(s, backend="torch", dtype="float32")
    worst, where, _ = compare(ref, got, steps=1)
    assert worst <= 1e-4, f"relative error {worst:.3g} at {where}"


def test_the_moving_statistics_move_alike_and_are_never_gradients() -> None:
    s = scenario("small_cnn")
    ref, got = Debugger(s), Debugger(s, backend="torch")
    before = ref.params["norm.moving_variance"].copy()
    ref.step("batch")
    got.step("batch")
    assert "norm.moving_mean" not in ref.grads and "norm.moving_mean" not in got.grads
    assert not (ref.params["norm.moving_variance"] == before).all()
    assert ref.params["norm.moving_mean"] == pytest.approx(
        got.params["norm.moving_mean"], rel=1e-12
    )
