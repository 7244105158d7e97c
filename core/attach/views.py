"""How an attached model's layers and optimizer are described to the panes.

A layer's weight matrix is shown as torch stores it, flattened to two
dimensions: ``LayerView.inputs`` × ``LayerView.units`` are the rows × columns
of ``weight.reshape(weight.shape[0], -1)``. For ``nn.Linear`` that is
out_features × in_features (torch's ``(out, in)`` layout), so a cursor's
``(row, col)`` is the index ``set_weight`` takes, with no transposition
anywhere. ``LayerView.kernel`` names a 2-D weight only; a layer whose weight
has more dimensions (a convolution) or none (ReLU, Dropout) has ``kernel``
None. ``bias`` is always None: a torch bias has one number per row (output),
and the panes draw a bias as one more row, one number per column; the bias is
still among ``param_names``, ``params``, ``grads`` and the update table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..runview import LayerView
from .hooks import LayerInfo

__all__ = ["ACTIVATIONS", "layer_view", "term_names_of", "update_rule_of"]

ACTIVATIONS = {
    "ReLU": "relu",
    "ReLU6": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "GELU": "gelu",
    "SiLU": "silu",
    "Softmax": "softmax",
    "LogSoftmax": "log_softmax",
    "LeakyReLU": "leaky_relu",
    "ELU": "elu",
}


def layer_view(
    info: LayerInfo,
    params: dict[str, nn.Parameter],
    output: torch.Tensor | None,
    a_prev: torch.Tensor | None = None,
) -> LayerView:
    kind = type(info.module).__name__
    owned = [(n, params[n]) for n in info.param_names if n in params]
    kernel_name: str | None = None
    for name, p in owned:
        if p.ndim == 2 and (name.endswith("weight") or kernel_name is None):
            kernel_name = name
            if name.endswith("weight"):
                break
    rows = cols = 0
    if kernel_name is not None:
        rows, cols = (int(n) for n in params[kernel_name].shape)
    shape = tuple(int(n) for n in output.shape[1:]) if output is not None else ()
    if kernel_name is None:
        # No matrix to lay out: in and out are the per-sample sizes.
        cols = 1
        for n in shape:
            cols *= n
        rows = cols
    in_shape = tuple(int(n) for n in a_prev.shape[1:]) if a_prev is not None else ()
    module = info.module
    conv = isinstance(module, nn.Conv2d)
    weight = getattr(module, "weight", None) if conv else None
    return LayerView(
        name=info.name,
        kind=kind,
        inputs=rows,
        units=cols,
        activation=ACTIVATIONS.get(kind),
        param_names=info.param_names,
        kernel=kernel_name,
        bias=None,  # a torch bias runs along the rows (out), never along the columns
        output_shape=shape,
        input_shape=in_shape,
        kernel_shape=tuple(int(n) for n in weight.shape)
        if isinstance(weight, torch.Tensor)
        else (),
        strides=_pair(module.stride) if conv else (1, 1),
        padding=module.padding if conv and isinstance(module.padding, str) else "valid",
        channels_first=len(shape) == 3 or len(in_shape) == 3,
        total_params=sum(p.numel() for _, p in owned),
        pads=_pair(module.padding) if conv and not isinstance(module.padding, str) else (0, 0),
        dilation=_pair(module.dilation) if conv else (1, 1),
    )


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[-1]))


_RULES = {
    "SGD": "new = w − lr·g",
    "SGD+momentum": "b = μ·b + g (b = g at the first step); new = w − lr·b",
    "Adam": "new = w − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε); m = exp_avg, v = exp_avg_sq",
    "AdamW": "new = w·(1 − lr·λ) − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε); m = exp_avg, v = exp_avg_sq",
    "RMSprop": "v = α·v + (1−α)·g²; new = w − lr·g/(√v + ε); v = square_avg",
    "Adagrad": "s = s + g²; new = w − lr·g/(√s + ε); s = sum",
}


def update_rule_of(optimizer: torch.optim.Optimizer) -> str:
    name = type(optimizer).__name__
    if name == "SGD" and any(g.get("momentum", 0) for g in optimizer.param_groups):
        name = "SGD+momentum"
    rule = _RULES.get(name)
    if rule is None:
        return f"{type(optimizer).__name__}.step(); change = new − w, measured"
    return rule + "; change = new − w, measured"


def term_names_of(optimizer: torch.optim.Optimizer, clipping: bool) -> tuple[str, ...]:
    """The optimizer's own per-parameter state (what it holds now), then lr and the clip factor."""
    seen: dict[str, None] = {}
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.ndim > 0:
                seen[key] = None
        break
    if not seen:
        seen = dict.fromkeys(_EXPECTED.get(type(optimizer).__name__, ()))
        if type(optimizer).__name__ == "SGD" and not any(
            g.get("momentum", 0) for g in optimizer.param_groups
        ):
            seen = {}
    names = (*seen, "lr")
    return (*names, "clip") if clipping else names


_EXPECTED: dict[str, tuple[str, ...]] = {
    "SGD": ("momentum_buffer",),
    "Adam": ("exp_avg", "exp_avg_sq"),
    "AdamW": ("exp_avg", "exp_avg_sq"),
    "RMSprop": ("square_avg",),
    "Adagrad": ("sum",),
}


def state_terms(states: Mapping[Any, Mapping[str, Any]], p: torch.Tensor) -> dict[str, Any]:
    """``p``'s optimizer state tensors that have its shape, from ``states`` (an optimizer's
    ``state``): the optimizer's own, which its next step writes into (see :mod:`.live`)."""
    state = states.get(p, {})
    return {
        k: v.detach()
        for k, v in state.items()
        if isinstance(v, torch.Tensor) and v.shape == p.shape and v.ndim > 0
    }
