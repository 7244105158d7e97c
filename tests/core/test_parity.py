"""The torch backend gives the NumPy reference's numbers, piece by piece.

Both backends step the same scenario one layer at a time and every record —
the batch, z, a, a_prev, the loss and its dL/da, dL/da and dL/dz of each layer,
each gradient, each update with the optimizer's terms and the new weights — is
compared, then the weights after the last step and the epoch summaries.

Error is measured per tensor, relative to its largest entry:
``max|torch − numpy| / max(|numpy|, |torch|)``. Element-wise relative error
would call rounding noise in an entry that cancels to near zero a failure.
Limits, from the issue: 1e-10 in float64 after several steps, 1e-4 in float32
after one step.

One exception in float32: an update's change (and a velocity, which is a
change in waiting) is measured against the weight it is added to. Adam and
RMSprop divide by √v, so for a gradient near zero the change swings with
float32 rounding of the gradient itself (d change / d g ≈ lr / ε): on the
glyphs network NumPy's own float32 change is 8e-5 off its float64 value. What
the user sees, the new weight, is still within 1e-4 and is compared as is.

The cases are plain functions so ``bench/gpu_check.py`` can run them on cuda.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from backprop_tui.core import Debugger, Scenario, load_scenario
from backprop_tui.core.maths.activations import ACTIVATIONS
from backprop_tui.core.maths.losses import NAMES as LOSSES
from backprop_tui.core.spec.scenario import bundled_dir, parse_scenario
from backprop_tui.core.spec.yamlio import load_yaml
from numpy.typing import NDArray

pytest.importorskip("torch", reason="the torch backend needs PyTorch: pip install 'torch==2.13.0'")

LIMIT = {"float64": 1e-10, "float32": 1e-4}
STEPS = {"float64": 3, "float32": 1}

HIDDEN_ACTIVATIONS = tuple(name for name in ACTIVATIONS if name != "softmax")
# Every loss with an output activation it accepts; the element-wise losses also
# take each of the other activations in turn (see generated_cases).
OUTPUTS = (
    ("mean_squared_error", "linear"),
    ("mean_absolute_error", "tanh"),
    ("binary_crossentropy", "sigmoid"),
    ("categorical_crossentropy", "softmax"),
    ("sparse_categorical_crossentropy", "softmax"),
)
OPTIMIZERS: tuple[dict[str, Any], ...] = (
    {"name": "sgd", "learning_rate": 0.1},
    {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
    {"name": "sgd", "learning_rate": 0.05, "momentum": 0.8, "nesterov": True},
    {"name": "adam", "learning_rate": 0.01},
    {"name": "rmsprop", "learning_rate": 0.01},
    {"name": "rmsprop", "learning_rate": 0.01, "momentum": 0.5, "centered": True},
)
INPUTS, SAMPLES = 3, 14


@dataclass(frozen=True)
class Case:
    """One generated network: its hidden activations, output, optimizer and batch size."""

    hidden: tuple[str, ...]  # one activation per hidden layer; depth = len(hidden) + 1
    loss: str
    output: str
    optimizer: int  # index into OPTIMIZERS
    batch_size: int
    no_bias_layer: int | None = None  # one layer without a bias, to cover that path
    validation: bool = False

    @property
    def depth(self) -> int:
        return len(self.hidden) + 1

    @property
    def id(self) -> str:
        opt = OPTIMIZERS[self.optimizer]
        opt_name = opt["name"] + ("-nesterov" if opt.get("nesterov") else "")
        opt_name += "-momentum" if opt.get("momentum") and not opt.get("nesterov") else ""
        opt_name += "-centered" if opt.get("centered") else ""
        hidden = "-".join(self.hidden) or "none"
        return f"d{self.depth}-{hidden}-{self.output}-{self.loss}-{opt_name}-b{self.batch_size}"


def generated_cases() -> list[Case]:
    """Depths 1–5, every activation, every loss, every optimizer, batches of 1 and 7.

    Each hidden activation meets each optimizer once, at a depth and with a
    loss that change from case to case; then every activation is tried as the
    output of a one-layer network under each element-wise loss.
    """
    cases: list[Case] = []
    pairs = itertools.product(range(len(HIDDEN_ACTIVATIONS)), range(len(OPTIMIZERS)))
    for k, (h, opt) in enumerate(pairs):
        depth = 2 + k % 4
        hidden = tuple(
            HIDDEN_ACTIVATIONS[(h + j) % len(HIDDEN_ACTIVATIONS)] for j in range(depth - 1)
        )
        loss, output = OUTPUTS[k % len(OUTPUTS)]
        cases.append(
            Case(
                hidden,
                loss,
                output,
                opt,
                batch_size=(1, 7)[k % 2],
                no_bias_layer=k % depth if k % 3 == 0 else None,
                validation=k % 5 == 0,
            )
        )
    elementwise = ("mean_squared_error", "mean_absolute_error")
    for k, output in enumerate(HIDDEN_ACTIVATIONS):
        for j, loss in enumerate(elementwise):
            cases.append(Case((), loss, output, (k + j) % len(OPTIMIZERS), (1, 7)[(k + j) % 2]))
    for j, (loss, output) in enumerate(OUTPUTS[2:]):
        cases.append(Case((), loss, output, j, (7, 1)[j % 2], validation=True))
    return cases


CASES = generated_cases()


def _targets(case: Case, units: int, rng: np.random.Generator) -> list[Any]:
    if case.loss == "sparse_categorical_crossentropy":
        return [int(c) for c in rng.integers(0, units, SAMPLES)]
    if case.loss == "categorical_crossentropy":
        ids = rng.integers(0, units, SAMPLES)
        return np.eye(units)[ids].tolist()
    if case.loss == "binary_crossentropy":
        return rng.integers(0, 2, (SAMPLES, units)).astype(float).tolist()
    return rng.normal(size=(SAMPLES, units)).tolist()


def case_scenario(case: Case, seed: int = 0) -> Scenario:
    """The scenario of a generated case, with small random data drawn from ``seed``."""
    rng = np.random.default_rng([seed, case.depth, case.batch_size, case.optimizer])
    widths = [4 + (j % 2) for j in range(len(case.hidden))]
    units = 3 if case.output == "softmax" else 2
    layers: list[dict[str, Any]] = [
        {"units": w, "activation": act} for w, act in zip(widths, case.hidden, strict=True)
    ]
    layers.append({"units": units, "activation": case.output})
    if case.no_bias_layer is not None:
        layers[case.no_bias_layer]["use_bias"] = False
    data: dict[str, Any] = {
        "inline": {
            "x": rng.normal(size=(SAMPLES, INPUTS)).tolist(),
            "y": _targets(case, units, rng),
        }
    }
    if case.validation:
        data["validation_split"] = 0.2
    doc = {
        "name": case.id,
        "seed": seed,
        "data": data,
        "model": {"inputs": INPUTS, "layers": layers},
        "loss": case.loss,
        "optimizer": OPTIMIZERS[case.optimizer],
        "metrics": ["accuracy"],
        "training": {"epochs": 5, "batch_size": case.batch_size, "shuffle": True},
    }
    text = yaml.safe_dump(doc, sort_keys=False)
    return parse_scenario(load_yaml(text, f"{case.id}.yaml"), Path.cwd())


@functools.cache
def bundled_scenario(name: str) -> Scenario:
    return load_scenario(name)


BUNDLED = sorted(path.stem for path in bundled_dir().glob("*.yaml"))


def relative_error(ref: Any, got: Any, floor: float = 0.0) -> float:
    """max|got − ref| over the larger of the two tensors' largest entries (0 when both are 0).

    ``floor``, when larger, replaces that scale: the size of what the tensor is added to.
    NaN and ±Inf must sit in the same places (which of them does not matter:
    once a value has overflowed, inf − inf becomes NaN in one order of
    operations and not another); the finite entries are compared.
    """
    ref_a: NDArray[np.float64] = np.asarray(ref, dtype=np.float64)
    got_a: NDArray[np.float64] = np.asarray(got, dtype=np.float64)
    if ref_a.shape != got_a.shape:
        return float("inf")
    finite = np.isfinite(ref_a)
    if not np.array_equal(finite, np.isfinite(got_a)):
        return float("inf")
    ref_a, got_a = ref_a[finite], got_a[finite]
    if ref_a.size == 0:
        return 0.0
    scale = max(float(np.abs(ref_a).max(initial=0.0)), float(np.abs(got_a).max(initial=0.0)), floor)
    if scale == 0.0:
        return 0.0
    return float(np.abs(got_a - ref_a).max() / scale)


@dataclass(frozen=True)
class Worst:
    """The largest relative error of a comparison, where it was, and how much was compared."""

    error: float
    where: str
    compared: int
    diverged_at: str | None = None  # the record where the reference first held NaN or Inf


def _floor(arrays: Any, key: str, dtype: str) -> float:
    """In float32, a change is judged against the weight it changes (see the module's notes)."""
    param, _, term = key.rpartition(".")
    if dtype != "float32" or term not in ("change", "velocity") or param not in arrays:
        return 0.0
    return float(np.abs(arrays[param]).max(initial=0.0))


def _all_finite(value: Any) -> bool:
    return bool(np.isfinite(np.asarray(value, dtype=np.float64)).all())


def compare_runs(scenario: Scenario, dtype: str, steps: int, device: str = "cpu") -> Worst:
    """Step NumPy and torch through ``steps`` training steps by layer; compare everything.

    A run that overflows is compared up to and including the first record in
    which the reference holds a NaN or Inf (torch must hold them in the same
    places there), and no further: past that point both carry garbage, and
    NaN-or-not depends on the order of operations (NumPy's relu'(z)·dL/da is
    0·inf = NaN where torch's relu backward gives 0).
    """
    ref = Debugger(scenario, backend="numpy", dtype=dtype)
    got = Debugger(scenario, backend="torch", dtype=dtype, device=device)
    error, where, count = 0.0, "nothing compared", 0

    def see(place: str, a: Any, b: Any, floor: float = 0.0) -> None:
        nonlocal error, where, count
        count += 1
        e = relative_error(a, b, floor)
        if e > error or count == 1:
            error, where = e, place

    while got.step_index < steps:
        r, g = ref.step("layer"), got.step("layer")
        place = f"step {r.step_index + 1} {r.phase} {r.layer_name or ''}".rstrip()
        if (g.phase, g.layer_name) != (r.phase, r.layer_name):
            return Worst(float("inf"), f"{place}: torch is at {g.phase} {g.layer_name}", count)
        if set(g.arrays) != set(r.arrays):
            return Worst(float("inf"), f"{place}: torch recorded {sorted(g.arrays)}", count)
        for key in r.arrays:
            see(f"{place}: {key}", r.arrays[key], g.arrays[key], _floor(r.arrays, key, dtype))
        if r.loss is not None:
            see(f"{place}: loss", r.loss, g.loss)
        for key, value in r.metrics.items():
            see(f"{place}: {key}", value, g.metrics.get(key, float("nan")))
        if r.loss is not None and not _all_finite(r.loss):
            return Worst(error, where, count, place)
        if not all(_all_finite(v) for v in r.arrays.values()):
            return Worst(error, where, count, place)
    for name, value in ref.params.items():
        see(f"after {steps} steps: {name}", value, got.params[name])
    for name, value in ref.grads.items():
        see(f"after {steps} steps: gradient {name}", value, got.grads[name])
    if len(ref.epoch_history) != len(got.epoch_history):
        return Worst(float("inf"), "the runs finished different numbers of epochs", count)
    for r_epoch, g_epoch in zip(ref.epoch_history, got.epoch_history, strict=True):
        r_stats, g_stats = r_epoch.as_dict(), g_epoch.as_dict()
        for key, value in r_stats.items():
            see(f"epoch {r_epoch.epoch + 1}: {key}", value, g_stats.get(key, float("nan")))
    return Worst(error, where, count)


def _check(scenario: Scenario, dtype: str) -> None:
    worst = compare_runs(scenario, dtype, STEPS[dtype])
    assert worst.compared > 10, "the comparison saw almost nothing"
    assert worst.error <= LIMIT[dtype], (
        f"{scenario.name} in {dtype}: relative error {worst.error:.3g} at {worst.where}"
    )


@pytest.mark.parametrize("name", BUNDLED)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bundled_scenario(name: str, dtype: str) -> None:
    _check(bundled_scenario(name), dtype)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_generated_network(case: Case, dtype: str) -> None:
    _check(case_scenario(case), dtype)


OVERFLOW_LAYER = (
    "{units: 24, activation: relu, kernel_initializer: {name: random_normal, stddev: 3.0}}"
)
OVERFLOW = f"""
name: overflow
seed: 1
data: {{generator: sine, n: 40}}
model:
  inputs: 1
  layers: [{", ".join([OVERFLOW_LAYER] * 6)}, {{units: 1, activation: linear}}]
loss: mse
optimizer: {{name: sgd, learning_rate: 0.01}}
training: {{epochs: 10, batch_size: 20}}
"""


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid:RuntimeWarning")
def test_an_overflowing_run_overflows_in_the_same_place(dtype: str) -> None:
    # Weights three times too large in six relu layers: z overflows within a few
    # steps. Both backends agree up to that record and hold Inf in the same places.
    scenario = parse_scenario(load_yaml(OVERFLOW, "overflow.yaml"), Path.cwd())
    worst = compare_runs(scenario, dtype, steps=10)
    assert worst.diverged_at is not None and "forward" in worst.diverged_at
    assert worst.error <= LIMIT[dtype], f"{worst.error:.3g} at {worst.where}"


def test_the_cases_cover_what_the_issue_asks() -> None:
    assert {case.depth for case in CASES} == {1, 2, 3, 4, 5}
    used = {act for case in CASES for act in (*case.hidden, case.output)}
    assert used == set(ACTIVATIONS)
    assert {case.loss for case in CASES} == set(LOSSES)
    assert {case.optimizer for case in CASES} == set(range(len(OPTIMIZERS)))
    assert {case.batch_size for case in CASES} == {1, 7}
    assert len(BUNDLED) >= 1 and "xor" in BUNDLED


def test_the_comparison_catches_a_wrong_number() -> None:
    # The yardstick itself: a single entry off by 1e-9 of the scale fails float64.
    ref = np.array([[1.0, -2.0], [0.5, 4.0]])
    off = ref.copy()
    off[1, 0] += 4e-9
    assert relative_error(ref, ref) == 0.0
    assert relative_error(ref, off) == pytest.approx(1e-9)
    assert relative_error(ref, off) > LIMIT["float64"]
    assert relative_error(ref, ref[:1]) == float("inf")
    assert relative_error([np.nan, 1.0], [0.0, 1.0]) == float("inf")
    assert relative_error([np.inf, 1.0], [np.nan, 1.0]) == 0.0
    assert relative_error([np.inf, 1.0], [np.nan, 1.5]) == pytest.approx(1 / 3)
    assert relative_error([1e-3], [1.1e-3], floor=1.0) == pytest.approx(1e-4)
    assert _floor({"w": np.array([-2.0, 1.0])}, "w.change", "float32") == 2.0
    assert _floor({"w": np.array([-2.0, 1.0])}, "w.change", "float64") == 0.0
    assert _floor({"w": np.array([-2.0, 1.0])}, "w.m", "float32") == 0.0
