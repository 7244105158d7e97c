"""The chain rule of a conv2d or batch normalization parameter, with this step's numbers.

Pure functions of the step's arrays (as recorded) and the layer's view: the
formula, one column per sample of the batch (its share of the sum) and the sum,
which the chain-rule pane checks against the gradient backprop produced.

conv2d, weight ``kernel[i, j, c, f]`` and stride (sh, sw):

    dL/dw = Σ_b Σ_(y, x) a_prev[b, y·sh + i, x·sw + j, c] · dL/dz[b, y, x, f]

(a_prev padded as the layer padded it); bias ``b[f]``: Σ_b Σ_(y, x) dL/dz[b, y, x, f].
batch normalization, ``gamma[c]``: Σ x̂ · dL/dz over the batch (and positions), with
x̂ = (a_prev − μ_B)/√(σ²_B + ε); ``beta[c]``: Σ dL/dz.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from backprop_tui.core import LayerView
from backprop_tui.core.maths.windows import pad, padding_of
from numpy.typing import NDArray


@dataclass(frozen=True, eq=False)
class Rule:
    """``formula`` lines; ``columns`` (header, one value per sample); ``total`` the sum,
    ``terms`` how many products it adds; ``example`` the first few products of sample 0."""

    formula: list[str]
    columns: list[tuple[str, NDArray[Any]]]
    total: float
    terms: int
    example: str = ""


def _samples(values: NDArray[Any]) -> NDArray[Any]:
    """Per-sample sums over every other axis."""
    sums: NDArray[Any] = values.reshape(len(values), -1).sum(axis=1)
    return sums


def conv_rule(
    spec: LayerView, param: str, index: tuple[int, ...], arrays: Mapping[str, Any]
) -> Rule | None:
    """The rule of a conv2d kernel weight or bias, or None before dL/dz exists."""
    if "dL_dz" not in arrays or "a_prev" not in arrays:
        return None
    dz = np.asarray(arrays["dL_dz"])  # (batch, oh, ow, filters)
    _, oh, ow, _ = dz.shape
    f = index[-1]
    positions = oh * ow
    if param == spec.bias:
        per_sample = _samples(dz[..., f])
        return Rule(
            [f"dL/db[{f}] = Σ_b Σ_(y,x) dL/dz[b,y,x,{f}]   ({positions} positions a sample)"],
            [(f"Σ_yx dL/dz[b,·,·,{f}]", per_sample)],
            float(per_sample.sum()),
            dz.shape[0] * positions,
        )
    i, j, c = index[0], index[1], index[2]
    kh, kw = spec.kernel_shape[0], spec.kernel_shape[1]
    sh, sw = spec.strides
    pads = padding_of(spec.input_shape, (kh, kw), (sh, sw), spec.padding)
    padded = pad(np.asarray(arrays["a_prev"]), pads)
    # The input each output position (y, x) multiplies this weight with.
    patch = padded[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, c]
    products = patch * dz[..., f]
    per_sample = _samples(products)
    shown = [
        f"{patch[0, y, x]:.3g}·{dz[0, y, x, f]:.3g}"
        for y, x in np.ndindex(oh, ow)
        if dz[0, y, x, f] != 0.0
    ][:4]
    top, left = pads[0][0], pads[1][0]
    where = f"y·{sh}+{i - top}, x·{sw}+{j - left}" if (top or left) else f"y·{sh}+{i}, x·{sw}+{j}"
    return Rule(
        [
            f"dL/dw[{i},{j},{c},{f}] = Σ_b Σ_(y,x) a_prev[b, {where}, {c}] · dL/dz[b,y,x,{f}]",
            f"{positions} positions a sample"
            + ("; padding counts as 0" if top or left or pads[0][1] or pads[1][1] else "")
            + ": the input under the weight times dL/dz",
        ],
        [
            (f"Σ_yx dL/dz[b,·,·,{f}]", _samples(dz[..., f])),
            ("Σ_yx patch·dL/dz", per_sample),
        ],
        float(per_sample.sum()),
        dz.shape[0] * positions,
        ("b=0: " + " + ".join(shown) + (" + …" if len(shown) == 4 else "")) if shown else "",
    )


def norm_rule(
    spec: LayerView, param: str, index: tuple[int, ...], arrays: Mapping[str, Any]
) -> Rule | None:
    """The rule of batch normalization's gamma or beta, or None before dL/dz exists."""
    if "dL_dz" not in arrays or "a_prev" not in arrays:
        return None
    dz = np.asarray(arrays["dL_dz"])
    c = index[-1]
    count = dz.size // dz.shape[-1]
    if param == spec.bias:  # beta
        per_sample = _samples(dz[..., c])
        return Rule(
            [f"dL/dβ[{c}] = Σ dL/dz[…,{c}]   (over the batch and positions)"],
            [(f"Σ dL/dz[b,…,{c}]", per_sample)],
            float(per_sample.sum()),
            count,
        )
    a_prev = np.asarray(arrays["a_prev"])[..., c]
    mean = a_prev.mean()
    x_hat = (a_prev - mean) / np.sqrt(a_prev.var() + spec.epsilon)
    per_sample = _samples(x_hat * dz[..., c])
    return Rule(
        [
            f"dL/dγ[{c}] = Σ x̂[…,{c}] · dL/dz[…,{c}]",
            f"x̂ = (a_prev − μ_B)/√(σ²_B + ε): μ_B {mean:.4g}, σ²_B {a_prev.var():.4g}, "
            f"ε {spec.epsilon:g}",
        ],
        [(f"x̂[b,{c}]" if x_hat.ndim == 1 else "Σ x̂", _samples(x_hat)), ("Σ x̂·dL/dz", per_sample)],
        float(per_sample.sum()),
        count,
    )


def rule_of(
    spec: LayerView, param: str, index: tuple[int, ...], arrays: Mapping[str, Any]
) -> Rule | None:
    if spec.kind == "conv2d":
        return conv_rule(spec, param, index, arrays)
    if spec.kind == "batch_normalization":
        return norm_rule(spec, param, index, arrays)
    return None
