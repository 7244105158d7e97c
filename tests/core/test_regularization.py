"""Keras' kernel_regularizer and bias_regularizer: read, added to the loss, split in the gradient.

The reference numbers are worked out in this file with plain NumPy, independently
of the engine: forward, binary cross-entropy as Keras reduces it, backprop by
hand, and Keras' penalties λ·Σ|w| and λ·Σw² with their derivatives λ·sign w and
2λw. Keras keeps a regularizer's factor as a float32 tensor, so the factors
here are powers of two (exact in float32), and the reference is float64 like the
engine, so they agree to 1e-9 (in practice to rounding).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backprop_tui.core import Debugger, ScenarioError, load_scenario
from backprop_tui.core.spec.scenario import parse_scenario
from backprop_tui.core.spec.yamlio import load_yaml
from click.testing import CliRunner

X = [[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0], [0.0, -0.5]]
Y = [[1.0], [0.0], [1.0], [0.0]]
KERNEL1 = [[0.25, -0.5, 0.75], [-1.0, 0.5, 0.125]]
BIAS1 = [0.125, -0.25, 0.0]  # one bias exactly 0: l1's sign(0) = 0
KERNEL2 = [[0.5], [-0.75], [1.0]]
BIAS2 = [-0.125]

TEXT = """
name: penalised
seed: 0
data:
  inline:
    x: {x}
    y: {y}
model:
  inputs: 2
  layers:
    - {{name: hidden, units: 3, activation: tanh, kernel: {k1}, bias: {b1}{hidden_extra}}}
    - {{name: output, units: 1, activation: sigmoid, kernel: {k2}, bias: {b2}{output_extra}}}
loss: binary_crossentropy
optimizer: {{name: sgd, learning_rate: 0.5}}
metrics: [accuracy]
training: {{epochs: 20, batch_size: 4, shuffle: false}}
"""

FORMS = {
    "l1": (" {l1: 0.0625}", (0.0625, 0.0)),
    "l2": (" {l2: 0.03125}", (0.0, 0.03125)),
    "l1_l2": (" {l1: 0.0078125, l2: 0.015625}", (0.0078125, 0.015625)),
}


def scenario_text(hidden: str = "", output: str = "") -> str:
    return TEXT.format(
        x=X,
        y=Y,
        k1=KERNEL1,
        b1=BIAS1,
        k2=KERNEL2,
        b2=BIAS2,
        hidden_extra=hidden,
        output_extra=output,
    )


def scenario(hidden: str = "", output: str = "") -> Any:
    return parse_scenario(load_yaml(scenario_text(hidden, output), "penalised.yaml"), Path("."))


def reference(
    penalties: dict[str, tuple[float, float]],
) -> tuple[float, float, dict[str, np.ndarray]]:
    """(Keras' loss = data + penalty, the penalty, each parameter's gradient), by hand."""
    x, y = np.array(X), np.array(Y)
    p = {
        "hidden.kernel": np.array(KERNEL1),
        "hidden.bias": np.array(BIAS1),
        "output.kernel": np.array(KERNEL2),
        "output.bias": np.array(BIAS2),
    }
    h = np.tanh(x @ p["hidden.kernel"] + p["hidden.bias"])
    out = 1.0 / (1.0 + np.exp(-(h @ p["output.kernel"] + p["output.bias"])))
    eps = 1e-7  # Keras' clip of the probabilities; none of these outputs is near it
    q = np.clip(out, eps, 1 - eps)
    data = float(np.mean(-(y * np.log(q) + (1 - y) * np.log(1 - q))))
    n = len(x)
    dz2 = (out - y) / n  # sigmoid with cross-entropy
    grads = {"output.kernel": h.T @ dz2, "output.bias": dz2.sum(axis=0)}
    dz1 = (dz2 @ p["output.kernel"].T) * (1 - h * h)
    grads["hidden.kernel"] = x.T @ dz1
    grads["hidden.bias"] = dz1.sum(axis=0)
    penalty = 0.0
    for name, (l1, l2) in penalties.items():
        w = p[name]
        penalty += l1 * np.abs(w).sum() + l2 * np.square(w).sum()
        grads[name] = grads[name] + l1 * np.sign(w) + 2 * l2 * w
    return data + penalty, penalty, grads


def backends() -> list[str]:
    try:
        import torch  # noqa: F401
    except ImportError:
        return ["numpy"]
    return ["numpy", "torch"]


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("where", ["kernel", "bias", "both"])
def test_loss_and_gradients_equal_keras_definitions(backend: str, form: str, where: str) -> None:
    text, factors = FORMS[form]
    kernel = f", kernel_regularizer:{text}" if where in ("kernel", "both") else ""
    bias = f", bias_regularizer:{text}" if where in ("bias", "both") else ""
    dbg = Debugger(scenario(hidden=kernel + bias, output=kernel), backend=backend)
    dbg.step("batch")
    penalised = {}
    if kernel:
        penalised.update({"hidden.kernel": factors, "output.kernel": factors})
    if bias:
        penalised["hidden.bias"] = factors
    loss, penalty, grads = reference(penalised)
    assert dbg.loss == pytest.approx(loss, abs=1e-12, rel=1e-9)
    assert dbg.penalty == pytest.approx(penalty, abs=1e-12, rel=1e-9)
    for name, expected in grads.items():
        np.testing.assert_allclose(dbg.grads[name], expected, rtol=1e-9, atol=1e-12)
    # The backward record keeps each penalised gradient's penalty part apart.
    for i, layer in enumerate(dbg.layers):
        for name in layer.param_names:
            arrays = dbg.layer_arrays(i)
            if name in penalised:
                l1, l2 = penalised[name]
                w = dict(zip(["hidden.kernel", "hidden.bias"], [KERNEL1, BIAS1], strict=True)).get(
                    name, KERNEL2
                )
                part = l1 * np.sign(w) + 2 * l2 * np.asarray(w)
                np.testing.assert_allclose(arrays[f"{name}.penalty"], part, rtol=1e-12)
            else:
                assert f"{name}.penalty" not in arrays


def test_without_a_regularizer_there_is_no_penalty() -> None:
    dbg = Debugger(scenario())
    dbg.step("batch")
    loss, _, grads = reference({})
    assert dbg.penalty is None
    assert dbg.loss == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(dbg.grads["hidden.kernel"], grads["hidden.kernel"], rtol=1e-12)


def test_the_update_uses_the_whole_gradient() -> None:
    dbg = Debugger(scenario(hidden=", kernel_regularizer: l2"))
    before = np.array(dbg.params["hidden.kernel"])
    dbg.step("batch")
    _, _, grads = reference({"hidden.kernel": (0.0, 0.01)})  # l2 alone: Keras' 0.01
    np.testing.assert_allclose(
        dbg.params["hidden.kernel"], before - 0.5 * grads["hidden.kernel"], rtol=1e-12
    )


@pytest.mark.skipif(len(backends()) < 2, reason="torch is not installed")
def test_numpy_and_torch_agree_over_many_steps() -> None:
    text = ", kernel_regularizer: {l1: 0.001, l2: 0.01}, bias_regularizer: {l2: 0.02}"
    runs = [Debugger(scenario(hidden=text, output=text), backend=b) for b in ("numpy", "torch")]
    for _ in range(15):
        for run in runs:
            run.step("batch")
        assert runs[0].loss == pytest.approx(runs[1].loss, rel=1e-10)
        assert runs[0].penalty == pytest.approx(runs[1].penalty, rel=1e-10)
        for name in runs[0].params:
            np.testing.assert_allclose(runs[0].params[name], runs[1].params[name], rtol=1e-10)


def test_gradient_check_sees_the_penalty() -> None:
    text = ", kernel_regularizer: {l1: 0.25, l2: 0.5}, bias_regularizer: {l2: 0.5}"
    dbg = Debugger(scenario(hidden=text, output=text))
    dbg.step("batch")
    result = dbg.gradient_check()
    assert result.passed, result.table()


def test_validation_loss_holds_the_penalty_as_keras_evaluate() -> None:
    scen = load_scenario("moons")
    plain = Debugger(scen)
    base, _ = plain.evaluate("validation")
    import dataclasses

    from backprop_tui.core.maths.regularizers import Regularizer

    layers = tuple(
        dataclasses.replace(layer, kernel_regularizer=Regularizer(l2=0.5)) for layer in scen.layers
    )
    penalised = Debugger(dataclasses.replace(scen, layers=layers))
    value, _ = penalised.evaluate("validation")
    kernels = [np.asarray(v) for k, v in penalised.params.items() if k.endswith(".kernel")]
    assert value == pytest.approx(base + 0.5 * sum(float((k * k).sum()) for k in kernels))


@pytest.mark.parametrize(
    ("extra", "where", "words"),
    [
        (", kernel_regularizer: l3", "layers[0].kernel_regularizer", "use one of l1, l2"),
        (", kernel_regularizer: {l2: -0.1}", "kernel_regularizer.l2", "at least 0"),
        (", kernel_regularizer: {l4: 0.1}", "kernel_regularizer.l4", "unknown key"),
        (", kernel_regularizer: {}", "kernel_regularizer", "names no factor"),
        (", kernel_regularizer: 0.01", "kernel_regularizer", "{l2: 0.01}"),
        (", kernel_regularizer: {l2: nope}", "kernel_regularizer.l2", "expected a number"),
        (", use_bias: false, bias_regularizer: l2", "bias_regularizer", "use_bias: false"),
        (", kernel_regulariser: l2", "kernel_regulariser", "did you mean 'kernel_regularizer'"),
    ],
)
def test_a_bad_regularizer_is_a_placed_error(extra: str, where: str, words: str) -> None:
    text = scenario_text(hidden=extra)
    if "use_bias" in extra:
        text = text.replace(f", bias: {BIAS1}", "")
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(load_yaml(text, "bad.yaml"), Path("."))
    message = str(caught.value)
    assert where in message and words in message, message
    assert "\n" not in message


def test_the_keras_forms_are_read() -> None:
    layer = scenario(hidden=", kernel_regularizer: l1, bias_regularizer: {l1: 0.5, l2: 0.25}")
    hidden = layer.layers[0]
    assert (hidden.kernel_regularizer.l1, hidden.kernel_regularizer.l2) == (0.01, 0.0)
    assert (hidden.bias_regularizer.l1, hidden.bias_regularizer.l2) == (0.5, 0.25)
    zero = scenario(hidden=", kernel_regularizer: {l2: 0}").layers[0]
    assert zero.kernel_regularizer is None  # a factor of 0 is no penalty, as in Keras


def test_check_run_json_and_a_trace_say_it(tmp_path: Path) -> None:
    from backprop_tui.core import Replay
    from backprop_tui.tui.cli import main

    path = tmp_path / "penalised.yaml"
    path.write_text(scenario_text(hidden=", kernel_regularizer: {l2: 0.03125}"))
    runner = CliRunner()
    checked = runner.invoke(main, ["check", str(path)])
    assert checked.exit_code == 0
    assert "hidden.kernel l2 0.03125" in checked.output
    trace = tmp_path / "t.npz"
    ran = runner.invoke(main, ["run", str(path), "--steps", "1", "--json", "--save", str(trace)])
    assert ran.exit_code == 0, ran.output
    result = json.loads(ran.stdout)
    loss, penalty, _ = reference({"hidden.kernel": (0.0, 0.03125)})
    assert result["loss"] == pytest.approx(loss, rel=1e-12)
    assert result["penalty"] == pytest.approx(penalty, rel=1e-12)
    replay = Replay(str(trace))
    assert replay.scenario.layers[0].kernel_regularizer.l2 == 0.03125
    assert replay.layers[0].penalties["hidden.kernel"] == ("l2 0.03125", "2·0.03125·w")


def test_a_trace_keeps_each_steps_penalty_and_a_replay_shows_it(tmp_path: Path) -> None:
    from backprop_tui.core.traces.recording import TraceRecorder
    from backprop_tui.core.traces.replay import Replay

    dbg = Debugger(load_scenario("overfit"))
    recorder = TraceRecorder(dbg, 8 * 1024 * 1024, tmp_path / "penalty.npz")
    dbg.listeners.append(recorder.observe)
    seen = []
    for _ in range(5):
        dbg.step("batch")
        assert dbg.penalty is not None and dbg.penalty > 0
        seen.append((dbg.loss, dbg.penalty))
    recorder.save()
    replay = Replay(str(tmp_path / "penalty.npz"))
    assert replay.penalty is None  # before the first recorded step
    for loss, penalty in seen:
        replay.step("batch")
        assert (replay.loss, replay.penalty) == (loss, penalty)

    plain = Debugger(load_scenario("xor"))  # no regularizer: nothing kept, nothing shown
    recorder = TraceRecorder(plain, 8 * 1024 * 1024, tmp_path / "plain.npz")
    plain.listeners.append(recorder.observe)
    plain.step("batch")
    recorder.save()
    assert "step/penalty" not in recorder.trace().arrays()
    replay = Replay(str(tmp_path / "plain.npz"))
    replay.step("batch")
    assert replay.penalty is None
