"""Debugging changes nothing: after N steps through ``attach`` the parameters, buffers
and optimizer (and scheduler) state are bit for bit those of the plain loop on the CPU."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch
from attach_models import (
    Residual,
    SmallCNN,
    TinyGPT,
    WithDropout,
    gpt_data,
    gpt_optimizer,
    images,
    pairs,
    plain_loop,
    same_state,
    warmup_cosine,
)
from backprop_tui.core import RunView, attach
from torch import nn

Optimizer = Callable[[nn.Module], torch.optim.Optimizer]
SGD_MOMENTUM: Optimizer = lambda m: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)  # noqa: E731
ADAM: Optimizer = lambda m: torch.optim.Adam(m.parameters(), lr=1e-2)  # noqa: E731

# Every granularity, mixed: a step by layers, one by phases, then batches and an epoch.
WALK = ["layer"] * 40 + ["phase"] * 9 + ["batch", "batch", "epoch", "batch"]


def _twins(make: Callable[[], nn.Module], seed: int = 0) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    model = make()
    return model, copy.deepcopy(model)


def _walk(run: RunView, steps: int) -> None:
    """Step ``run`` by mixed granularities until ``steps`` training steps are done."""
    i = 0
    while run.step_index < steps:
        size = WALK[i % len(WALK)]
        if size == "epoch" and run.step_index + run.steps_per_epoch > steps:
            size = "batch"
        run.step(size)  # type: ignore[arg-type]
        i += 1
    while run.phase != "update":
        run.step("phase")


@pytest.mark.parametrize("make_opt", [SGD_MOMENTUM, ADAM], ids=["sgd-momentum", "adam"])
@pytest.mark.parametrize(
    ("make", "data"),
    [(Residual, pairs()), (SmallCNN, images()), (WithDropout, pairs(seed=3))],
    ids=["residual", "cnn", "dropout-batchnorm"],
)
def test_steps_through_attach_equal_the_plain_loop(
    make: Callable[[], nn.Module], data: list[Any], make_opt: Optimizer
) -> None:
    debugged, plain = _twins(make)
    opt_d, opt_p = make_opt(debugged), make_opt(plain)
    loss_fn = nn.CrossEntropyLoss()
    steps = 2 * len(data) + 1
    torch.manual_seed(123)  # the dropout masks draw from here, in both runs
    run = attach(debugged, loss_fn, opt_d, data, epochs=3)
    _walk(run, steps)
    torch.manual_seed(123)
    losses = plain_loop(plain, loss_fn, opt_p, data, steps)
    same_state(debugged, plain, opt_d, opt_p)
    assert [s.loss for s in run.step_history] == losses


def _gpt_pair() -> tuple[Any, ...]:
    debugged, plain = _twins(TinyGPT, seed=7)
    opt_d, opt_p = gpt_optimizer(debugged), gpt_optimizer(plain)
    sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, warmup_cosine())
    sched_p = torch.optim.lr_scheduler.LambdaLR(opt_p, warmup_cosine())
    return debugged, plain, opt_d, opt_p, sched_d, sched_p


def test_a_gpt_with_its_own_loss_tied_weights_groups_schedule_and_clipping() -> None:
    debugged, plain, opt_d, opt_p, sched_d, sched_p = _gpt_pair()
    data = gpt_data()
    torch.manual_seed(9)
    run = attach(debugged, None, opt_d, data, epochs=3, scheduler=sched_d, clip_grad_norm=0.05)
    _walk(run, 6)
    torch.manual_seed(9)
    losses = plain_loop(plain, None, opt_p, data, 6, scheduler=sched_p, clip=0.05)
    same_state(debugged, plain, opt_d, opt_p)
    assert sched_d.state_dict() == sched_p.state_dict()
    assert [s.loss for s in run.step_history] == losses
    # the clipping really clipped, and the table shows the factor and this step's lr
    update = run.update_arrays("wte.weight")
    assert update is not None and update[0] == "applied"
    terms = update[1].terms
    assert float(terms["clip"].flat[0]) < 1.0
    assert "exp_avg" in terms and "lr" in terms
    # the tied weight is one parameter, listed under both modules
    names = {layer.name: layer.param_names for layer in run.layers}
    assert "wte.weight" in names["wte"] and "wte.weight" in names["lm_head"]
    assert list(run.params).count("wte.weight") == 1


def test_the_gpt_equals_the_plain_loop_after_going_back_too() -> None:
    debugged, plain, opt_d, opt_p, sched_d, sched_p = _gpt_pair()
    data = gpt_data()
    torch.manual_seed(9)
    run = attach(
        debugged,
        None,
        opt_d,
        data,
        epochs=3,
        scheduler=sched_d,
        clip_grad_norm=0.05,
        keyframe_every=3,
    )
    _walk(run, 7)
    for _ in range(4):
        assert run.back()
    run.step("layer")
    run.step("phase")
    assert run.back()  # mid-step: to the start of this step
    assert run.step_index == 3
    _walk(run, 8)
    torch.manual_seed(9)
    plain_loop(plain, None, opt_p, data, 8, scheduler=sched_p, clip=0.05)
    same_state(debugged, plain, opt_d, opt_p)
    assert sched_d.state_dict() == sched_p.state_dict()


class DictOut:
    def __init__(self, loss: torch.Tensor, logits: torch.Tensor) -> None:
        self.loss, self.logits = loss, logits


class HFStyle(nn.Module):
    """Takes keyword batches and returns an object with ``.loss``, as Hugging Face models do."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(6, 3)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor) -> DictOut:
        logits = self.body(input_ids)
        return DictOut(nn.functional.cross_entropy(logits, labels), logits)


def test_dict_batches_and_a_loss_attribute() -> None:
    debugged, plain = _twins(HFStyle)
    opt_d, opt_p = ADAM(debugged), ADAM(plain)
    data = [{"input_ids": x, "labels": y} for x, y in pairs()]
    run = attach(debugged, None, opt_d, data, epochs=2)
    _walk(run, 5)
    losses = plain_loop(plain, None, opt_p, data, 5)
    same_state(debugged, plain, opt_d, opt_p)
    assert [s.loss for s in run.step_history] == losses


def test_going_back_and_forward_again_is_bit_identical() -> None:
    torch.manual_seed(0)
    model = WithDropout()
    opt = ADAM(model)
    run = attach(model, nn.CrossEntropyLoss(), opt, pairs(seed=4), epochs=3, keyframe_every=4)
    _walk(run, 6)
    before = {k: v.copy() for k, v in run.params.items()}
    records = [s.loss for s in run.step_history]
    assert run.back() and run.back() and run.back()
    assert run.step_index == 3
    _walk(run, 6)
    assert [s.loss for s in run.step_history] == records
    for name, value in run.params.items():
        assert (value == before[name]).all(), name
