"""What a record held across later steps still says: the update table's optimizer state
(held live until the optimizer writes into it again), the gradients (held without a
copy where nothing writes into them), and the statistics measured where they were made."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from attach_models import pairs
from backprop_tui.core import attach
from backprop_tui.core.attach.live import LiveArrays
from torch import nn


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 3))


def test_a_kept_update_record_keeps_its_optimizer_state_after_later_steps() -> None:
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    run = attach(model, nn.CrossEntropyLoss(), opt, pairs(batches=4), epochs=2)
    kept = run.step("batch")
    expected = opt.state[model[0].weight]["exp_avg"].clone().numpy()
    read_early = kept.arrays["0.weight.exp_avg_sq"]  # read now: a copy, not a view
    early_value = read_early.copy()
    run.step("batch")
    run.step("batch")
    # the optimizer has moved on; the record still shows the state after its own step
    assert not np.array_equal(opt.state[model[0].weight]["exp_avg"].numpy(), expected)
    np.testing.assert_array_equal(kept.arrays["0.weight.exp_avg"], expected)
    np.testing.assert_array_equal(read_early, early_value)


def test_an_update_record_nobody_keeps_costs_no_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen: list[object] = []
    original = LiveArrays.freeze

    def counted(self: LiveArrays) -> None:
        frozen.append(self)
        original(self)

    monkeypatch.setattr(LiveArrays, "freeze", counted)
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    run = attach(model, nn.CrossEntropyLoss(), opt, pairs(batches=4))
    run.step("batch")
    arrays = run.last_update.arrays  # type: ignore[union-attr]
    live = opt.state[model[0].weight]["exp_avg"]
    np.testing.assert_array_equal(arrays["0.weight.exp_avg"], live.numpy())
    del arrays
    run.step("batch")  # held by the run alone, the last record was dropped, not copied
    assert frozen == []
    kept = run.last_update
    run.step("batch")  # this one is still held here: copied before the optimizer wrote
    assert frozen == [kept.arrays]  # type: ignore[union-attr]


def test_gradients_of_an_earlier_step_stay_as_backward_made_them() -> None:
    model = _model()
    run = attach(model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), 0.1), pairs())
    first = run.step("batch")
    grad = first.arrays["0.weight.grad"].copy()
    np.testing.assert_array_equal(grad, model[0].weight.grad.numpy())
    run.step("batch")
    assert not np.array_equal(model[0].weight.grad.numpy(), grad)
    np.testing.assert_array_equal(first.arrays["0.weight.grad"], grad)


def test_gradients_are_copied_where_clipping_scales_them_in_place() -> None:
    model = _model()
    opt = torch.optim.SGD(model.parameters(), 0.1)
    run = attach(model, nn.CrossEntropyLoss(), opt, pairs(), clip_grad_norm=1e-3)
    record = run.step("batch")
    clipped = model[0].weight.grad.numpy()
    shown = record.arrays["0.weight.grad"]
    assert np.abs(shown).max() > np.abs(clipped).max()  # as backward produced them


def test_norms_measured_where_made_agree_with_a_fresh_measurement() -> None:
    model = nn.Sequential(nn.Linear(6, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU())
    model.append(nn.Linear(128, 3))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    run = attach(model, nn.CrossEntropyLoss(), opt, pairs(batches=4), epochs=2)
    run.step("batch")
    run.step("batch")
    stats = run.watch.stats
    assert stats is not None
    for layer in ("0", "2", "4"):
        grads = [run.grads[n] for n in run.param_names_by_layer[layer]]
        expected = math.sqrt(sum(float(np.square(g.astype(np.float64)).sum()) for g in grads))
        assert math.isclose(stats.grad_norm(layer) or 0.0, expected, rel_tol=1e-5)
        params = [run.params[n] for n in run.param_names_by_layer[layer]]
        weight = math.sqrt(sum(float(np.square(p.astype(np.float64)).sum()) for p in params))
        assert math.isclose(stats.weight_norm(layer) or 0.0, weight, rel_tol=1e-5)
        assert (stats.update_ratio(layer) or 0.0) > 0.0


def test_dead_fraction_counts_channels_of_a_4d_relu_output() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 4, 3)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.copy_(torch.tensor([-1.0, -1.0, 1.0, 1.0]))  # two filters dead
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(4, 1, 6, 6, generator=g), torch.randint(0, 3, (4,), generator=g))]
    run = attach(model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), 0.0), data)
    run.step("batch")
    assert run.watch.stats is not None
    assert run.watch.stats.dead_fraction("1") == 0.5


def test_a_hand_edit_replayed_after_going_back_gives_the_same_numbers() -> None:
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    run = attach(model, nn.CrossEntropyLoss(), opt, pairs(batches=4), epochs=3, keyframe_every=2)
    run.step("batch")
    run.step("batch")
    run.set_weight("0.weight", (1, 2), 0.5)  # between steps 2 and 3
    for _ in range(3):
        run.step("batch")
    first = {k: v.copy() for k, v in run.params.items()}
    change = run.last_update.arrays["0.weight.change"].copy()  # type: ignore[union-attr]
    state = opt.state[model[0].weight]["exp_avg_sq"].clone()
    for _ in range(3):
        assert run.back()
    assert run.step_index == 2 and float(model[0].weight[1, 2].detach()) == 0.5
    run.run_until(max_steps=3)
    for name, value in run.params.items():
        np.testing.assert_array_equal(value, first[name])
    np.testing.assert_array_equal(run.last_update.arrays["0.weight.change"], change)  # type: ignore[union-attr]
    assert torch.equal(opt.state[model[0].weight]["exp_avg_sq"], state)


def test_the_last_step_s_statistics_go_once_the_next_forward_runs() -> None:
    """Kept through the next step they would hold a whole step's tensors; between steps
    they are there for breakpoints and the panes, and a step's own stay readable."""
    import weakref

    model = _model()
    run = attach(model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), 0.1), pairs())
    run.step("batch")
    stats = run.watch.stats
    assert stats is not None and stats.grad_norm("0") is not None
    gone = weakref.ref(stats)
    del stats
    run.step("layer")  # the input phase: the last step's statistics still stand
    assert run.watch.stats is not None
    while run.phase != "forward":
        run.step("layer")
    assert run.watch.stats is None and run.hit_breakpoint() is None
    assert gone() is None  # nothing else held them
    run.step("batch")
    assert run.watch.stats is not None and run.watch.stats.step == 2  # the second step
