"""The backward pass through one module call, as autograd recorded it: its ``grad_fn`` chain.

For a module whose chain rule is not written out as a formula (LayerNorm, GELU,
attention, a user's own module), the chain-rule pane shows what autograd does
instead: the backward functions from dL/d(output) to dL/d(input), each
parameter's gradient where it is accumulated, with shapes and norms. The nodes
are read once the backward pass has run, and only when the pane asks (the lines
are worked out when the record's ``grad_fn`` entry is read).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from .hooks import Call

__all__ = ["chain_lines"]

MOST_NODES = 12


def _shape(tensor: torch.Tensor | None) -> str:
    if tensor is None:
        return "?"
    return "×".join(str(n) for n in tensor.shape) or "scalar"


def _norm(tensor: torch.Tensor | None) -> str:
    if tensor is None:
        return "not reached"
    value = float(torch.linalg.vector_norm(tensor.detach().double()))
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def chain_lines(
    call: Call,
    input_grad: torch.Tensor | None,
    source: str | None,
    param_names: Mapping[int, str],
    grads: Mapping[str, torch.Tensor],
) -> tuple[str, ...]:
    """``call``'s backward, one line a node, from dL/d(output) down to dL/d(input).

    ``input_grad``: dL/d(input), the gradient of the layer ``source`` whose output is
    this call's input (None when the input is the data); ``param_names``: parameter
    names by ``id``; ``grads``: this step's gradients by name.
    """
    lines = [f"dL/d(output) {_shape(call.output)}  ‖·‖ {_norm(call.grad)}"]
    stop = call.input_fn
    queue: list[tuple[Any, int]] = [(call.grad_fn, 1)] if call.grad_fn is not None else []
    seen: set[int] = set()
    while queue and len(seen) < MOST_NODES:
        node, depth = queue.pop(0)
        if node is None or id(node) in seen or node is stop:
            continue
        seen.add(id(node))
        pad = "  " * depth
        variable = getattr(node, "variable", None)
        if isinstance(variable, torch.Tensor):  # AccumulateGrad: a parameter's gradient
            name = param_names.get(id(variable), "a leaf tensor")
            grad = grads.get(name)
            lines.append(f"{pad}→ {name} {_shape(variable)}  ‖dL/dθ‖ {_norm(grad)}")
            continue
        lines.append(f"{pad}← {type(node).__name__}")
        queue.extend((child, depth + 1) for child, _ in node.next_functions)
    if queue and len(seen) >= MOST_NODES:
        lines.append(f"  … more nodes (the first {MOST_NODES} shown)")
    given = f"dL/d(input) {_shape(call.a_prev)}"
    if source is not None:
        lines.append(f"{given}  ‖·‖ {_norm(input_grad)}  ({source}'s output)")
    elif stop is not None:
        lines.append(
            f"{given}: on to {type(stop).__name__}, made by the forward code between modules"
        )
    else:
        lines.append(f"{given}: the input is the data (no gradient); the chain stops here")
    return tuple(lines)
