"""The panes on a user's own torch model: modules with their types and parameter counts,
(N, C, H, W) outputs as per-channel maps, the chain rule of nn.Linear and nn.Conv2d in
torch's layout checked against backprop, and other modules' grad_fn chains."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from backprop_tui.core import attach  # noqa: E402
from backprop_tui.tui.app import DebuggerApp, make_app  # noqa: E402
from textual.pilot import Pilot  # noqa: E402
from torch import nn  # noqa: E402
from tui_helpers import pane_text  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "attach"))
from attach_models import Residual, SmallCNN, images, pairs  # noqa: E402

SIZE = (160, 50)


def _cnn_app() -> DebuggerApp:
    torch.manual_seed(0)
    model = SmallCNN()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return make_app(attach(model, nn.CrossEntropyLoss(), opt, images()))


def _residual_app() -> DebuggerApp:
    torch.manual_seed(0)
    model = Residual()
    return make_app(
        attach(model, nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters()), pairs())
    )


async def _through_backward(app: DebuggerApp, pilot: Pilot[int]) -> None:
    run = app.session.dbg
    while not (run.phase == "backward" and run.layer_index == 0):
        run.step("layer")
    await pilot.pause()


async def _select(app: DebuggerApp, pilot: Pilot[int], name: str) -> None:
    app.session.select_layer(app.session.dbg.layer_names.index(name))
    app.redraw_all(force=True)
    await pilot.pause()


async def test_the_network_pane_lists_module_types_shapes_and_parameter_counts() -> None:
    app = _cnn_app()
    async with app.run_test(size=SIZE) as pilot:
        await _through_backward(app, pilot)
        app.redraw_all(force=True)
        await pilot.pause()
        lines = pane_text(app, "network").splitlines()
        row = {
            name: next(line for line in lines if f" {name} " in line)
            for name in app.session.dbg.layer_names
        }
        assert "Conv2d 1×8×8→4×6×6  40w" in row["features.0"]  # 4·1·3·3 + 4
        assert "Conv2d 4×3×3→6×1×1  222w" in row["features.3"]  # 6·4·3·3 + 6
        assert "Linear 6→3  21w" in row["out"]  # weight 3×6 and bias 3
        for name in ("features.1", "features.2", "flat"):  # no parameters: 0, and no ‖g‖
            assert "  0w" in row[name] and "‖g‖" not in row[name]
        assert "MaxPool2d 4×6×6→4×3×3" in row["features.2"]
        assert "‖g‖" in row["features.0"] and "‖g‖" in row["out"]


async def test_a_narrow_network_pane_gives_up_input_shapes_before_a_gradient_norm() -> None:
    app = _cnn_app()
    async with app.run_test(size=(110, 40)) as pilot:  # a 42-column network pane
        await _through_backward(app, pilot)
        app.redraw_all(force=True)
        await pilot.pause()
        lines = pane_text(app, "network").splitlines()
        conv = next(line for line in lines if " features.0 " in line)
        assert "Conv2d" in conv and "→4×6×6" in conv
        norm = conv.split("‖g‖")[1].split()[0]  # whole, not cut short
        assert float(norm) > 0, conv
        assert not any(line.rstrip().endswith("…") for line in lines[:8]), lines


async def test_a_4d_output_is_one_heat_map_per_channel_in_torch_layout() -> None:
    app = _cnn_app()
    async with app.run_test(size=SIZE) as pilot:
        await _through_backward(app, pilot)
        await _select(app, pilot, "features.0")  # (N, 4, 6, 6): four channels, not six
        text = pane_text(app, "activations")
        assert "(N,C,H,W)" in text and "4 channels" in text
        await _select(app, pilot, "features.3")  # (N, 6, 1, 1)
        assert "6 channels" in pane_text(app, "activations")


async def test_the_chain_rule_of_a_linear_weight_in_torch_layout_matches_backprop() -> None:
    app = _cnn_app()
    async with app.run_test(size=SIZE) as pilot:
        await _through_backward(app, pilot)
        await _select(app, pilot, "out")
        app.session.cursor = (2, 4)  # row 2 = output 2, column 4 = input 4
        app.redraw_all(force=True)
        await pilot.pause()
        text = pane_text(app, "chain")
        assert "out.weight[2, 4]" in text
        assert "dL/dW[2,4] = Σ_b dL/dz[b,2] · a_prev[b,4]" in text
        assert "(out, in)" in text and "dL/db[2]" in text
        assert "✓ same" in text and "differs" not in text


async def test_the_chain_rule_of_a_conv2d_weight_in_torch_layout_matches_backprop() -> None:
    app = _cnn_app()
    async with app.run_test(size=SIZE) as pilot:
        await _through_backward(app, pilot)
        for name in ("features.0", "features.3"):
            await _select(app, pilot, name)
            text = pane_text(app, "chain")
            assert "(out, in, kh, kw)" in text and "(N, C, H, W)" in text
            assert "Σ_b Σ_(y,x) a_prev[b," in text
            assert "✓ same" in text and "differs" not in text


async def test_other_modules_show_their_grad_fn_chain_with_shapes_and_norms() -> None:
    app = _residual_app()
    async with app.run_test(size=SIZE) as pilot:
        await _through_backward(app, pilot)
        await _select(app, pilot, "norm")
        text = pane_text(app, "chain")
        assert "grad_fn chain" in text and "NativeLayerNormBackward0" in text
        assert "norm.weight 16  ‖dL/dθ‖" in text and "dL/d(output) 8×16  ‖·‖" in text
        assert "(embed's output)" in text
        await _select(app, pilot, "act")
        text = pane_text(app, "chain")
        assert "GeluBackward0" in text and "(fc1's output)" in text


async def test_a_module_s_activations_are_its_output_once_never_a_none_activation() -> None:
    app = _residual_app()
    async with app.run_test(size=(120, 40)) as pilot:
        for name in app.session.dbg.layer_names:
            await _select(app, pilot, name)
            shown = pane_text(app, "activations")
            assert "None" not in shown, (name, shown)
        await _through_backward(app, pilot)
        for name in app.session.dbg.layer_names:
            await _select(app, pilot, name)
            shown = pane_text(app, "activations")
            assert "None" not in shown, (name, shown)
            assert "output" in shown or "(a_prev)" in shown, (name, shown)
            assert "z (" not in shown  # its output is z and a: drawn once
