"""A plain nn.Sequential is driven child by child, without hooks; it must record exactly
what the hooks record, and a step's calls must be freed once the run moves on."""

from __future__ import annotations

import copy
import gc
import weakref

import numpy as np
import torch
from attach_models import Residual, pairs
from backprop_tui.core import attach
from torch import nn


class HookedSequential(nn.Sequential):
    """The same layers, but a forward of its own: the run follows it with hooks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for module in self:
            x = module(x)
        return x


def _mlp(kind: type[nn.Sequential]) -> nn.Sequential:
    torch.manual_seed(3)
    # an in-place ReLU: the driven pass must keep the Linear's output as it was
    return kind(nn.Linear(6, 8), nn.ReLU(inplace=True), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))


def _run(model: nn.Module) -> object:
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    return attach(model, nn.CrossEntropyLoss(), opt, pairs(batches=4), epochs=2)


def test_a_plain_sequential_is_driven_without_hooks() -> None:
    model = _mlp(nn.Sequential)
    run = _run(model)
    assert run._children is not None  # type: ignore[attr-defined]
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    other = _run(_mlp(HookedSequential))
    assert other._children is None  # type: ignore[attr-defined]


def test_driven_records_equal_the_hooks_records_bit_for_bit() -> None:
    driven, hooked = _run(_mlp(nn.Sequential)), _run(_mlp(HookedSequential))
    for size in ("phase", "layer", "layer", "phase", "batch", "layer", "phase", "batch"):
        a, b = driven.step(size), hooked.step(size)  # type: ignore[attr-defined]
        assert (a.phase, a.layer_index) == (b.phase, b.layer_index)
        assert set(a.arrays) == set(b.arrays)
        for key in a.arrays:
            np.testing.assert_array_equal(a.arrays[key], b.arrays[key], err_msg=key)
    for attr in ("params", "grads", "activations"):
        mine, theirs = getattr(driven, attr), getattr(hooked, attr)
        assert mine.keys() == theirs.keys()
        for key in mine:
            np.testing.assert_array_equal(mine[key], theirs[key], err_msg=f"{attr} {key}")
    assert driven.layer_names == hooked.layer_names  # type: ignore[attr-defined]
    assert driven.loss == hooked.loss  # type: ignore[attr-defined]


def test_a_hook_put_on_the_model_later_runs_and_the_layers_get_theirs() -> None:
    model = _mlp(nn.Sequential)
    run = _run(model)
    run.step("batch")  # type: ignore[attr-defined]
    seen: list[int] = []
    model.register_forward_hook(lambda _m, _i, out: seen.append(out.shape[0]))
    run.step("batch")  # type: ignore[attr-defined]
    assert seen == [8]
    assert run._children is None  # type: ignore[attr-defined]
    assert len(run.activations) == 5  # type: ignore[attr-defined]


def test_a_steps_calls_are_freed_once_the_run_moves_on() -> None:
    """The gradient hook sits on the output's autograd node, which the call keeps: a
    strong reference back to the call made a cycle the collector cannot see."""
    for model in (_mlp(nn.Sequential), _mlp(HookedSequential), Residual()):
        run = _run(copy.deepcopy(model))
        run.step("batch")  # type: ignore[attr-defined]
        calls = [c for c in run.state.calls if c is not None]  # type: ignore[attr-defined]
        assert calls and all(c.grad is not None for c in calls)
        refs = [weakref.ref(c) for c in calls]
        del calls
        run.step("batch")  # type: ignore[attr-defined]
        run.step("batch")  # type: ignore[attr-defined]
        gc.collect()
        assert [r() for r in refs] == [None] * len(refs), type(model).__name__


def test_a_child_added_later_runs_as_the_model_would_run_it() -> None:
    model = _mlp(nn.Sequential)
    run = _run(model)
    run.step("batch")  # type: ignore[attr-defined]
    model.append(nn.Softmax(dim=-1))  # the model's own call now ends with it
    record = run.step("phase")  # type: ignore[attr-defined]
    while record.phase != "loss":
        record = run.step("phase")  # type: ignore[attr-defined]
    np.testing.assert_allclose(record.arrays["y_pred"].sum(axis=-1), 1.0, rtol=1e-5)


def _plain_mlp(kind: type[nn.Sequential]) -> nn.Sequential:
    torch.manual_seed(3)
    return kind(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))


def test_nothing_is_copied_where_nothing_can_write_in_place() -> None:
    plain = _run(_plain_mlp(nn.Sequential))
    assert not plain.tracer.keep_copies  # type: ignore[attr-defined]
    in_place = _run(_mlp(nn.Sequential))
    assert in_place.tracer.keep_copies  # type: ignore[attr-defined]
    model = _plain_mlp(nn.Sequential)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    own_loss = attach(model, lambda out, y: nn.functional.cross_entropy(out, y), opt, pairs())
    assert own_loss.tracer.keep_copies  # a loss of the user's own might write into the output
    plain.step("batch")  # type: ignore[attr-defined]
    x = plain.state.entry.batch[0]  # type: ignore[attr-defined]
    assert plain.state.calls[0].a_prev.data_ptr() == x.data_ptr()  # type: ignore[attr-defined]


def test_uncopied_records_equal_the_hooks_records_and_a_later_hook_brings_copies_back() -> None:
    driven, hooked = _run(_plain_mlp(nn.Sequential)), _run(_plain_mlp(HookedSequential))
    for size in ("phase", "layer", "phase", "batch", "layer", "phase", "batch"):
        a, b = driven.step(size), hooked.step(size)  # type: ignore[attr-defined]
        for key in a.arrays:
            np.testing.assert_array_equal(a.arrays[key], b.arrays[key], err_msg=key)
    for name, array in hooked.activations.items():  # type: ignore[attr-defined]
        np.testing.assert_array_equal(driven.activations[name], array)  # type: ignore[attr-defined]
    linear = driven.model[2]  # type: ignore[attr-defined]
    linear.register_forward_hook(lambda _m, _i, out: out.mul_(2.0))
    driven.step("batch")  # type: ignore[attr-defined]
    assert driven.tracer.keep_copies  # type: ignore[attr-defined]
    assert driven._children is not None  # type: ignore[attr-defined]
