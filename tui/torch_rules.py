"""The chain rule of a torch module's weight, in torch's own layout, with this step's numbers.

Pure functions of the step's arrays (as recorded: ``a_prev`` the module's input,
``dL_dz`` dL/d(its output)) and the layer's view, giving the same :class:`Rule`
as the scenario layers' rules (layer_rules.py), which the chain-rule pane draws
and checks against the gradient backprop produced.

nn.Linear, weight (out, in) as torch stores it, z = a_prev·Wᵀ + b:

    dL/dW[j, i] = Σ_b dL/dz[b, j] · a_prev[b, i]      dL/db[j] = Σ_b dL/dz[b, j]

(an input of more dimensions, (batch, T, in), adds every position to the sum).

nn.Conv2d, weight (out, in, kh, kw), arrays (N, C, H, W), stride s, padding p,
dilation d (groups of one):

    dL/dW[f, c, i, j] = Σ_b Σ_(y,x) a_prev[b, c, y·s + i·d − p, x·s + j·d − p] · dL/dz[b, f, y, x]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from backprop_tui.core import LayerView

from .layer_rules import Rule


def _per_sample(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    sums: np.ndarray[Any, Any] = values.reshape(len(values), -1).sum(axis=1)
    return sums


def linear_rule(
    spec: LayerView, param: str, index: tuple[int, ...], arrays: Mapping[str, Any]
) -> Rule | None:
    """The rule of weight ``[j, i]`` (output j, input i) of an nn.Linear."""
    if "dL_dz" not in arrays or "a_prev" not in arrays or len(index) != 2:
        return None
    a_prev, dz = np.asarray(arrays["a_prev"]), np.asarray(arrays["dL_dz"])
    if a_prev.ndim < 2 or dz.shape[:-1] != a_prev.shape[:-1]:
        return None
    j, i = index
    batch = len(dz)
    a_i = a_prev[..., i].reshape(batch, -1)
    dz_j = dz[..., j].reshape(batch, -1)
    positions = a_i.shape[1]
    per_sample = (a_i * dz_j).sum(axis=1)
    over = "Σ_b" if positions == 1 else f"Σ_b Σ_t ({positions} positions a sample)"
    formula = [
        f"dL/dW[{j},{i}] = {over} dL/dz[b,{j}] · a_prev[b,{i}]",
        f"weight {spec.inputs}×{spec.units} as torch stores it (out, in): row {j} is output "
        f"{j}, column {i} input {i}; z = a_prev·Wᵀ + b",
    ]
    bias = next((n for n in spec.param_names if n.endswith("bias")), None)
    if bias is not None:
        formula.append(f"dL/db[{j}] = {over} dL/dz[b,{j}] = {float(dz_j.sum()):.6g}")
    shown = [f"{a_i[0, t]:.3g}·{dz_j[0, t]:.3g}" for t in range(min(positions, 4))]
    return Rule(
        formula,
        [
            (f"a_prev[b,{i}]" if positions == 1 else f"Σ_t a_prev[b,t,{i}]", a_i.sum(axis=1)),
            (f"dL/dz[b,{j}]" if positions == 1 else f"Σ_t dL/dz[b,t,{j}]", dz_j.sum(axis=1)),
            ("a_prev·dL/dz" if positions == 1 else "Σ_t a_prev·dL/dz", per_sample),
        ],
        float(per_sample.sum()),
        batch * positions,
        "" if positions == 1 else "b=0: " + " + ".join(shown) + (" + …" if positions > 4 else ""),
    )


def conv_index(grad: np.ndarray[Any, Any]) -> tuple[int, int, int, int]:
    """The weight whose gradient is largest in size this step, where the rule is shown."""
    flat = int(np.argmax(np.abs(grad)))
    f, c, i, j = (int(n) for n in np.unravel_index(flat, grad.shape))
    return f, c, i, j


def conv2d_rule(
    spec: LayerView, index: tuple[int, int, int, int], arrays: Mapping[str, Any]
) -> Rule | None:
    """The rule of weight ``[f, c, i, j]`` of an nn.Conv2d, channels first."""
    if "dL_dz" not in arrays or "a_prev" not in arrays or len(spec.kernel_shape) != 4:
        return None
    a_prev, dz = np.asarray(arrays["a_prev"]), np.asarray(arrays["dL_dz"])
    out, cin, kh, kw = spec.kernel_shape
    if a_prev.ndim != 4 or dz.ndim != 4 or a_prev.shape[1] != cin or spec.padding != "valid":
        return None  # groups, or padding="same": not written out here
    f, c, i, j = index
    (sh, sw), (ph, pw), (dh, dw) = spec.strides, spec.pads, spec.dilation
    _, _, oh, ow = dz.shape
    padded = np.pad(a_prev, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    top, left = i * dh, j * dw
    patch = padded[:, c, top : top + sh * (oh - 1) + 1 : sh, left : left + sw * (ow - 1) + 1 : sw]
    if patch.shape[1:] != (oh, ow):
        return None
    products = patch * dz[:, f]
    per_sample = _per_sample(products)
    where_y = f"y·{sh}+{i * dh - ph}" if ph or dh != 1 else f"y·{sh}+{i}"
    where_x = f"x·{sw}+{j * dw - pw}" if pw or dw != 1 else f"x·{sw}+{j}"
    shown = [
        f"{patch[0, y, x]:.3g}·{dz[0, f, y, x]:.3g}"
        for y, x in np.ndindex(oh, ow)
        if dz[0, f, y, x] != 0.0
    ][:4]
    return Rule(
        [
            f"dL/dW[{f},{c},{i},{j}] = Σ_b Σ_(y,x) a_prev[b,{c},{where_y},{where_x}] · "
            f"dL/dz[b,{f},y,x]",
            f"weight {out}×{cin}×{kh}×{kw} as torch stores it (out, in, kh, kw); a_prev and "
            f"dL/dz (N, C, H, W); {oh * ow} positions a sample"
            + ("; padding counts as 0" if ph or pw else ""),
            "shown at the weight with the largest |dL/dW| this step",
        ],
        [
            (f"Σ_yx dL/dz[b,{f},·,·]", _per_sample(dz[:, f])),
            ("Σ_yx patch·dL/dz", per_sample),
        ],
        float(per_sample.sum()),
        dz.shape[0] * oh * ow,
        ("b=0: " + " + ".join(shown) + (" + …" if len(shown) == 4 else "")) if shown else "",
    )
