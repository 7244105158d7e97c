"""Optimizers as pure functions: ``init`` → state, ``update`` → changes, ``apply`` → new params.

Computing the change and applying it are separate so the update table can show
each parameter's change, with the optimizer's own terms, before it lands. The
arithmetic follows Keras 3 (its update rules and defaults) and is written
against a tiny array interface — ``xp.sqrt`` and ``xp.zeros_like`` — so the
NumPy and torch backends run the very same code.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

Array = Any  # an ndarray or a torch tensor


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer by its Keras name, with every option filled in (defaults included)."""

    name: str
    options: dict[str, float | bool]

    @property
    def learning_rate(self) -> float:
        return float(self.options["learning_rate"])


class ArrayModule(Protocol):
    def sqrt(self, x: Array, /) -> Array: ...
    def zeros_like(self, x: Array, /) -> Array: ...
    def sign(self, x: Array, /) -> Array: ...


@dataclass(frozen=True, eq=False)
class OptState:
    """Steps taken so far and, per parameter, the optimizer's slots (velocity, m, v, …)."""

    step: int
    slots: dict[str, dict[str, Array]]


@dataclass(frozen=True, eq=False)
class ParamUpdate:
    """The change to add to one parameter and the terms that produced it (same shape)."""

    change: Array
    terms: Mapping[str, Array]


class _AdamTerms(Mapping[str, Array]):
    """m and v, and the bias-corrected m̂ and v̂, worked out the first time they are read.

    The step itself folds the corrections into its size, so m̂ and v̂ are only
    ever shown; a step no one looks at does not pay for two more arrays of
    every parameter's size. Nothing is written in place, so a late read sees
    the same numbers an early one would.
    """

    def __init__(self, m: Array, v: Array, m_scale: float, v_scale: float) -> None:
        self._values: dict[str, Array] = {"m": m, "v": v}
        self._corrected = {"m̂": ("m", m_scale), "v̂": ("v", v_scale)}

    def __getitem__(self, key: str) -> Array:
        if key not in self._values:
            source, scale = self._corrected[key]
            self._values[key] = self._values[source] / scale
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(("m", "v", "m̂", "v̂"))

    def __len__(self) -> int:
        return 4


def slot_names(spec: OptimizerSpec) -> tuple[str, ...]:
    o = spec.options
    if spec.name == "sgd":
        return ("velocity",) if o["momentum"] else ()
    if spec.name == "adam":
        return ("m", "v")
    names = ["mean_square"]
    if o["centered"]:
        names.append("mean_grad")
    if o["momentum"]:
        names.append("velocity")
    return tuple(names)


def term_names(spec: OptimizerSpec) -> tuple[str, ...]:
    """The columns the update table shows for this optimizer, between gradient and change."""
    if spec.name == "sgd":
        return ("velocity",) if spec.options["momentum"] else ("lr·g",)
    if spec.name == "adam":
        return ("m", "v", "m̂", "v̂")
    return slot_names(spec)


def rule_text(spec: OptimizerSpec) -> str:
    """The update rule in one line, as the code computes it (the update pane's title).

    Adam's ε sits where Keras puts it, outside the bias correction of v: in
    terms of the m̂ and v̂ the table shows, it is ε/√(1−β₂ᵗ), so the rule
    reproduces the table's numbers to the last digit.
    """
    o = spec.options
    lr = f"{float(o['learning_rate']):g}"
    if spec.name == "sgd":
        if not o["momentum"]:
            return f"new = w − lr·g   (lr = {lr})"
        mom = f"{float(o['momentum']):g}"
        if o["nesterov"]:
            return f"v = {mom}·v − lr·g;  new = w + {mom}·v − lr·g   (lr = {lr})"
        return f"v = {mom}·v − lr·g;  new = w + v   (lr = {lr})"
    if spec.name == "adam":
        return (
            f"new = w − lr·m̂ / (√v̂ + ε/√(1−β₂ᵗ))   (lr = {lr}, β₁ = {o['beta_1']}, "
            f"β₂ = {o['beta_2']}, ε = {float(o['epsilon']):g})"
        )
    rho = f"ρ = {o['rho']}, ε = {float(o['epsilon']):g}"
    mean = "√(ms − mg² + ε)" if o["centered"] else "√(ms + ε)"
    square = "ms = ρ·ms + (1−ρ)·g²;  " + ("mg = ρ·mg + (1−ρ)·g;  " if o["centered"] else "")
    if o["momentum"]:
        mom = f"{float(o['momentum']):g}"
        return f"{square}v = {mom}·v + lr·g/{mean};  new = w − v   (lr = {lr}, {rho})"
    return f"{square}new = w − lr·g / {mean}   (lr = {lr}, {rho})"


def init(spec: OptimizerSpec, params: dict[str, Array], xp: ArrayModule) -> OptState:
    names = slot_names(spec)
    return OptState(0, {p: {s: xp.zeros_like(v) for s in names} for p, v in params.items()})


def update(
    spec: OptimizerSpec,
    state: OptState,
    grads: dict[str, Array],
    xp: ArrayModule,
) -> tuple[dict[str, ParamUpdate], OptState]:
    """The change for every parameter and the state after this step; nothing is mutated."""
    o = spec.options
    lr = float(o["learning_rate"])
    t = state.step + 1
    updates: dict[str, ParamUpdate] = {}
    slots: dict[str, dict[str, Array]] = {}
    for name, g in grads.items():
        old = state.slots[name]
        if spec.name == "sgd":
            momentum = float(o["momentum"])
            if not momentum:
                step = lr * g
                updates[name] = ParamUpdate(-step, {"lr·g": step})
                slots[name] = {}
                continue
            velocity = momentum * old["velocity"] - lr * g
            change = momentum * velocity - lr * g if o["nesterov"] else velocity
            updates[name] = ParamUpdate(change, {"velocity": velocity})
            slots[name] = {"velocity": velocity}
        elif spec.name == "adam":
            b1, b2, eps = float(o["beta_1"]), float(o["beta_2"]), float(o["epsilon"])
            # m + (g − m)(1 − β₁) and so on, bit for bit, each built in one fresh array
            # without temporaries: this is the hot path of a big layer's step.
            m = g - old["m"]
            m *= 1.0 - b1
            m += old["m"]
            v = g * g
            v -= old["v"]
            v *= 1.0 - b2
            v += old["v"]
            alpha = lr * math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
            denominator = xp.sqrt(v)
            denominator += eps
            change = m * -alpha
            change /= denominator
            terms = _AdamTerms(m, v, 1.0 - b1**t, 1.0 - b2**t)
            updates[name] = ParamUpdate(change, terms)
            slots[name] = {"m": m, "v": v}
        else:  # rmsprop
            rho, eps = float(o["rho"]), float(o["epsilon"])
            ms = rho * old["mean_square"] + (1.0 - rho) * g * g
            new_slots = {"mean_square": ms}
            denominator = ms
            if o["centered"]:
                mg = rho * old["mean_grad"] + (1.0 - rho) * g
                new_slots["mean_grad"] = mg
                denominator = ms - mg * mg
            increment = lr * g / xp.sqrt(denominator + eps)
            if o["momentum"]:
                velocity = float(o["momentum"]) * old["velocity"] + increment
                new_slots["velocity"] = velocity
                increment = velocity
            updates[name] = ParamUpdate(-increment, dict(new_slots))
            slots[name] = new_slots
    return updates, OptState(t, slots)


def apply(params: dict[str, Array], updates: dict[str, ParamUpdate]) -> dict[str, Array]:
    """New parameters: each ``value + change``."""
    return {name: value + updates[name].change for name, value in params.items()}
