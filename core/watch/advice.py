"""What to do about a diagnosis: advice that fits the layer and what else holds at the step.

Worded only when a warning is due, from the step's statistics and the
thresholds, never from the run. The rules keep warnings of one step from
contradicting each other: a layer whose gradient is zero because units above
it are dead or saturated is told that cause, not to raise the learning rate;
nothing says "raise the learning rate" while another layer's updates or
gradients call for lowering it; initializers are suggested only to a layer
that does not already use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..spec.types import LayerSpec

if TYPE_CHECKING:
    from .stats import StepStatistics

# Initializers scaled to the layer's fan-in/fan-out: suggesting them again would be no fix.
SCALED = frozenset(
    {"glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal", "lecun_uniform"}
)
# What an attached model's stand-in layers carry: the initializer is unknown.
UNKNOWN_INIT = "none"
# Inputs beyond this size saturate a sigmoid/tanh layer from glorot weights already.
BIG_INPUT = 3.0

Settings = Mapping[str, float | bool]


def _limit(settings: Settings, key: str) -> float:
    return float(settings[key])


def smaller_weights(spec: LayerSpec) -> str | None:
    """The initializer fix for ``spec``, or None when it already starts from scaled weights."""
    name = spec.kernel_initializer.name
    if spec.kernel is not None:
        return "start from smaller weights than the kernel given (glorot_uniform)"
    if name == UNKNOWN_INIT:
        return "start from smaller weights"
    if name in SCALED or name == "zeros":
        return None
    return f"start from glorot_uniform weights instead of {name}"


@dataclass(frozen=True)
class Blocked:
    """A layer whose units stop the gradient: ``kind`` is ``dead_relu`` or ``saturation``."""

    layer: LayerSpec
    kind: str
    text: str


def blocked_by(stats: StepStatistics, index: int, settings: Settings) -> Blocked | None:
    """Why little gradient reaches layer ``index``: dead or saturated units at it or above.

    dL/dz of a layer is dL/da times the slope of its activation, so a layer's
    own units and every layer above it can stop the gradient on its way back.
    The nearest such layer is named.
    """
    layers = stats.layers
    last = len(layers) - 1
    for j in range(index, len(layers)):
        spec = layers[j]
        dead = stats.dead_fraction(spec.name)
        if dead is not None and dead > 0 and dead >= _limit(settings, "dead_fraction"):
            text = f"{spec.name}'s relu units are dead ({dead:.0%}) and pass no gradient back"
            return Blocked(spec, "dead_relu", text)
        saturated = stats.saturated_fraction(spec.name) if j < last else None
        limit = _limit(settings, "saturated_fraction")
        if saturated is not None and saturated > 0 and saturated >= limit:
            text = (
                f"{spec.name}'s {spec.activation} units are saturated ({saturated:.0%}) "
                "and pass little gradient back"
            )
            return Blocked(spec, "saturation", text)
    return None


def unblock(stats: StepStatistics, blocked: Blocked, from_start: bool) -> str:
    """The blockage and its fix, in words."""
    if blocked.kind == "dead_relu":
        return f"{blocked.text}; {dead_fix(blocked.layer, from_start)}"
    return f"{blocked.text}; {saturation_fix(stats, blocked.layer, from_start)}"


def too_fast(stats: StepStatistics, settings: Settings) -> str | None:
    """A layer whose gradients explode or whose updates are too large, in words, or None."""
    high = _limit(settings, "exploding_grad_norm")
    ratio_high = _limit(settings, "update_ratio_high")
    for spec in reversed(stats.layers):  # backward order: the layer nearest the loss first
        norm = stats.grad_norm(spec.name)
        if norm is not None and norm > high:
            return f"{spec.name}'s gradient norm is {norm:.3g}, above {high:g}"
    ratios = {spec.name: stats.update_ratio(spec.name) or 0.0 for spec in stats.layers}
    fastest = max(ratios, key=ratios.__getitem__)
    if ratios[fastest] > ratio_high:
        return f"{fastest}'s update/weight ratio is {ratios[fastest]:.2g}, above {ratio_high:g}"
    return None


def dead_fix(spec: LayerSpec, from_start: bool) -> str:
    """How to bring a relu layer's units back."""
    fixes = []
    if not from_start:
        fixes.append("lower the learning rate (big updates pushed them below zero)")
    if spec.kernel_initializer.name not in ("he_uniform", "he_normal", UNKNOWN_INIT):
        fixes.append("start from he_uniform weights")
    fixes.append("use leaky_relu, whose units never stop passing gradient")
    return _either(fixes)


def saturation_fix(stats: StepStatistics, spec: LayerSpec, from_start: bool) -> str:
    """How to bring a sigmoid/tanh layer's units back to their slope."""
    if not from_start:
        return "lower the learning rate (the weights grew too large while training)"
    fixes = []
    if stats.layers.index(spec) == 0 and _largest_input(stats) > BIG_INPUT:
        fixes.append("scale the inputs to about ±1")
    weights = smaller_weights(spec)
    fixes.append(weights or "start from smaller weights")
    return _either(fixes)


def exploding_fix(stats: StepStatistics, spec: LayerSpec) -> str:
    """How to tame gradients that are too large."""
    fixes = []
    weights = smaller_weights(spec)
    if weights is None:  # its own start is scaled; a layer above may not be
        weights = next(filter(None, (smaller_weights(s) for s in stats.layers)), None)
    if weights is not None:
        fixes.append(weights)
    fixes.append("lower the learning rate")
    if len(stats.layers) > 3:
        fixes.append("use fewer layers")
    return _either(fixes)


def vanishing_fix(
    stats: StepStatistics, index: int, largest_layer: str | None, settings: Settings
) -> str:
    """Why layer ``index``'s gradient is so small next to the largest layer's, and what to do,
    when no dead or saturated units explain it (see :func:`blocked_by`)."""
    if largest_layer is not None:
        norm = stats.grad_norm(largest_layer)
        high = _limit(settings, "exploding_grad_norm")
        if norm is not None and norm > high:
            return f"the other layers' gradients explode ({largest_layer}: {norm:.3g}); see there"
    layers = stats.layers
    sigmoids = [s for s in layers[index:-1] if s.activation == "sigmoid"]
    if sigmoids:
        count = "1 sigmoid layer" if len(sigmoids) == 1 else f"{len(sigmoids)} sigmoid layers"
        return (
            f"{count} on its way back each scale the gradient by at most 0.25: use relu or "
            "tanh in the hidden layers, or fewer layers"
        )
    fixes = ["use fewer layers"]
    if smaller_weights(layers[index]) is not None:
        fixes.append("start from glorot/he weights")
    return _either(fixes)


def update_low_fix(stats: StepStatistics, vanishing: bool, settings: Settings) -> str:
    """Why a layer barely moves when no dead or saturated units explain it, never
    contradicting a call to lower the learning rate: a clause to follow "barely learns"."""
    if vanishing:
        return ", as its gradient vanishes (see that warning)"
    fast = too_fast(stats, settings)
    if fast is not None:
        return (
            f", while {fast}: one learning rate cannot suit both; lower it first, or use "
            "adam, whose steps are scaled per weight"
        )
    return ": raise the learning rate or check its gradients"


def _largest_input(stats: StepStatistics) -> float:
    """The largest |x| of the batch, when it is an array of real numbers (token ids and
    an attached model's dicts of inputs are not scaled: 0)."""
    x = stats.arrays.x
    if x is None:
        return 0.0
    try:
        host = np.asarray(stats.to_host(x))
    except (TypeError, ValueError, AttributeError):
        return 0.0
    if host.dtype.kind != "f" or not host.size:
        return 0.0
    return float(np.abs(host).max())


def _either(fixes: list[str]) -> str:
    if len(fixes) == 1:
        return fixes[0]
    return ", ".join(fixes[:-1]) + " or " + fixes[-1]
