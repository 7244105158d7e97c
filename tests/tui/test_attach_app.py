"""The app on an attached PyTorch model: it opens, steps by phase, layer and batch,
selects modules with and without weights, goes back, checks gradients and quits."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from backprop_tui.core import attach  # noqa: E402
from backprop_tui.tui.app import DebuggerApp, make_app  # noqa: E402
from textual.pilot import Pilot  # noqa: E402
from torch import nn  # noqa: E402
from tui_helpers import pane_text, screen_text  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "attach"))
from attach_models import (  # noqa: E402
    SmallCNN,
    TinyGPT,
    gpt_data,
    gpt_optimizer,
    images,
    pairs,
    warmup_cosine,
)

SMALL = (80, 24)
LARGE = (120, 40)


def _mlp_app() -> DebuggerApp:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    return make_app(
        attach(model, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters()), pairs())
    )


def _cnn_app() -> DebuggerApp:
    torch.manual_seed(0)
    model = SmallCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return make_app(attach(model, nn.CrossEntropyLoss(), opt, images()))


def _gpt_app() -> DebuggerApp:
    """3-D activations, a tied weight, the loss in forward, a schedule and clipping."""
    torch.manual_seed(0)
    model = TinyGPT()
    opt = gpt_optimizer(model)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine())
    run = attach(model, None, opt, gpt_data(), scheduler=sched, clip_grad_norm=1.0)
    return make_app(run)


async def _settle(app: DebuggerApp, pilot: Pilot[int]) -> None:
    deadline = time.monotonic() + 30
    while app.session.running:
        assert time.monotonic() < deadline, "the run did not stop"
        await pilot.pause(0.01)
    await pilot.pause()


@pytest.mark.parametrize("size", [SMALL, LARGE])
@pytest.mark.parametrize("make", [_mlp_app, _cnn_app, _gpt_app], ids=["mlp", "cnn", "gpt"])
async def test_opens_steps_by_phase_layer_and_batch_and_quits(
    make: object, size: tuple[int, int]
) -> None:
    app = make()  # type: ignore[operator]
    run = app.session.dbg
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert run.title in text and run.layer_names[0] in text
        await pilot.press("space")  # input
        await _settle(app, pilot)
        assert run.phase == "input"
        for _ in range(3):
            await pilot.press("l")
            await _settle(app, pilot)
        assert run.phase == "forward" and run.layer_index == 2
        for _ in run.layer_names:
            await pilot.press("left_square_bracket")
        await pilot.pause()
        assert app.session.spec.name == run.layer_names[0]
        await pilot.press("w")  # a Linear opens the dialog; a convolution says it cannot
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert app.is_running
        for name in run.layer_names[1:]:  # every module selectable, with weights or without
            await pilot.press("right_square_bracket")
            await pilot.pause()
            assert app.is_running and app.session.spec.name == name
        await pilot.press("space")  # the rest of the forward pass
        await _settle(app, pilot)
        await pilot.press("n")
        await _settle(app, pilot)
        assert run.step_index == 1 and run.phase == "update"
        await pilot.press("n")
        await _settle(app, pilot)
        assert run.step_index == 2
        await pilot.press("b")
        await _settle(app, pilot)
        assert run.step_index == 1
        text = screen_text(app)
        assert "step 1" in text
        await pilot.press("q")
        await pilot.pause()
    assert not app.is_running


async def test_the_update_pane_shows_the_optimizer_state_after_a_step() -> None:
    app = _cnn_app()
    async with app.run_test(size=LARGE) as pilot:
        await pilot.press("n")
        await _settle(app, pilot)
        for _ in range(6):  # to the Linear layer at the end
            await pilot.press("right_square_bracket")
        await pilot.pause()
        assert app.session.spec.name == "out"
        text = pane_text(app, "updates")
        assert "applied in step 1 · out" in text and "b = μ·b + g" in text
        found = app.session.dbg.update_arrays("out.weight")
        assert found is not None and "momentum_buffer" in found[1].terms


async def test_continue_runs_to_the_end_of_training() -> None:
    app = _mlp_app()
    run = app.session.dbg
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("c")
        await _settle(app, pilot)
        assert run.finished and run.step_index == 4
        assert app.is_running


def test_debug_opens_the_app_on_the_model_and_takes_its_hooks_off_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from backprop_tui.tui import debug

    opened: list[DebuggerApp] = []

    def run(self: DebuggerApp, *args: object, **kwargs: object) -> int:
        opened.append(self)
        return 0

    monkeypatch.setattr(DebuggerApp, "run", run)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    code = debug(model, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1), pairs())
    assert code == 0 and len(opened) == 1
    assert opened[0].session.dbg.kind == "attached"
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
