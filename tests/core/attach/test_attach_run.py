"""An attached run read as the panes read it: layers, phases, activations, edits,
breakpoints on module paths, NaN origins, the gradient check and bad inputs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from attach_models import Residual, SmallCNN, TinyGPT, gpt_data, gpt_optimizer, images, pairs
from backprop_tui.core import AttachError, ExpressionError, NotPossible, RunView, attach
from backprop_tui.core.attach.run import AttachedRun
from torch import nn


def _run(model: nn.Module | None = None, **kwargs: Any) -> AttachedRun:
    torch.manual_seed(0)
    model = model or Residual()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return attach(model, nn.CrossEntropyLoss(), opt, pairs(), **kwargs)


def test_it_is_a_run_view_of_kind_attached() -> None:
    run = _run()
    assert isinstance(run, RunView)
    assert run.kind == "attached" and run.can_train and run.can_go_back and run.goes_back_exactly
    assert run.title == "Residual" and run.where == "torch cpu float32"
    assert run.input_shape == (6,) and run.batch_size == 8
    assert run.steps_per_epoch == 4 and run.total_steps == 4
    assert run.metric_names == ("accuracy",)


def test_layers_are_leaf_modules_in_the_order_they_ran() -> None:
    run = _run()
    assert run.layer_names == ["embed", "norm", "fc1", "act", "fc2", "head"]
    kinds = [layer.kind for layer in run.layers]
    assert kinds == ["Linear", "LayerNorm", "Linear", "GELU", "Linear", "Linear"]
    fc1 = run.layers[2]
    # a Linear weight as torch stores it: rows × columns = out × in
    assert (fc1.inputs, fc1.units, fc1.kernel) == (16, 16, "fc1.weight")
    assert fc1.param_names == ("fc1.weight", "fc1.bias")
    assert run.layers[3].kernel is None and run.layers[3].param_names == ()
    head = run.layers[5]
    assert (head.inputs, head.units) == (3, 16)


def test_forward_by_layer_visits_every_module_then_backward_in_reverse() -> None:
    torch.manual_seed(0)
    model = SmallCNN()
    run = attach(model, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters()), images())
    expected = ["features.0", "features.1", "features.2", "features.3", "features.4", "flat", "out"]
    assert run.layer_names == expected
    run.step("phase")  # input
    seen = []
    while True:
        record = run.step("layer")
        if record.phase != "forward":
            break
        seen.append(record.layer_name)
        assert run.layer_arrays(record.layer_index or 0)["a"].shape[0] == 5
    assert seen == expected and record.phase == "loss"
    back = []
    while run.phase != "update":
        record = run.step("layer")
        if record.phase == "backward":
            back.append(record.layer_name)
    assert back == expected[::-1]
    assert set(run.activations) == set(expected)
    assert run.activations["features.0"].shape == (5, 4, 6, 6)
    assert run.layers[0].kernel is None  # a 4-D conv weight has no matrix layout


def test_a_module_called_twice_is_two_layers_and_every_parameter_belongs_to_one() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = nn.Linear(6, 6)
            self.attn = nn.MultiheadAttention(6, 2, batch_first=True)
            self.rnn = nn.LSTM(6, 5, batch_first=True)
            self.out = nn.Linear(5, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.block(self.block(x)).unsqueeze(1)
            h, _ = self.attn(h, h, h)
            h, _ = self.rnn(h)
            return self.out(h[:, -1])

    model = Twice()
    run = attach(model, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters()), pairs())
    assert run.layer_names == ["block", "block#2", "attn", "rnn", "out"]
    owned = {name for layer in run.layers for name in layer.param_names}
    assert owned == {name for name, _ in model.named_parameters()}
    attn = run.layers[2].param_names
    assert "attn.out_proj.weight" in attn and "attn.in_proj_weight" in attn
    run.step("batch")
    assert run.activations["rnn"].shape == (8, 1, 5)  # the first tensor of (out, (h, c))


def test_the_update_table_reads_the_optimizer_state_and_the_measured_change() -> None:
    run = _run()
    assert run.update_arrays("fc1.weight") is None
    before = run.params["fc1.weight"].copy()
    run.step("batch")
    state, arrays = run.update_arrays("fc1.weight") or (None, None)
    assert state == "applied" and arrays is not None
    assert arrays.new is not None
    assert np.array_equal(arrays.value, before)
    assert np.array_equal(arrays.change, arrays.new - before)
    assert np.array_equal(arrays.new, run.params["fc1.weight"])
    assert set(arrays.terms) == {"momentum_buffer", "lr"}
    np.testing.assert_allclose(arrays.change, -0.1 * arrays.terms["momentum_buffer"], atol=1e-7)
    assert run.term_names == ("momentum_buffer", "lr")
    assert "momentum" in run.update_rule or "μ" in run.update_rule


def test_set_weight_between_steps_is_undone_by_back_and_mid_step_restarts_the_step() -> None:
    run = _run(keyframe_every=2)
    run.step("batch")
    old = run.set_weight("fc1.weight", (0, 1), 5.0)
    assert run.params["fc1.weight"][0, 1] == 5.0
    assert run.back()  # undoes the edit first
    assert run.params["fc1.weight"][0, 1] == pytest.approx(old)
    assert run.step_index == 1
    run.step("phase")
    run.step("phase")  # forward done
    before = run.layer_arrays(2)["a"].copy()
    run.set_weight("fc1.weight", (0, 0), 3.0)
    assert run.phase == "forward" and run.params["fc1.weight"][0, 0] == 3.0
    assert not np.array_equal(run.layer_arrays(2)["a"], before)  # recomputed with the edit
    assert "restarted" in run.log[-1].text


def test_breakpoints_and_until_read_module_paths() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    run = attach(model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1), pairs())
    result = run.run_until("grad_norm(0) > 0 and dead_fraction(1) >= 0", max_steps=3)
    assert result.stopped_by == "until" or result.stopped_by.startswith("breakpoint")
    assert result.hit is not None and "grad_norm(0) =" in result.hit.reason
    gpt = TinyGPT()
    run2 = attach(gpt, None, gpt_optimizer(gpt), gpt_data())
    run2.add_breakpoint("grad_norm(mlp.0) > 1e9")
    assert run2.run_until(max_steps=2).stopped_by == "steps"
    with pytest.raises(
        ExpressionError, match=r"'mlp\.9' \(did you mean 'mlp\.2'\?\); layers: wte"
    ) as err:
        run2.parse_expression("grad_norm(mlp.9) > 1")
    assert err.value.column == 10  # the user's own text, columns and all
    with pytest.raises(ExpressionError, match="applies to relu layers; '0' uses linear"):
        run.parse_expression("dead_fraction(0) > 0.5")


class Poison(nn.Module):
    """Passes its input through, putting NaN into sample 2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros_like(x)
        mask[2] = float("nan")
        return x + mask


def test_a_nan_is_traced_to_its_module_phase_and_sample() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), Poison(), nn.Linear(8, 3))
    run = attach(model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1), pairs())
    result = run.run_until(max_steps=3)
    assert result.stopped_by == "nan" and result.steps == 1
    assert result.hit is not None
    assert "forward pass, module 2 (Poison), output, samples 2 of the batch" in result.hit.reason
    assert math.isnan(run.loss or 0.0)


def test_the_gradient_check_passes_and_leaves_the_model_alone() -> None:
    run = _run()
    run.step("batch")
    before = {k: v.copy() for k, v in run.params.items()}
    result = run.gradient_check()
    assert result.passed, "\n".join(result.table())
    assert {p.name for p in result.params} == set(before)
    for name, value in run.params.items():
        assert np.array_equal(value, before[name])
    one = run.gradient_check("fc1")
    assert [p.name for p in one.params] == ["fc1.weight", "fc1.bias"]


def test_the_end_of_training_and_training_on() -> None:
    run = _run(epochs=1)
    assert run.run_until().stopped_by == "end"
    assert run.finished and run.epoch == 1 and run.step_index == 4
    assert run.epoch_history[0].loss > 0
    with pytest.raises(NotPossible, match="training finished"):
        run.step("batch")
    run.extend(1)
    run.step("batch")
    assert run.step_index == 5 and run.epoch_number == 2


def test_clipping_shows_the_gradients_before_it() -> None:
    torch.manual_seed(0)
    model = Residual()
    run = attach(
        model,
        nn.CrossEntropyLoss(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        pairs(),
        clip_grad_norm=1e-3,
    )
    run.step("batch")
    grads = run.grads
    total = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads.values()))
    assert total > 1e-3  # not clipped
    update = run.update_arrays("head.weight")
    assert update is not None
    factor = float(update[1].terms["clip"].flat[0])
    assert factor == pytest.approx(1e-3 / total, rel=1e-4)
    assert run.term_names == ("lr", "clip")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "not a model"}, "must be a torch.nn.Module"),
        ({"model": nn.ReLU()}, "has no parameters"),
        ({"optimizer": "sgd"}, "must be a torch.optim.Optimizer"),
        ({"optimizer": torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=1)}, "not the model's"),
        ({"data": iter(pairs())}, "iterator"),
        ({"data": [torch.zeros(3, 6)]}, "must yield \\(x, y\\) pairs"),
        ({"loss_fn": lambda out, y: out}, "must be a scalar tensor"),
        ({"loss_fn": None, "data": [torch.zeros(3, 6)]}, "must return its loss"),
        ({"epochs": 0}, "epochs must be a positive"),
        ({"scheduler": "other"}, "scheduler does not drive this optimizer"),
    ],
)
def test_bad_inputs_get_one_sentence(kwargs: dict[str, Any], message: str) -> None:
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    args: dict[str, Any] = {
        "model": model,
        "loss_fn": nn.CrossEntropyLoss(),
        "optimizer": torch.optim.SGD(model.parameters(), lr=0.1),
        "data": pairs(),
    }
    if kwargs.get("scheduler") == "other":
        other = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=1)
        kwargs = {"scheduler": torch.optim.lr_scheduler.StepLR(other, 1)}
    args.update(kwargs)
    with pytest.raises(AttachError, match=message) as caught:
        attach(**args)  # refused before any training
    assert "\n" not in str(caught.value)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_compiled_and_scripted_models_are_refused() -> None:
    model = nn.Linear(6, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(AttachError, match="TorchScript"):
        attach(torch.jit.script(model), nn.MSELoss(), opt, pairs())

    class Compiled(nn.Module):  # what torch.compile hands back, without compiling
        def __init__(self) -> None:
            super().__init__()
            self._orig_mod = model

    with pytest.raises(AttachError, match=r"torch\.compile"):
        attach(Compiled(), nn.MSELoss(), opt, pairs())


def test_importing_the_core_imports_no_torch() -> None:
    import subprocess
    import sys

    code = "import sys, backprop_tui.core as c; c.attach; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_pending_update_is_the_one_then_applied() -> None:
    torch.manual_seed(0)
    model = TinyGPT()
    opt = gpt_optimizer(model)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    run = attach(model, None, opt, gpt_data(), scheduler=sched, clip_grad_norm=0.05)
    run.step("batch")
    while run.phase != "backward" or run.layer_index != 0:
        run.step("phase")
    assert run.next_phase == "update"
    found = run.update_arrays("qkv.weight")
    assert found is not None and found[0] == "pending" and found[1].new is None
    pending = found[1]
    assert set(pending.terms) == {"exp_avg", "exp_avg_sq", "lr", "clip"}
    run.step("phase")
    applied = run.update_arrays("qkv.weight")
    assert applied is not None and applied[0] == "applied"
    assert np.array_equal(pending.change, applied[1].change)
    for term in pending.terms:
        assert np.array_equal(pending.terms[term], applied[1].terms[term]), term
    assert float(applied[1].terms["lr"].flat[0]) == 3e-3 * 0.5  # this step's, before the schedule


def test_stepping_by_batch_skips_the_pending_update() -> None:
    run = _run()
    run.step("phase")
    run.step("phase")
    run.step("phase")
    run.step("batch")  # backward and update in one go
    assert run.pending is None and run.update_arrays("fc1.weight") is not None


def test_the_history_keeps_under_its_cap_and_says_how_far_back_it_goes() -> None:
    run = _run(epochs=3, history_mb=0.0005, keyframe_every=2)  # about one keyframe's worth
    run.run_until()
    oldest = run.oldest_reachable_step
    assert oldest is not None and oldest > 0
    while run.back():
        pass
    assert run.step_index == oldest
    roomy = _run(epochs=3, keyframe_every=2)
    roomy.run_until()
    assert roomy.oldest_reachable_step == 0
