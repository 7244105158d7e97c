"""Scenario files with the new layers: the vocabulary, its defaults, and every shape
mistake as one placed error (file:line:col, key path, what would fit) — exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from backprop_tui.core import ScenarioError, load_scenario
from backprop_tui.tui.cli import main
from click.testing import CliRunner

HEAD = """\
name: cnn
data: {generator: glyphs, size: 8, n: 30}
model:
  input_shape: [8, 8, 1]
  layers:
"""
TAIL = """\
    - {type: flatten}
    - {name: out, type: dense, units: 10, activation: softmax}
loss: categorical_crossentropy
"""


def _write(tmp_path: Path, layers: str, head: str = HEAD, tail: str = TAIL) -> Path:
    path = tmp_path / "cnn.yaml"
    path.write_text(head + layers + tail)
    return path


def _error(tmp_path: Path, layers: str, head: str = HEAD, tail: str = TAIL) -> ScenarioError:
    path = _write(tmp_path, layers, head, tail)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return info.value


def test_keras_defaults_and_shapes(tmp_path: Path) -> None:
    s = load_scenario(
        _write(
            tmp_path,
            "    - {type: conv2d, filters: 4, kernel_size: 3, activation: relu}\n"
            "    - {type: max_pooling2d}\n"
            "    - {type: dropout, rate: 0.25}\n"
            "    - {type: batch_normalization}\n",
        )
    )
    conv, pool, drop, norm, flat, out = s.layers
    assert conv.name == "conv2d_1" and conv.strides == (1, 1) and conv.padding == "valid"
    assert conv.output_shape == (6, 6, 4) and conv.param_shapes["conv2d_1.kernel"] == (3, 3, 1, 4)
    assert conv.kernel_initializer.name == "glorot_uniform" and conv.use_bias
    assert pool.kernel_size == (2, 2) and pool.strides == (2, 2) and pool.output_shape == (3, 3, 4)
    assert drop.rate == 0.25 and drop.output_shape == (3, 3, 4)
    assert (norm.momentum, norm.epsilon) == (0.99, 1e-3)
    assert norm.param_names == ("batch_normalization_4.gamma", "batch_normalization_4.beta")
    assert norm.state_names == (
        "batch_normalization_4.moving_mean",
        "batch_normalization_4.moving_variance",
    )
    assert flat.output_shape == (36,) and out.inputs == 36
    assert s.inputs == 64 and s.sample_shape == (8, 8, 1)
    assert s.param_count == 3 * 3 * 4 + 4 + 2 * 4 + 36 * 10 + 10


@pytest.mark.parametrize(
    ("layers", "line", "where", "words"),
    [
        (
            "    - {type: conv2d, filters: 2, kernel_size: 9}\n",
            6,
            "model.layers[0].kernel_size",
            ["9×9 is larger than its input 8×8", "padding: same"],
        ),
        (
            "    - {type: conv2d, filters: 2, kernel_size: 3}\n"
            "    - {type: max_pooling2d, pool_size: 7}\n",
            7,
            "model.layers[1].pool_size",
            ["7×7 is larger than its input 6×6", "conv2d_1"],
        ),
        (
            "    - {type: conv2d, filters: 2, kernel_size: 3}\n    - {type: dense, units: 4}\n",
            7,
            "model.layers[1].type",
            ["dense takes a flat input but gets (6, 6, 2)", "flatten"],
        ),
        (
            "    - {type: conv2d, filters: 2, kernel_size: 2, kernel: [[[[1, 2]]]]}\n",
            6,
            "model.layers[0].kernel",
            ["2 × 2 × 1 × 2", "kernel_h × kernel_w × in_channels × filters", "got 1 × 1 × 1 × 2"],
        ),
        (
            "    - {type: dropout, rate: 1.0}\n",
            6,
            "model.layers[0].rate",
            ["[0, 1)"],
        ),
        (
            "    - {type: conv2d, filters: 2, kernel_size: [3, 3, 3]}\n",
            6,
            "model.layers[0].kernel_size",
            ["pair [height, width]"],
        ),
        (
            "    - {type: conv2d, filters: 2, kernel_size: 3, padding: full}\n",
            6,
            "model.layers[0].padding",
            ["valid, same"],
        ),
        (
            "    - {type: batch_normalization, gamma: [1, 2]}\n",
            6,
            "model.layers[0].gamma",
            ["1 (one per channel)"],
        ),
        (
            "    - {type: max_pooling2d, units: 3}\n",
            6,
            "model.layers[0].units",
            ["unknown key"],
        ),
    ],
)
def test_shape_mistakes_are_placed(
    tmp_path: Path, layers: str, line: int, where: str, words: list[str]
) -> None:
    err = _error(tmp_path, layers)
    text = str(err)
    assert f"cnn.yaml:{line}:" in text and where in text, text
    for word in words:
        assert word in text, text


def test_images_after_flatten_and_a_network_that_ends_in_images(tmp_path: Path) -> None:
    text = str(
        _error(
            tmp_path, "    - {type: flatten}\n    - {type: conv2d, filters: 1, kernel_size: 2}\n"
        )
    )
    assert "model.layers[1].type" in text and "conv2d takes images" in text and "(64,)" in text
    text = str(
        _error(tmp_path, "    - {type: conv2d, filters: 1, kernel_size: 2}\n", tail="loss: mse\n")
    )
    assert "model.layers[0]" in text and "ends in (7, 7, 1)" in text and "flatten" in text


def test_the_input_shape_must_hold_the_data(tmp_path: Path) -> None:
    head = HEAD.replace("[8, 8, 1]", "[8, 4, 1]")
    text = str(_error(tmp_path, "    - {type: conv2d, filters: 1, kernel_size: 2}\n", head=head))
    assert "cnn.yaml:4:" in text and "model.input_shape" in text
    assert "64 input features" in text and "holds 32 numbers a sample" in text


def test_one_of_inputs_and_input_shape(tmp_path: Path) -> None:
    head = HEAD.replace("  input_shape: [8, 8, 1]\n", "  input_shape: [8, 8, 1]\n  inputs: 64\n")
    assert "give exactly one of inputs" in str(_error(tmp_path, "", head=head))
    head = HEAD.replace("[8, 8, 1]", "[8, 8]")
    assert "[height, width, channels]" in str(_error(tmp_path, "", head=head))


def test_the_cli_exits_2_with_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "    - {type: conv2d, filters: 2, kernel_size: 9}\n")
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "model.layers[0].kernel_size" in result.output


def test_expectations_on_conv_weights_and_moving_statistics(tmp_path: Path) -> None:
    from backprop_tui.core import Debugger
    from backprop_tui.core.spec.expect import run_expectations

    layers = (
        "    - {name: conv, type: conv2d, filters: 2, kernel_size: 3, kernel_initializer: ones}\n"
        "    - {name: norm, type: batch_normalization}\n"
    )
    tail = TAIL + (
        "expect:\n"
        "  - {step: 1, phase: forward, param: conv.kernel, index: [2, 1, 0, 1], value: 1.0}\n"
        "  - {step: 1, phase: backward, grad: out.kernel, index: [0, 0], value: '!= 0'}\n"
        "  - {step: 1, param: norm.moving_variance, index: [0], value: '!= 1'}\n"
    )
    results = run_expectations(Debugger(load_scenario(_write(tmp_path, layers, tail=tail))))
    assert [r.passed for r in results] == [True, True, True]
    bad = tail.replace("param: norm.moving_variance", "phase: backward, grad: norm.moving_variance")
    text = str(_error(tmp_path, layers, tail=bad))
    assert "expect[2].grad" in text and "is not trained" in text
