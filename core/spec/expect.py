"""Expectations: checks written in a scenario's ``expect:`` block, validated and run.

Each entry names a moment and what must hold there::

    expect:
      - {step: 1, phase: update, param: hidden.kernel, index: [0, 1], value: -0.475031, tol: 1e-6}
      - {step: 1, phase: loss, loss: 0.728558, tol: 1e-6}
      - {epoch: 10, val_accuracy: ">= 0.95", loss: "< 0.1"}

- ``step: N`` is the N-th training step (1-based, as the app counts them);
  ``phase:`` (input, forward, loss, backward, update; default update) is the
  point within it, after that phase is done. ``epoch: N`` is the end of the
  N-th epoch.
- ``param:`` or ``grad:`` names a parameter (``hidden.kernel``), ``index:`` one
  entry of it and ``value:`` the condition on that number.
- ``loss``, each metric, ``val_loss`` and ``val_<metric>`` are conditions of
  their own. At a step they are the step's batch values (validation values:
  the whole validation split at that moment's weights); at an epoch, the
  epoch's means and its validation values, as Keras reports them.
- A condition is a number — equal within ``tol`` (default 1e-6) — or a
  comparison in quotes: ``">= 0.95"``, ``"< 0.1"``, ``"== 0.5"``, ``"!= 0"``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ScenarioError
from ..records import PHASES
from .reader import NUMBER_TEXT, Reader, shown
from .types import DEFAULT_TOL, Condition, Expectation, LayerSpec
from .types import PHASE_RANK as _PHASE_RANK
from .yamlio import Located

if TYPE_CHECKING:
    from ..run.debugger import Debugger

__all__ = [
    "DEFAULT_TOL",
    "Condition",
    "ExpectResult",
    "Expectation",
    "parse_expectations",
    "run_expectations",
]

WHEN_KEYS = ("step", "epoch", "phase")
TENSOR_KEYS = ("param", "grad", "index", "value", "tol")
SCALAR_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")
_COMPARISON = re.compile(rf"^\s*(>=|<=|==|!=|>|<|=)?\s*({NUMBER_TEXT})\s*$")


@dataclass(frozen=True)
class ExpectResult:
    expectation: Expectation
    passed: bool
    actual: float | None
    note: str = ""

    def line(self) -> str:
        e = self.expectation
        mark = "ok  " if self.passed else "FAIL"
        actual = "n/a" if self.actual is None else f"{self.actual:.6g}"
        note = f" ({self.note})" if self.note else ""
        return f"{mark}  {e.label:<10} {e.when():<16} {e.what()}: actual {actual}{note}"


# ------------------------------------------------------------------------ parsing
class _Parser:
    def __init__(
        self,
        doc: Located,
        layers: Sequence[LayerSpec],
        metrics: Sequence[str],
        has_validation: bool,
    ) -> None:
        self.r = Reader(doc)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.states: set[str] = set()  # moving statistics: values to check, never gradients
        for layer in layers:
            self.shapes.update(layer.param_shapes)
            self.shapes.update(layer.state_shapes)
            self.states.update(layer.state_names)
        self.metrics = tuple(metrics)
        self.has_validation = has_validation
        scalars = ["loss", *self.metrics]
        self.known_scalars = (*scalars, *(f"val_{name}" for name in scalars))

    def fail(self, path: str, message: str) -> ScenarioError:
        return self.r.fail(path, message)

    def entries(self, value: object) -> tuple[Expectation, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail("expect", "expected a list of checks, each a mapping")
        out: list[Expectation] = []
        for i, item in enumerate(value):
            out.extend(self.entry(item, f"expect[{i}]"))
        return tuple(out)

    def whole(self, value: object, path: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(
                path, f"expected a whole number of at least {minimum}, got {shown(value)}"
            )
        return value

    def number(self, value: object, path: str) -> float:
        return self.r.number(value, path, text_ok=True)  # YAML 1.1 reads 1e-6 (no dot) as text

    def entry(self, item: object, path: str) -> list[Expectation]:
        # every metric the project knows is a key, so a missing one gets a precise error
        allowed = (*WHEN_KEYS, *TENSOR_KEYS, *dict.fromkeys((*self.known_scalars, *SCALAR_KEYS)))
        item = self.r.mapping(
            item, path, allowed, what="a mapping such as {epoch: 10, accuracy: '>= 0.9'}"
        )
        step, epoch, phase = self.when(item, path)
        tol = DEFAULT_TOL
        if "tol" in item:
            tol = self.number(item["tol"], f"{path}.tol")
            if tol < 0:
                raise self.fail(
                    f"{path}.tol", f"expected a tolerance of at least 0, got {item['tol']}"
                )
        common: dict[str, Any] = {"step": step, "epoch": epoch, "phase": phase}
        line = self.r.line_of(path)
        out: list[Expectation] = []
        tensor = self.tensor(item, path, tol, phase if step is not None else "update")
        if tensor is not None:
            quantity, name, index, condition = tensor
            out.append(
                Expectation(
                    label=path,
                    quantity=quantity,
                    condition=condition,
                    param=name,
                    index=index,
                    line=line,
                    **common,
                )
            )
        for key in item:
            if key in WHEN_KEYS or key in TENSOR_KEYS:
                continue
            out.append(
                Expectation(
                    label=path,
                    quantity=key,
                    condition=self.scalar(item, key, path, tol, step, phase),
                    line=self.r.line_of(f"{path}.{key}"),
                    **common,
                )
            )
        if not out:
            raise self.fail(
                path,
                "nothing to check; add param: with index: and value:, or a condition on "
                f"{', '.join(self.known_scalars)}",
            )
        return out

    def when(self, item: dict[str, Any], path: str) -> tuple[int | None, int | None, str]:
        if ("step" in item) == ("epoch" in item):
            raise self.fail(path, "say when: give step: N or epoch: N (one of them)")
        phase = "update"
        if "phase" in item:
            if "epoch" in item:
                raise self.fail(
                    f"{path}.phase", "phase: goes with step:, not epoch: (an epoch ends updated)"
                )
            phase = item["phase"]
            if not isinstance(phase, str) or phase not in PHASES:
                raise self.fail(
                    f"{path}.phase", f"unknown phase {shown(phase)}; use one of {', '.join(PHASES)}"
                )
        if "step" in item:
            return self.whole(item["step"], f"{path}.step", 1), None, phase
        return None, self.whole(item["epoch"], f"{path}.epoch", 1), phase

    def condition(self, value: object, path: str, tol: float) -> Condition:
        if isinstance(value, str):
            match = _COMPARISON.match(value)
            if match is None:
                raise self.fail(
                    path,
                    f"cannot read {shown(value)}; write a number, or a comparison such as '>= 0.95'",
                )
            op = "==" if match.group(1) in ("=", None) else match.group(1)
            return Condition(op, float(match.group(2)), tol)
        return Condition("==", self.number(value, path), tol)

    def tensor(
        self, item: dict[str, Any], path: str, tol: float, phase: str
    ) -> tuple[str, str, tuple[int, ...], Condition] | None:
        kinds = [key for key in ("param", "grad") if key in item]
        if not kinds:
            for key in ("index", "value"):
                if key in item:
                    raise self.fail(f"{path}.{key}", f"{key}: goes with param: or grad:")
            return None
        if len(kinds) == 2:
            raise self.fail(f"{path}.grad", "give param: or grad:, not both; split the check")
        kind = kinds[0]
        name = item[kind]
        if not isinstance(name, str) or name not in self.shapes:
            names = tuple(self.shapes)
            close = (
                difflib.get_close_matches(name, names, n=1, cutoff=0.6)
                if isinstance(name, str)
                else []
            )
            hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(names)}"
            raise self.fail(f"{path}.{kind}", f"no parameter named {shown(name)}; {hint}")
        if kind == "grad" and name in self.states:
            raise self.fail(
                f"{path}.grad",
                f"{name} is not trained, so it has no gradient; check its value with param:",
            )
        if kind == "grad" and _PHASE_RANK[phase] < _PHASE_RANK["backward"]:
            raise self.fail(
                f"{path}.phase",
                f"a step's gradients exist from its backward phase on, not after {phase}",
            )
        for key in ("index", "value"):
            if key not in item:
                raise self.fail(
                    path, f"the key '{key}' is missing; {kind}: needs index: and value:"
                )
        index = self.index(item["index"], f"{path}.index", self.shapes[name])
        return kind, name, index, self.condition(item["value"], f"{path}.value", tol)

    def index(self, value: object, path: str, shape: tuple[int, ...]) -> tuple[int, ...]:
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        dims = " × ".join(str(s) for s in shape)
        if not isinstance(value, list) or len(value) != len(shape):
            raise self.fail(
                path, f"expected {len(shape)} whole number(s) for a parameter of shape {dims}"
            )
        out = []
        for axis, (raw, size) in enumerate(zip(value, shape, strict=True)):
            if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw < size:
                raise self.fail(
                    f"{path}[{axis}]",
                    f"expected a whole number from 0 to {size - 1} (shape {dims}), got {shown(raw)}",
                )
            out.append(raw)
        return tuple(out)

    def scalar(
        self, item: dict[str, Any], key: str, path: str, tol: float, step: int | None, phase: str
    ) -> Condition:
        base = key.removeprefix("val_")
        if base != "loss" and base not in self.metrics:
            raise self.fail(
                f"{path}.{key}", f"the scenario computes no {base}; add metrics: [{base}]"
            )
        if key.startswith("val_") and not self.has_validation:
            raise self.fail(
                f"{path}.{key}",
                f"the scenario has no validation data; set data.validation_split (or check {base})",
            )
        if (
            step is not None
            and not key.startswith("val_")
            and _PHASE_RANK[phase] < _PHASE_RANK["loss"]
        ):
            raise self.fail(
                f"{path}.phase", f"a step's {key} exists from its loss phase on, not after {phase}"
            )
        return self.condition(item[key], f"{path}.{key}", tol)


def parse_expectations(
    doc: Located,
    value: object,
    layers: Sequence[LayerSpec],
    metrics: Sequence[str],
    has_validation: bool,
) -> tuple[Expectation, ...]:
    """Validate an ``expect:`` block; every mistake is a ScenarioError placed in the file."""
    return _Parser(doc, layers, metrics, has_validation).entries(value)


# ------------------------------------------------------------------------ running
def _position(dbg: Debugger) -> tuple[int, float]:
    if dbg.phase == "update":
        return (dbg.step_index - 1, _PHASE_RANK["update"])
    rank: float = _PHASE_RANK[dbg.phase]
    record = dbg.last_record
    if record is not None and not record.complete:
        rank -= 0.5  # a forward or backward pass half done
    return (dbg.step_index, rank)


def _reach(dbg: Debugger, target: tuple[int, int], progress: Callable[[int], None] | None) -> None:
    while _position(dbg) < target:
        if dbg.phase == "update" and dbg.step_index < target[0]:
            dbg.step("batch")
        else:
            dbg.step("phase")
        if progress is not None and dbg.phase == "update":
            progress(dbg.step_index)


def _actual(dbg: Debugger, e: Expectation) -> float | None:
    if e.param is not None:
        arrays = dbg.params if e.quantity == "param" else dbg.grads
        return float(arrays[e.param][e.index])
    if e.epoch is not None:
        if len(dbg.epoch_history) < e.epoch:
            return None
        return dbg.epoch_history[e.epoch - 1].as_dict().get(e.quantity)
    if e.quantity.startswith("val_"):
        val_loss, val_metrics = dbg.evaluate("validation")
        if e.quantity == "val_loss":
            return val_loss
        return (val_metrics or {}).get(e.quantity.removeprefix("val_"))
    if e.quantity == "loss":
        return dbg.loss
    return dbg.metrics.get(e.quantity)


def run_expectations(
    dbg: Debugger,
    expectations: Sequence[Expectation] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[ExpectResult]:
    """Train ``dbg`` forward as far as the checks need and evaluate each, in run order.

    ``expectations`` default to the scenario's own. A check the run has already
    passed by fails with a note. ``progress`` is called with the step count
    after each training step.
    """
    if expectations is None:
        expectations = dbg.scenario.expectations
    spe = dbg.scenario.steps_per_epoch()
    results: list[ExpectResult] = []
    for e in sorted(expectations, key=lambda e: e.target(spe)):
        target = e.target(spe)
        if _position(dbg) > target:
            results.append(ExpectResult(e, False, None, "the run was already past this point"))
            continue
        _reach(dbg, target, progress)
        actual = _actual(dbg, e)
        passed = actual is not None and e.condition.holds(actual)
        results.append(ExpectResult(e, passed, actual))
    return results
