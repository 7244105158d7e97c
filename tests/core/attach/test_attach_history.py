"""Keyframes spaced by the time the steps take, and random states shared while they
stand still: going back stays exact either way."""

from __future__ import annotations

import itertools
import random

import numpy as np
import torch
from attach_models import pairs
from backprop_tui.core import attach
from backprop_tui.core.attach.batches import RngState
from backprop_tui.core.attach.travel import (
    MAX_KEYFRAME_EVERY,
    MIN_KEYFRAME_EVERY,
    REPLAY_BUDGET_S,
    Keyframe,
    Keyframes,
)
from torch import nn


def _frame(step: int) -> Keyframe:
    return Keyframe(step, {}, {}, None)


def test_keyframes_stand_apart_until_the_steps_since_took_the_replay_budget() -> None:
    frames = Keyframes(1 << 30)
    assert frames.due(0)
    frames.push(_frame(0))
    frames.spent = 10 * REPLAY_BUDGET_S
    assert not frames.due(MIN_KEYFRAME_EVERY - 1)  # never closer than the minimum
    assert frames.due(MIN_KEYFRAME_EVERY)
    frames.push(_frame(MIN_KEYFRAME_EVERY))
    assert frames.spent == 0.0
    assert not frames.due(3 * MIN_KEYFRAME_EVERY)  # fast steps: not yet
    assert frames.due(MIN_KEYFRAME_EVERY + MAX_KEYFRAME_EVERY)
    fixed = Keyframes(1 << 30, keyframe_every=3)
    assert [s for s in range(10) if fixed.due(s)] == [0, 3, 6, 9]


def test_a_run_spaces_its_keyframes_by_default_and_goes_back_exactly() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    run = attach(model, nn.CrossEntropyLoss(), opt, pairs(batches=4), epochs=10)
    for _ in range(30):
        run.step("batch")
    steps = sorted(run.keyframes.frames)
    assert steps[0] == 0 and all(b - a >= MIN_KEYFRAME_EVERY for a, b in itertools.pairwise(steps))
    params = {k: v.copy() for k, v in run.params.items()}
    assert run.back()
    run.step("batch")
    for name, value in run.params.items():
        np.testing.assert_array_equal(value, params[name], err_msg=name)


def test_random_states_are_shared_while_they_stand_still() -> None:
    first = RngState.capture()
    second = RngState.capture(first)
    assert second.numpy is first.numpy and second.python is first.python
    np.random.rand()
    random.random()
    third = RngState.capture(second)
    assert third.numpy is not second.numpy and third.python is not second.python


def test_a_cached_gaussian_used_up_is_a_new_state() -> None:
    np.random.seed(5)
    np.random.randn()  # draws two, keeps the second: the twister moves
    held = RngState.capture(RngState.capture())
    assert held.numpy[3] == 1
    np.random.randn()  # uses the kept one up: the twister stands still
    spent = RngState.capture(held)
    assert spent.numpy is not held.numpy and spent.numpy[3] == 0
    after_spent = np.random.randn()
    held.restore()
    np.random.randn()
    assert np.random.randn() == after_spent
    spent.restore()
    assert np.random.randn() == after_spent


def test_steps_drawing_from_numpy_and_python_go_back_exactly() -> None:
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))

    def noisy(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # some steps draw from NumPy or Python, some from neither
        scale = np.random.randn() if y[0] % 2 else random.random() if y[1] % 2 else 1.0
        return nn.functional.cross_entropy(out * float(scale), y)

    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    run = attach(model, noisy, opt, pairs(batches=6), epochs=2, keyframe_every=4)
    losses = []
    for _ in range(11):
        run.step("batch")
        losses.append(run.loss)
    params = {k: v.copy() for k, v in run.params.items()}
    for _ in range(5):
        assert run.back()
    again = []
    for _ in range(5):
        run.step("batch")
        again.append(run.loss)
    assert again == losses[6:]
    for name, value in run.params.items():
        np.testing.assert_array_equal(value, params[name], err_msg=name)
