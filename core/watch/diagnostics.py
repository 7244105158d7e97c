"""Diagnostics after every training step: warnings that name the layer and give the numbers.

Each condition is reported when it starts, again when it has got markedly
worse (a tenfold larger gradient, a quarter more dead units) but not sooner
than a tenth of ``report_every`` steps after the last report, and otherwise
every ``report_every`` steps while it lasts, so a long run does not flood the
log. Slow conditions (dead or saturated units, vanishing gradients, update
ratios) must hold for :data:`PERSIST` steps in a row first, so one unlucky
batch does not raise them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from . import advice
from .stats import Location, StepStatistics

DEFAULTS: dict[str, float | bool] = {
    "enabled": True,
    "stop_on_nan": True,  # NaN or Inf stops continue mode and run_until
    "exploding_grad_norm": 1000.0,  # a layer's gradient norm above this
    "vanishing_grad_norm": 1e-8,  # a layer's gradient norm below this
    "vanishing_grad_ratio": 1e-4,  # ... or below this share of the largest layer's
    "dead_fraction": 0.5,  # share of a relu layer's units zero for the whole batch
    "saturated_fraction": 0.5,  # share of a hidden sigmoid/tanh layer's outputs saturated
    "update_ratio_high": 0.3,  # |Δw| / |w| per layer; about 1e-3 is healthy
    "update_ratio_low": 1e-7,
    "loss_rising_steps": 25,  # the loss went up this many steps in a row
    "report_every": 500,  # steps between reminders of a condition that lasts
}
PERSIST = 10
SATURATING = frozenset({"sigmoid", "tanh"})  # the activations StepStatistics measures saturation of
WORSE_AFTER = 0.1  # a condition that got worse is told again after this share of report_every
KINDS = (
    "nan",
    "inf",
    "exploding_gradients",
    "vanishing_gradients",
    "dead_relu",
    "saturation",
    "update_ratio_high",
    "update_ratio_low",
    "loss_rising",
    "symmetry",
)


def thresholds(overrides: Mapping[str, float | bool]) -> dict[str, float | bool]:
    """The scenario's ``diagnostics:`` block over the defaults."""
    return {**DEFAULTS, **overrides}


@dataclass(frozen=True)
class Finding:
    """One warning: which diagnostic, which layer (None for the whole network), what."""

    kind: str
    layer: str | None
    text: str
    # Where the step computed what it is about: (phase, position) in pipeline order.
    order: tuple[int, int] = (0, 0)


@dataclass
class _Track:
    run: int = 0  # consecutive steps the condition has held
    reported_at: int | None = None
    severity: int = 0


class Diagnostics:
    """Watches every finished step and says what looks wrong, once per onset.

    ``overrides`` is the scenario's ``diagnostics:`` block; see :data:`DEFAULTS`.
    """

    def __init__(self, overrides: Mapping[str, float | bool] | None = None) -> None:
        self.settings = thresholds(overrides or {})
        self._tracks: dict[tuple[str, str | None], _Track] = {}
        self._last_step = -1
        self._last_loss: float | None = None
        self._rise_start: float | None = None
        self._rises = 0

    def number(self, key: str) -> float:
        return float(self.settings[key])

    @property
    def enabled(self) -> bool:
        return bool(self.settings["enabled"])

    def reset(self) -> None:
        """Forget every condition (after going back in time)."""
        self._tracks.clear()
        self._last_loss, self._rise_start, self._rises = None, None, 0

    def observe(self, stats: StepStatistics) -> list[Finding]:
        """The warnings due after the step ``stats`` describes."""
        if stats.step <= self._last_step:
            self.reset()
        self._last_step = stats.step
        if not self.enabled:
            return []
        found: list[Finding] = []
        bad = stats.nonfinite
        for kind in ("nan", "inf"):
            where = stats.first(kind) if bad is not None else None
            if self._due(kind, None, where is not None, 0, stats.step, persist=1):
                assert where is not None
                text = f"{stats.describe(kind)}; " + _NAN_FIX
                found.append(Finding(kind, None, text, _order(stats, where)))
        if bad is not None:
            # Everything downstream of a NaN is NaN; other warnings would only repeat it.
            self._rises = 0
            return sorted(found, key=lambda f: f.order)
        self._units(found, stats)  # first: the gradients' advice reads its conditions
        self._gradients(found, stats)
        self._updates(found, stats)
        self._loss(found, stats)
        # In the order the step computed what they are about (stable within a place).
        return sorted(found, key=lambda f: f.order)

    def _from_start(self, kind: str, layer: str | None, step: int) -> bool:
        """Whether the condition, just told, has held since the first step."""
        track = self._tracks.get((kind, layer))
        return track is not None and step - track.run + 1 <= 1

    # ------------------------------------------------------------ the checks
    # Each check words its warning only when one is due: most steps report nothing.
    def _gradients(self, found: list[Finding], stats: StepStatistics) -> None:
        norms = {spec.name: stats.grad_norm(spec.name) for spec in stats.layers}
        largest_layer, largest = None, 0.0
        for layer, norm in norms.items():
            if norm is not None and norm > largest:
                largest_layer, largest = layer, norm
        high = self.number("exploding_grad_norm")
        low, ratio = self.number("vanishing_grad_norm"), self.number("vanishing_grad_ratio")
        for i, spec in enumerate(stats.layers):
            layer, norm = spec.name, norms[spec.name]
            if norm is None:
                continue
            at = _backward(stats, i)
            exploding = norm > high
            severity = _decades(norm / high) if exploding else 0
            if self._due("exploding_gradients", layer, exploding, severity, stats.step, persist=1):
                found.append(
                    Finding(
                        "exploding_gradients",
                        layer,
                        f"{layer}: gradient norm {norm:.3g} is above {high:g} (exploding "
                        f"gradients); {advice.exploding_fix(stats, spec)}",
                        at,
                    )
                )
            share = norm / largest if largest > 0 else 1.0
            vanishing = norm < low or share < ratio
            severity = _decades(ratio / share) if share > 0 and share < ratio else 0
            if self._due("vanishing_gradients", layer, vanishing, severity, stats.step):
                why = self._blocked(stats, i) or advice.vanishing_fix(
                    stats, i, largest_layer, self.settings
                )
                found.append(
                    Finding(
                        "vanishing_gradients",
                        layer,
                        f"{layer}: gradient norm {norm:.3g}, {share:.2g} of the largest layer's "
                        f"({largest:.3g}) (vanishing gradients); {why}",
                        at,
                    )
                )

    def _units(self, found: list[Finding], stats: StepStatistics) -> None:
        last = stats.layers[-1].name
        for i, spec in enumerate(stats.layers):
            name = spec.name
            at = (PHASE_ORDER["forward"], i)
            # Only relu layers have dead units and only sigmoid/tanh ones saturate
            # (StepStatistics gives None for the rest): not asked, most layers cost nothing.
            dead = stats.dead_fraction(name) if spec.activation == "relu" else None
            if dead is not None:
                limit = self.number("dead_fraction")
                active = dead >= limit and dead > 0
                if self._due("dead_relu", name, active, int(dead * 4), stats.step):
                    fix = advice.dead_fix(spec, self._from_start("dead_relu", name, stats.step))
                    found.append(
                        Finding(
                            "dead_relu",
                            name,
                            f"{name}: {_count(dead, spec.units)} relu "
                            f"{'filters' if spec.type == 'conv2d' else 'units'} output zero for "
                            f"the whole batch (dying ReLU); {fix}",
                            at,
                        )
                    )
            saturating = spec.activation in SATURATING and name != last
            saturated = stats.saturated_fraction(name) if saturating else None
            if saturated is not None:
                limit = self.number("saturated_fraction")
                active = saturated >= limit and saturated > 0
                if self._due("saturation", name, active, int(saturated * 4), stats.step):
                    start = self._from_start("saturation", name, stats.step)
                    found.append(
                        Finding(
                            "saturation",
                            name,
                            f"{name}: {saturated:.0%} of its {spec.activation} outputs over the "
                            "batch are saturated, their slope under 1% of its peak, so little "
                            f"gradient gets through; {advice.saturation_fix(stats, spec, start)}",
                            at,
                        )
                    )
            if self._due("symmetry", name, stats.symmetric(name), 0, stats.step):
                found.append(
                    Finding(
                        "symmetry",
                        name,
                        f"{name}: all {spec.units} {'filters' if spec.type == 'conv2d' else 'units'} have identical weights, so they compute "
                        "the same value and get the same gradient: symmetry never breaks; "
                        "initialize the kernel randomly (glorot_uniform), not with zeros or a "
                        "constant",
                        (PHASE_ORDER["update"], i),
                    )
                )

    def _updates(self, found: list[Finding], stats: StepStatistics) -> None:
        high, low = self.number("update_ratio_high"), self.number("update_ratio_low")
        for i, spec in enumerate(stats.layers):
            name = spec.name
            ratio = stats.update_ratio(name)
            if ratio is None:
                continue
            at = (PHASE_ORDER["update"], i)
            severity = _decades(ratio / high) if ratio > high else 0
            if self._due("update_ratio_high", name, ratio > high, severity, stats.step):
                found.append(
                    Finding(
                        "update_ratio_high",
                        name,
                        f"{name}: update/weight ratio {ratio:.2g} is above {high:g} (about 1e-3 "
                        "is healthy); the weights jump around: lower the learning rate",
                        at,
                    )
                )
            severity = _decades(low / ratio) if 0 < ratio < low else 0
            if self._due("update_ratio_low", name, ratio < low, severity, stats.step):
                blocked = self._blocked(stats, i)
                vanishing = self._active("vanishing_gradients", name)
                why = (
                    f", as its gradient is near zero: {blocked}"
                    if blocked is not None
                    else advice.update_low_fix(stats, vanishing, self.settings)
                )
                found.append(
                    Finding(
                        "update_ratio_low",
                        name,
                        f"{name}: update/weight ratio {ratio:.2g} is below {low:g} (about 1e-3 "
                        f"is healthy); the layer barely learns{why}",
                        at,
                    )
                )

    def _loss(self, found: list[Finding], stats: StepStatistics) -> None:
        loss, before = stats.loss, self._last_loss
        self._last_loss = loss
        if loss is None or before is None or not loss > before:
            self._rises, self._rise_start = 0, None
        else:
            if self._rises == 0:
                self._rise_start = before
            self._rises += 1
        steps = int(self.number("loss_rising_steps"))
        rising = steps > 0 and self._rises >= steps
        severity = int(math.log2(self._rises / steps)) if rising else 0
        if self._due("loss_rising", None, rising, severity, stats.step, persist=1):
            found.append(
                Finding(
                    "loss_rising",
                    None,
                    f"the loss rose {self._rises} steps in a row, from "
                    f"{self._rise_start or 0:.4g} to {loss or 0:.4g}; lower the learning rate",
                    (PHASE_ORDER["loss"], 0),
                )
            )

    def _blocked(self, stats: StepStatistics, i: int) -> str | None:
        """Dead or saturated units that stop layer ``i``'s gradient, with their fix, or None."""
        blocked = advice.blocked_by(stats, i, self.settings)
        if blocked is None:
            return None
        start = self._from_start(blocked.kind, blocked.layer.name, stats.step)
        return advice.unblock(stats, blocked, start)

    def _active(self, kind: str, layer: str | None) -> bool:
        """Whether the condition held at the step just observed."""
        track = self._tracks.get((kind, layer))
        return track is not None and track.run > 0

    # -------------------------------------------------------------- reporting
    def _due(
        self,
        kind: str,
        layer: str | None,
        active: bool,
        severity: int,
        step: int,
        persist: int = PERSIST,
    ) -> bool:
        """Whether the condition ``kind`` of ``layer`` is to be told after ``step``."""
        key = (kind, layer)
        track = self._tracks.get(key)
        if not active:
            if track is not None:
                track.run = 0
            return False
        if track is None:
            track = self._tracks[key] = _Track()
        track.run += 1
        if track.run < persist:
            return False
        every = float(self.settings["report_every"])
        since = math.inf if track.reported_at is None else step - track.reported_at
        once = kind in ("nan", "inf")  # reported at each onset, never repeated
        due = (
            since == math.inf
            or (once and track.run == persist)
            or (not once and since >= every)
            or (severity > track.severity and since >= every * WORSE_AFTER)
        )
        if due:
            track.reported_at, track.severity = step, severity
        return due


_NAN_FIX = "lower the learning rate, or look for a log or division of zero"
PHASE_ORDER = {"input": 0, "forward": 1, "loss": 2, "backward": 3, "update": 4}


def _order(stats: StepStatistics, where: Location) -> tuple[int, int]:
    """The place of ``where`` in the step: phase, then layer (backward from the last)."""
    names = [spec.name for spec in stats.layers]
    i = names.index(where.layer) if where.layer in names else 0
    return (
        _backward(stats, i) if where.phase == "backward" else (PHASE_ORDER.get(where.phase, 0), i)
    )


def _backward(stats: StepStatistics, i: int) -> tuple[int, int]:
    return (PHASE_ORDER["backward"], len(stats.layers) - 1 - i)


def _decades(ratio: float) -> int:
    return int(math.log10(ratio)) if ratio >= 1 and math.isfinite(ratio) else 0


def _count(fraction: float, units: int) -> str:
    return f"{round(fraction * units)} of {units} ({fraction:.0%})"
