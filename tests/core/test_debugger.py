"""The Debugger's stepping, its views (params, grads, loss), update rows, metrics and time travel."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backprop_tui.core import Debugger, load_scenario

LR = 0.2
BATCH = 8
# 35 blobs, 7 of them (20%) held out: 28 to train on, in batches of 8, 8, 8 and 4.
TRAIN, VAL, STEPS_PER_EPOCH = 28, 7, 4
SCENARIO = f"""
name: stepper
seed: 5
data: {{generator: blobs, n: 35, classes: 3, validation_split: 0.2}}
model:
  inputs: 2
  layers:
    - {{name: first, units: 5, activation: relu}}
    - {{name: second, units: 4, activation: tanh}}
    - {{name: out, units: 3, activation: softmax}}
loss: categorical_crossentropy
optimizer: {{name: sgd, learning_rate: {LR}}}
metrics: [accuracy]
training: {{epochs: 3, batch_size: {BATCH}, shuffle: true}}
"""
LAYERS = ("first", "second", "out")


@pytest.fixture
def scenario_path(tmp_path: Path) -> Path:
    path = tmp_path / "stepper.yaml"
    path.write_text(SCENARIO)
    return path


@pytest.fixture
def dbg(scenario_path: Path) -> Debugger:
    return Debugger(load_scenario(scenario_path))


def forward(params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The network's output, written out independently of the engine."""
    h = np.maximum(x @ params["first.kernel"] + params["first.bias"], 0.0)
    h = np.tanh(h @ params["second.kernel"] + params["second.bias"])
    z = h @ params["out.kernel"] + params["out.bias"]
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def cce(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(-(y * np.log(p)).sum(axis=1)))


def accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(p.argmax(axis=1) == y.argmax(axis=1)))


# ------------------------------------------------------------------------ stepping
def test_a_fresh_debugger_stands_before_the_first_input(dbg: Debugger) -> None:
    assert dbg.phase == "update" and dbg.next_phase == "input"
    assert dbg.step_index == 0 and dbg.epoch == 0
    assert dbg.loss is None and dbg.grads == {}
    assert list(dbg.params) == [f"{n}.{p}" for n in LAYERS for p in ("kernel", "bias")]
    assert dbg.scenario.steps_per_epoch() == STEPS_PER_EPOCH
    assert len(dbg.scenario.data.x_train) == TRAIN and len(dbg.scenario.data.x_val) == VAL


def test_phase_steps_follow_the_pipeline(dbg: Debugger) -> None:
    for step in range(2):
        seen = []
        for _ in range(5):
            record = dbg.step("phase")
            seen.append(record.phase)
            assert dbg.phase == record.phase
        assert seen == ["input", "forward", "loss", "backward", "update"]
        assert dbg.step_index == step + 1
    # a phase step runs a whole pass: the forward record is the last layer's, complete
    dbg.step("phase")
    fwd = dbg.step("phase")
    assert (fwd.phase, fwd.layer_index, fwd.complete) == ("forward", 2, True)
    dbg.step("phase")
    bwd = dbg.step("phase")
    assert (bwd.phase, bwd.layer_index, bwd.complete) == ("backward", 0, True)


def test_layer_steps_visit_each_layer_forward_then_backward_in_reverse(dbg: Debugger) -> None:
    visits = []
    for _ in range(9):
        record = dbg.step("layer")
        visits.append((record.phase, record.layer_name))
    assert visits == [
        ("input", None),
        ("forward", "first"),
        ("forward", "second"),
        ("forward", "out"),
        ("loss", None),
        ("backward", "out"),
        ("backward", "second"),
        ("backward", "first"),
        ("update", None),
    ]
    assert dbg.step_index == 1


def test_layer_steps_hand_each_layer_the_previous_layers_output(dbg: Debugger) -> None:
    x = dbg.step("layer").arrays["x"]
    a_prev = x
    for i in range(3):
        record = dbg.step("layer")
        assert record.complete == (i == 2)
        np.testing.assert_array_equal(record.arrays["a_prev"], a_prev)
        a_prev = record.arrays["a"]
        # what is not computed yet is not shown yet
        if i < 2:
            assert "z" not in dbg.layer_arrays(i + 1)
    np.testing.assert_allclose(a_prev, forward(dbg.params, x), rtol=1e-12)
    dbg.step("layer")  # loss
    for i in (2, 1, 0):
        record = dbg.step("layer")
        assert record.layer_index == i
        assert set(record.arrays) >= {"dL_da", "dL_dz", f"{LAYERS[i]}.kernel", f"{LAYERS[i]}.bias"}
        if i > 0:  # dL/da of the layer below comes with this layer's backward step
            assert "dL_da" in dbg.layer_arrays(i - 1)
        # dL/db is the batch sum of dL/dz
        np.testing.assert_allclose(
            record.arrays[f"{LAYERS[i]}.bias"], record.arrays["dL_dz"].sum(axis=0), rtol=1e-12
        )


def test_a_phase_step_inside_a_pass_finishes_the_pass(dbg: Debugger) -> None:
    dbg.step("layer")
    dbg.step("layer")  # forward, first layer only
    record = dbg.step("phase")
    assert (record.phase, record.layer_name) == ("forward", "out")
    assert dbg.next_phase == "loss"


def test_batch_steps_finish_the_step_from_anywhere(dbg: Debugger) -> None:
    record = dbg.step("batch")
    assert record.phase == "update" and dbg.step_index == 1
    dbg.step("phase")
    dbg.step("phase")
    assert dbg.phase == "forward"
    record = dbg.step("batch")
    assert record.phase == "update" and dbg.step_index == 2


def test_epoch_steps_visit_every_training_sample_once(dbg: Debugger) -> None:
    dbg.step("phase")  # mid-step, the epoch step still stops at its end
    batches = []
    dbg.listeners.append(
        lambda d: (
            batches.append(d.last_record.arrays["indices"])
            if d.last_record is not None and d.last_record.phase == "input"
            else None
        )
    )
    first = dbg.record_of("input")
    assert first is not None
    dbg.step("epoch")
    assert (dbg.epoch, dbg.step_index, dbg.phase) == (1, STEPS_PER_EPOCH, "update")
    sizes = [len(first.arrays["indices"])] + [len(b) for b in batches]
    assert sizes == [8, 8, 8, 4]
    seen = np.concatenate([first.arrays["indices"], *batches])
    assert sorted(seen.tolist()) == list(range(TRAIN))
    assert len(dbg.epoch_history) == 1
    dbg.step("epoch")
    assert (dbg.epoch, dbg.step_index) == (2, 2 * STEPS_PER_EPOCH)


def test_shuffling_changes_the_order_between_epochs(dbg: Debugger) -> None:
    orders = []
    for _ in range(2):
        dbg.step("batch")
        record = dbg.record_of("input")
        assert record is not None
        orders.append(record.arrays["indices"].tolist())
        dbg.step("epoch")
    assert orders[0] != orders[1]


def test_unknown_step_size_is_refused(dbg: Debugger) -> None:
    with pytest.raises(ValueError, match="step size"):
        dbg.step("sample")  # type: ignore[arg-type]


# --------------------------------------------------------- params, grads and loss
def test_after_a_step_loss_and_grads_belong_to_the_weights_before_it(dbg: Debugger) -> None:
    dbg.step("batch")
    before = dbg.params
    dbg.step("phase")  # input of step 2
    batch = dbg.record_of("input")
    assert batch is not None
    x, y = batch.arrays["x"], batch.arrays["y"]
    old_loss = dbg.loss
    dbg.step("phase")  # forward: the loss is not computed yet
    assert dbg.loss == old_loss
    dbg.step("phase")  # loss
    assert dbg.loss == pytest.approx(cce(y, forward(before, x)), rel=1e-12)
    old_grads = dbg.grads
    dbg.step("layer")  # backward through the last layer only: grads still the last pass's
    for name, g in old_grads.items():
        np.testing.assert_array_equal(dbg.grads[name], g)
    dbg.step("phase")
    grads = dbg.grads
    dbg.step("phase")  # update
    after = dbg.params
    assert dbg.loss == pytest.approx(cce(y, forward(before, x)), rel=1e-12)
    assert list(grads) == list(after)
    for name in after:
        np.testing.assert_array_equal(dbg.grads[name], grads[name])
        np.testing.assert_allclose(after[name], before[name] - LR * grads[name], rtol=1e-14)
    # the gradient of the weights *before* the update, checked by a finite difference
    w = before["out.kernel"].copy()
    h = 1e-6
    w[1, 2] += h
    up = cce(y, forward({**before, "out.kernel": w}, x))
    w[1, 2] -= 2 * h
    down = cce(y, forward({**before, "out.kernel": w}, x))
    assert grads["out.kernel"][1, 2] == pytest.approx((up - down) / (2 * h), rel=1e-5)


def test_views_are_copies_the_caller_cannot_corrupt(dbg: Debugger) -> None:
    dbg.step("batch")
    params = dbg.params
    kernel = params["first.kernel"]
    saved = kernel.copy()
    with contextlib.suppress(ValueError):  # read-only arrays are one way to refuse
        kernel += 1.0
    np.testing.assert_array_equal(dbg.params["first.kernel"], saved)
    grad = dbg.grads["first.kernel"]
    saved_grad = grad.copy()
    with contextlib.suppress(ValueError):
        grad *= 0.0
    np.testing.assert_array_equal(dbg.grads["first.kernel"], saved_grad)
    z = dbg.layer_arrays(1)["z"]
    saved_z = z.copy()
    with contextlib.suppress(ValueError):
        z[:] = 0.0
    np.testing.assert_array_equal(dbg.layer_arrays(1)["z"], saved_z)
    record = dbg.record_of("forward", 0)
    assert record is not None
    with pytest.raises(ValueError):
        record.arrays["z"][0, 0] = 5.0


# ------------------------------------------------------------------- update rows
def test_update_rows_pending_then_applied(dbg: Debugger) -> None:
    for _ in range(3):
        dbg.step("phase")
    assert dbg.update_rows("second.kernel") == []  # no gradients yet
    dbg.step("phase")  # backward done: the update is pending
    before = dbg.params
    grads = dbg.grads
    rows = dbg.update_rows("second.kernel")
    assert len(rows) == 5 * 4
    for row in rows:
        assert row.value == before["second.kernel"][row.index]
        assert row.gradient == grads["second.kernel"][row.index]
        assert row.terms["lr·g"] == pytest.approx(LR * row.gradient, rel=1e-15)
        assert row.new_value == pytest.approx(row.value - LR * row.gradient, rel=1e-14, abs=1e-17)
        assert row.change == pytest.approx(-LR * row.gradient, rel=1e-15)
    # pending means not applied
    np.testing.assert_array_equal(dbg.params["second.kernel"], before["second.kernel"])
    dbg.step("phase")  # update
    applied = dbg.update_rows("second.kernel")
    after = dbg.params["second.kernel"]
    assert [r.index for r in applied] == [r.index for r in rows]
    for pending, row in zip(rows, applied, strict=True):
        assert row.value == pending.value
        assert row.new_value == after[row.index]
        assert row.change == pytest.approx(pending.change, rel=1e-15)


def test_update_rows_top_k_and_paging(dbg: Debugger) -> None:
    dbg.step("batch")
    grads = dbg.grads["first.kernel"]
    top = dbg.update_rows("first.kernel", top_k=4)
    changes = [abs(r.change) for r in top]
    assert changes == sorted(changes, reverse=True)
    biggest = np.sort(np.abs(LR * grads).ravel())[::-1][:4]
    np.testing.assert_allclose(changes, biggest, rtol=1e-14)
    everything = dbg.update_rows("first.kernel", top_k=100)
    assert len(everything) == grads.size
    page = dbg.update_rows("first.kernel", offset=3, limit=4)
    # first.kernel is 2 × 5: flat positions 3 to 6 in row-major order
    assert [r.index for r in page] == [(0, 3), (0, 4), (1, 0), (1, 1)]
    assert dbg.update_rows("first.kernel", offset=8, limit=4)[-1].index == (1, 4)


def test_update_rows_show_adam_terms(tmp_path: Path) -> None:
    path = tmp_path / "adam.yaml"
    path.write_text(SCENARIO.replace(f"{{name: sgd, learning_rate: {LR}}}", "adam"))
    dbg = Debugger(load_scenario(path))
    dbg.step("batch")
    g = dbg.grads["out.bias"]
    for row in dbg.update_rows("out.bias"):
        m, v = 0.1 * g[row.index], 0.001 * g[row.index] ** 2
        assert row.terms["m"] == pytest.approx(m, rel=1e-12)
        assert row.terms["v"] == pytest.approx(v, rel=1e-12)
        assert row.terms["m̂"] == pytest.approx(g[row.index], rel=1e-12)
        assert row.terms["v̂"] == pytest.approx(g[row.index] ** 2, rel=1e-12)


# ------------------------------------------------------------------------ metrics
def test_metrics_per_batch_and_per_epoch(dbg: Debugger) -> None:
    batch_numbers = []
    for _ in range(STEPS_PER_EPOCH):
        dbg.step("phase")
        record = dbg.record_of("input")
        assert record is not None
        x, y = record.arrays["x"], record.arrays["y"]
        p = forward(dbg.params, x)
        dbg.step("batch")
        stats = dbg.step_history[-1]
        assert stats.loss == pytest.approx(cce(y, p), rel=1e-12)
        assert stats.metrics["accuracy"] == accuracy(y, p)
        assert dbg.metrics["accuracy"] == accuracy(y, p)
        batch_numbers.append((len(x), stats.loss, stats.metrics["accuracy"]))
    assert [n for n, _, _ in batch_numbers] == [8, 8, 8, 4]
    (epoch,) = dbg.epoch_history
    # Keras reports the epoch's loss and accuracy as means over samples
    assert epoch.loss == pytest.approx(sum(n * loss for n, loss, _ in batch_numbers) / TRAIN)
    assert epoch.metrics["accuracy"] == pytest.approx(
        sum(n * acc for n, _, acc in batch_numbers) / TRAIN
    )
    # the validation split is scored with the weights at the end of the epoch
    data = dbg.scenario.data
    p_val = forward(dbg.params, data.x_val)
    assert epoch.val_loss == pytest.approx(cce(data.y_val, p_val), rel=1e-12)
    assert epoch.val_metrics["accuracy"] == accuracy(data.y_val, p_val)
    assert set(epoch.as_dict()) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    val_loss, val_metrics = dbg.evaluate("validation")
    assert val_loss == epoch.val_loss and val_metrics == dict(epoch.val_metrics)
    train_loss, _ = dbg.evaluate("train")
    assert train_loss == pytest.approx(cce(data.y_train, forward(dbg.params, data.x_train)))


def test_without_a_validation_split_there_is_no_val_loss(tmp_path: Path) -> None:
    path = tmp_path / "noval.yaml"
    path.write_text(SCENARIO.replace(", validation_split: 0.2", ""))
    dbg = Debugger(load_scenario(path))
    dbg.step("epoch")
    assert dbg.epoch_history[0].val_loss is None
    assert "val_loss" not in dbg.epoch_history[0].as_dict()
    assert dbg.evaluate("validation") == (None, None)


# ---------------------------------------------------------------- determinism
def _trace(dbg: Debugger, steps: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(steps):
        dbg.step("batch")
        record = dbg.record_of("input")
        assert record is not None
        out.append((dbg.loss, record.arrays["indices"].tolist(), dbg.params, dbg.grads))
    return out


def _same(a: list[Any], b: list[Any]) -> bool:
    for (loss_a, idx_a, params_a, grads_a), (loss_b, idx_b, params_b, grads_b) in zip(
        a, b, strict=True
    ):
        if loss_a != loss_b or idx_a != idx_b:
            return False
        for name in params_a:
            if not np.array_equal(params_a[name], params_b[name]):
                return False
            if not np.array_equal(grads_a[name], grads_b[name]):
                return False
    return True


def test_same_scenario_and_seed_give_identical_numbers(scenario_path: Path) -> None:
    first = _trace(Debugger(load_scenario(scenario_path)), 6)
    second = _trace(Debugger(load_scenario(scenario_path)), 6)
    assert _same(first, second)
    other = _trace(Debugger(load_scenario(scenario_path, seed=6)), 6)
    assert not _same(first, other)


def test_float32_runs_close_to_float64(scenario_path: Path) -> None:
    scenario = load_scenario(scenario_path)
    single = Debugger(scenario, dtype="float32")
    double = Debugger(scenario, dtype="float64")
    for _ in range(5):
        single.step("batch")
        double.step("batch")
        assert single.loss == pytest.approx(double.loss, rel=1e-5)
    for name, value in single.params.items():
        assert value.dtype == np.float32
        assert single.grads[name].dtype == np.float32
        np.testing.assert_allclose(value, double.params[name], rtol=1e-4, atol=1e-5)
    for i in range(3):
        for key, array in single.layer_arrays(i).items():
            assert array.dtype == np.float32, key
    assert isinstance(single.loss, float)


# ----------------------------------------------------------------- time travel
def test_back_then_forward_again_gives_the_same_numbers(dbg: Debugger) -> None:
    assert dbg.back() is False  # nothing to go back to
    states = [dbg.params]
    losses = []
    for _ in range(STEPS_PER_EPOCH + 2):  # across an epoch boundary
        dbg.step("batch")
        states.append(dbg.params)
        losses.append(dbg.loss)
    assert dbg.epoch == 1
    for back_to in (5, 4, 3):
        assert dbg.back() is True
        assert dbg.step_index == back_to
        for name, value in states[back_to].items():
            np.testing.assert_array_equal(dbg.params[name], value)
    assert dbg.epoch == 0 and len(dbg.epoch_history) == 0
    assert len(dbg.step_history) == 3
    for step in range(3, STEPS_PER_EPOCH + 2):
        dbg.step("batch")
        assert dbg.loss == losses[step]
        for name, value in states[step + 1].items():
            np.testing.assert_array_equal(dbg.params[name], value)
    assert dbg.epoch == 1 and len(dbg.epoch_history) == 1


def test_back_mid_step_returns_to_the_start_of_that_step(dbg: Debugger) -> None:
    dbg.step("batch")
    dbg.step("batch")
    start = dbg.params
    expected = Debugger(dbg.scenario)
    expected.run(3)
    for _ in range(4):  # input, forward, loss, backward: stop short of the update
        dbg.step("phase")
    assert dbg.back() is True
    assert (dbg.step_index, dbg.phase) == (2, "update")
    for name, value in start.items():
        np.testing.assert_array_equal(dbg.params[name], value)
    dbg.step("batch")
    assert dbg.loss == expected.loss
    for name, value in expected.params.items():
        np.testing.assert_array_equal(dbg.params[name], value)


def test_back_restores_the_optimizer_state(tmp_path: Path) -> None:
    path = tmp_path / "momentum.yaml"
    path.write_text(SCENARIO.replace("learning_rate: 0.2}", "learning_rate: 0.2, momentum: 0.9}"))
    dbg = Debugger(load_scenario(path))
    for _ in range(3):
        dbg.step("batch")
    target = dbg.params
    dbg.back()
    dbg.back()
    dbg.step("batch")
    dbg.step("batch")
    for name, value in target.items():
        np.testing.assert_array_equal(dbg.params[name], value)
