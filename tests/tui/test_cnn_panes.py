"""The panes on a convolutional network: per-channel activations, a conv kernel with the
cursor on one weight, its chain rule summed over the batch and positions ("✓ same"),
batch normalization's moving statistics, and layers without weights."""

from __future__ import annotations

from pathlib import Path

import pytest
from backprop_tui.core import Debugger, load_scenario
from backprop_tui.tui.app import make_app
from tui_helpers import pane_text, screen_text

SIZES = [(120, 40), (80, 24)]

BN = """
name: bn_cnn
data: {generator: glyphs, size: 8, n: 40}
model:
  input_shape: [8, 8, 1]
  layers:
    - {name: conv, type: conv2d, filters: 2, kernel_size: 3, strides: 2, padding: same, activation: relu}
    - {name: flat, type: flatten}
    - {name: drop, type: dropout, rate: 0.5}
    - {name: norm, type: batch_normalization}
    - {name: out, type: dense, units: 10, activation: softmax}
loss: categorical_crossentropy
training: {epochs: 1, batch_size: 8}
"""


@pytest.mark.parametrize("size", SIZES)
async def test_a_conv_weight_s_chain_rule_matches_backprop(size: tuple[int, int]) -> None:
    app = make_app(Debugger(load_scenario("glyphs8_cnn")))
    async with app.run_test(size=size) as pilot:
        await pilot.press("n")  # one whole step: the update is shown
        app.query_one("#gradients").focus()
        await pilot.press("shift+right", "shift+down", "shift+down")
        await pilot.pause()
        param, index = app.session.cursor_param()
        assert param == "conv.kernel" and index == (0, 2, 0, 1)  # row 2 = (i 0, j 2, c 0)
        assert "cursor on conv.kernel[0, 2, 0, 1]" in pane_text(app, "status")
        chain = pane_text(app, "chain")
        assert "✓ same" in chain and "✗" not in chain
        assert "(1152 terms)" in chain  # 32 samples × 36 output positions
        gradients = pane_text(app, "gradients")
        assert "one 3×3 map per filter" in gradients and "f0" in gradients and "f3" in gradients
        if size == (120, 40):
            formula = "dL/dw[0,2,0,1] = Σ_b Σ_(y,x) a_prev[b, y·1+0, x·1+2, 0] · dL/dz[b,y,x,1]"
            assert formula in " ".join(chain.split())  # whole, wrapped where it is too long
            assert "…" not in chain.split("b=0")[0]
            assert "(row = (i·3+j)·1+c)" in pane_text(app, "gradients")
            assert "4 channels" in pane_text(app, "activations")
            assert "conv2d 3×3 → 6×6×4 relu" in pane_text(app, "network")
        await pilot.press("shift+right", "shift+right", *["shift+down"] * 5)
        await pilot.pause()
        assert app.session.cursor_param() == ("conv.kernel", (2, 1, 0, 3))
        assert "✓ same" in pane_text(app, "chain")


async def test_the_bias_row_of_a_conv_kernel() -> None:
    app = make_app(Debugger(load_scenario("glyphs8_cnn")))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        app.query_one("#gradients").focus()
        await pilot.press(*["shift+down"] * 10)
        await pilot.pause()
        assert app.session.cursor_param() == ("conv.bias", (0,))
        chain = pane_text(app, "chain")
        assert "dL/db[0] = Σ_b Σ_(y,x) dL/dz[b,y,x,0]" in chain and "✓ same" in chain


async def test_layers_without_weights_and_batch_normalization(tmp_path: Path) -> None:
    path = tmp_path / "bn.yaml"
    path.write_text(BN)
    app = make_app(Debugger(load_scenario(path)))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        await pilot.press("right_square_bracket")  # flat
        await pilot.pause()
        assert "flat (flatten) has no parameters" in pane_text(app, "gradients")
        assert "put back in the input's" in pane_text(app, "chain")
        await pilot.press("right_square_bracket")  # drop
        await pilot.pause()
        assert "same mask as the" in pane_text(app, "chain").replace("\n", " ")
        await pilot.press("right_square_bracket")  # norm
        await pilot.pause()
        gradients = pane_text(app, "gradients")
        assert "norm.gamma" in gradients and "moving_mean:" in gradients
        assert "moving_variance:" in gradients
        chain = pane_text(app, "chain")
        assert "dL/dγ[0] = Σ x̂[…,0] · dL/dz[…,0]" in chain and "✓ same" in chain
        app.query_one("#gradients").focus()
        await pilot.press("shift+down")  # beta
        await pilot.pause()
        assert app.session.cursor_param() == ("norm.beta", (0,))
        assert "✓ same" in pane_text(app, "chain")
        await pilot.press(
            "left_square_bracket", "left_square_bracket", "left_square_bracket"
        )  # conv, stride 2, same
        await pilot.press("shift+down", "shift+right")
        await pilot.pause()
        chain = pane_text(app, "chain")
        assert "padding counts as 0" in chain and "✓ same" in chain, screen_text(app)


def test_filter_and_channel_labels_never_run_into_each_other() -> None:
    from backprop_tui.tui.channels import _labels

    assert _labels("f", 0, 4, 6, 4) == "f0     f1     f2     f3     "
    assert _labels("c", 0, 15, 2, 16) == "c0–c14"


async def test_zoomed_activations_show_each_channel_s_numbers() -> None:
    dbg = Debugger(load_scenario("glyphs8_cnn"))
    app = make_app(dbg)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        app.query_one("#activations").focus()
        await pilot.press("z")
        await pilot.pause()
        text = pane_text(app, "activations")
        record = dbg.record_of("forward", 0)
        assert record is not None
        first = float(record.arrays["a"][0, 0, 0, 3])
        assert "4 channels" in text and "c3" in text and "input, sample" in text
        assert ("0" if first == 0 else f"{first:+.2f}") in text.split("c3")[1].splitlines()[1]
