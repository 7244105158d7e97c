"""Two steps of every optimizer against Keras 3's update rule, written out here.

Also: ``update`` computes changes without touching its inputs, and ``apply`` is
the only thing that makes new parameters.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backprop_tui.core import Debugger, load_scenario
from backprop_tui.core.maths import optimizers
from backprop_tui.core.spec.scenario import OptimizerSpec

W0 = {"dense.kernel": np.array([[0.5, -1.25], [2.0, 0.125]]), "dense.bias": np.array([0.1, -0.3])}
GRADS = [
    {"dense.kernel": np.array([[0.2, -0.4], [1.5, 0.0]]), "dense.bias": np.array([-0.05, 0.3])},
    {"dense.kernel": np.array([[-0.1, -0.6], [0.9, 0.02]]), "dense.bias": np.array([0.07, 0.3])},
]


def _spec(name: str, **options: float | bool) -> OptimizerSpec:
    # Keras 3's defaults, written out so a changed default in the engine shows up here
    defaults: dict[str, dict[str, float | bool]] = {
        "sgd": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
        "adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
        "rmsprop": {
            "learning_rate": 0.001,
            "rho": 0.9,
            "momentum": 0.0,
            "epsilon": 1e-7,
            "centered": False,
        },
    }
    return OptimizerSpec(name, {**defaults[name], **options})


def _two_steps(spec: OptimizerSpec) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(updates, params after) for each of two steps from W0 with GRADS."""
    params = dict(W0)
    state = optimizers.init(spec, params, np)
    out = []
    for grads in GRADS:
        updates, state = optimizers.update(spec, state, grads, np)
        params = optimizers.apply(params, updates)
        out.append((updates, params))
    assert state.step == 2
    return out


def _close(actual: Any, expected: Any) -> None:
    np.testing.assert_allclose(actual, expected, rtol=1e-13, atol=1e-16)


def test_sgd() -> None:
    lr = 0.3
    steps = _two_steps(_spec("sgd", learning_rate=lr))
    for name in W0:
        w1 = W0[name] - lr * GRADS[0][name]
        w2 = w1 - lr * GRADS[1][name]
        _close(steps[0][1][name], w1)
        _close(steps[1][1][name], w2)
        _close(steps[1][0][name].terms["lr·g"], lr * GRADS[1][name])
        _close(steps[1][0][name].change, -lr * GRADS[1][name])


def test_sgd_momentum() -> None:
    lr, mu = 0.1, 0.9
    steps = _two_steps(_spec("sgd", learning_rate=lr, momentum=mu))
    for name in W0:
        v1 = mu * 0.0 - lr * GRADS[0][name]
        w1 = W0[name] + v1
        v2 = mu * v1 - lr * GRADS[1][name]
        w2 = w1 + v2
        _close(steps[0][1][name], w1)
        _close(steps[1][1][name], w2)
        _close(steps[1][0][name].terms["velocity"], v2)


def test_sgd_nesterov() -> None:
    lr, mu = 0.1, 0.8
    steps = _two_steps(_spec("sgd", learning_rate=lr, momentum=mu, nesterov=True))
    for name in W0:
        g1, g2 = GRADS[0][name], GRADS[1][name]
        v1 = -lr * g1
        w1 = W0[name] + mu * v1 - lr * g1
        v2 = mu * v1 - lr * g2
        w2 = w1 + mu * v2 - lr * g2
        _close(steps[0][1][name], w1)
        _close(steps[1][1][name], w2)
        _close(steps[1][0][name].terms["velocity"], v2)


@pytest.mark.parametrize("options", [{}, {"learning_rate": 0.05, "beta_1": 0.5, "beta_2": 0.7}])
def test_adam(options: dict[str, float]) -> None:
    spec = _spec("adam", **options)
    lr = float(spec.options["learning_rate"])
    b1, b2, eps = (float(spec.options[k]) for k in ("beta_1", "beta_2", "epsilon"))
    steps = _two_steps(spec)
    for name in W0:
        w, m, v = W0[name], 0.0 * W0[name], 0.0 * W0[name]
        for t, grads in enumerate(GRADS, start=1):
            g = grads[name]
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g**2
            # Keras folds the bias corrections into the step size, ε outside the root
            alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
            w = w - alpha * m / (np.sqrt(v) + eps)
            updates, params = steps[t - 1]
            _close(params[name], w)
            terms = updates[name].terms
            assert list(terms) == list(optimizers.term_names(spec)) == ["m", "v", "m̂", "v̂"]
            _close(terms["m"], m)
            _close(terms["v"], v)
            _close(terms["m̂"], m / (1 - b1**t))
            _close(terms["v̂"], v / (1 - b2**t))


def test_adam_first_step_moves_each_weight_by_about_the_learning_rate() -> None:
    # With m̂ = g and v̂ = g² on step one, every change is −lr·g/(|g| + ε̂): about −lr·sign(g).
    # Keras adds ε to √v, not to √v̂, so the ε that acts on the corrected terms is ε/√(1 − β₂).
    (updates, _), _ = _two_steps(_spec("adam", learning_rate=0.01))
    change = updates["dense.kernel"].change
    g = GRADS[0]["dense.kernel"]
    eps_hat = 1e-7 / math.sqrt(1 - 0.999)
    _close(change, -0.01 * g / (np.abs(g) + eps_hat))
    assert np.all(np.abs(change[g != 0]) == pytest.approx(0.01, rel=1e-4))
    assert np.all(change[g == 0] == 0.0)


@pytest.mark.parametrize(
    "options",
    [
        {"learning_rate": 0.01},
        {"learning_rate": 0.01, "rho": 0.8, "centered": True},
        {"learning_rate": 0.01, "momentum": 0.5},
        {"learning_rate": 0.01, "rho": 0.7, "momentum": 0.9, "centered": True, "epsilon": 1e-3},
    ],
)
def test_rmsprop(options: dict[str, Any]) -> None:
    spec = _spec("rmsprop", **options)
    o = spec.options
    lr, rho, eps, mu = (float(o[k]) for k in ("learning_rate", "rho", "epsilon", "momentum"))
    steps = _two_steps(spec)
    for name in W0:
        w = W0[name]
        ms = mg = vel = 0.0 * w
        for t, grads in enumerate(GRADS, start=1):
            g = grads[name]
            ms = rho * ms + (1 - rho) * g**2
            if o["centered"]:
                mg = rho * mg + (1 - rho) * g
                increment = lr * g / np.sqrt(ms - mg**2 + eps)
            else:
                increment = lr * g / np.sqrt(ms + eps)
            if mu > 0:
                vel = mu * vel + increment
                w = w - vel
            else:
                w = w - increment
            updates, params = steps[t - 1]
            _close(params[name], w)
            terms = updates[name].terms
            _close(terms["mean_square"], ms)
            assert ("mean_grad" in terms) == bool(o["centered"])
            assert ("velocity" in terms) == (mu > 0)
            if o["centered"]:
                _close(terms["mean_grad"], mg)
            if mu > 0:
                _close(terms["velocity"], vel)


def _frozen(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, value in arrays.items():
        copy = value.copy()
        copy.setflags(write=False)  # an in-place write now raises
        out[name] = copy
    return out


@pytest.mark.parametrize(
    "spec",
    [
        _spec("sgd", learning_rate=0.1),
        _spec("sgd", learning_rate=0.1, momentum=0.9, nesterov=True),
        _spec("adam"),
        _spec("rmsprop", momentum=0.5, centered=True),
    ],
    ids=["sgd", "nesterov", "adam", "rmsprop"],
)
def test_update_mutates_nothing_and_apply_is_separate(spec: OptimizerSpec) -> None:
    params = _frozen(W0)
    state = optimizers.init(spec, params, np)
    updates, state = optimizers.update(spec, state, _frozen(GRADS[0]), np)
    # a second step from a state whose slots are read-only
    state = optimizers.OptState(state.step, {p: _frozen(slots) for p, slots in state.slots.items()})
    before_slots = {p: {k: v.copy() for k, v in s.items()} for p, s in state.slots.items()}
    grads = _frozen(GRADS[1])
    updates, new_state = optimizers.update(spec, state, grads, np)
    assert new_state is not state and new_state.step == state.step + 1
    for p, slots in state.slots.items():
        for k, v in slots.items():
            np.testing.assert_array_equal(v, before_slots[p][k])
    # nothing has moved yet: the change is known before it is applied
    for name in W0:
        np.testing.assert_array_equal(params[name], W0[name])
        assert np.any(updates[name].change != 0)
    applied = optimizers.apply(params, updates)
    for name in W0:
        np.testing.assert_array_equal(params[name], W0[name])
        assert applied[name] is not params[name]
        _close(applied[name], W0[name] + updates[name].change)
        np.testing.assert_array_equal(grads[name], GRADS[1][name])


def test_float32_stays_float32() -> None:
    params = {k: v.astype(np.float32) for k, v in W0.items()}
    grads = {k: v.astype(np.float32) for k, v in GRADS[0].items()}
    for spec in (_spec("sgd", momentum=0.9), _spec("adam"), _spec("rmsprop", centered=True)):
        state = optimizers.init(spec, params, np)
        updates, _ = optimizers.update(spec, state, grads, np)
        new = optimizers.apply(params, updates)
        for name in params:
            assert updates[name].change.dtype == np.float32, spec.name
            assert new[name].dtype == np.float32, spec.name


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("sgd", {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False}),
        ("adam", {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}),
        ("{name: rmsprop}", {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0, "epsilon": 1e-7}),
        ("{name: adam, beta_2: 0.99}", {"learning_rate": 0.001, "beta_2": 0.99}),
    ],
)
def test_scenario_defaults_are_keras_defaults(
    tmp_path: Path, written: str, expected: dict[str, Any]
) -> None:
    path = tmp_path / "opt.yaml"
    path.write_text(
        "data: {generator: xor}\nloss: mse\n"
        "model: {inputs: 2, layers: [{units: 1, activation: sigmoid}]}\n"
        f"optimizer: {written}\n"
    )
    options = load_scenario(path).optimizer.options
    for key, value in expected.items():
        assert options[key] == value, key


def test_debugger_applies_adam_to_its_own_gradients(tmp_path: Path) -> None:
    """Two training steps: each new weight is Keras' Adam rule applied to dbg.grads."""
    path = tmp_path / "adam.yaml"
    path.write_text(
        "seed: 4\ndata: {generator: xor}\nloss: binary_crossentropy\n"
        "model: {inputs: 2, layers: [{name: h, units: 3, activation: tanh},"
        " {name: o, units: 1, activation: sigmoid}]}\n"
        "optimizer: {name: adam, learning_rate: 0.02}\n"
        "training: {batch_size: 2, shuffle: true}\n"
    )
    dbg = Debugger(load_scenario(path))
    lr, b1, b2, eps = 0.02, 0.9, 0.999, 1e-7
    w = dbg.params
    m = {k: np.zeros_like(v) for k, v in w.items()}
    v = {k: np.zeros_like(x) for k, x in w.items()}
    for t in (1, 2):
        dbg.step("batch")
        for name, g in dbg.grads.items():
            m[name] = b1 * m[name] + (1 - b1) * g
            v[name] = b2 * v[name] + (1 - b2) * g * g
            alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
            expected = w[name] - alpha * m[name] / (np.sqrt(v[name]) + eps)
            _close(dbg.params[name], expected)
        w = dbg.params
