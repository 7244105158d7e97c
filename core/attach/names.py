"""Breakpoint expressions on module paths: ``grad_norm(encoder.0.fc1) > 10``.

The expression language reads a layer as one identifier; module paths hold
dots (and ``#`` for a repeated call). Each such name inside a function's
parentheses is swapped for a stand-in identifier of the same length (so every
column the parser reports still points into the user's text), parsed, and
swapped back in the parsed tree.
"""

from __future__ import annotations

import dataclasses
import re
import string
from collections.abc import Mapping
from typing import Any

from ..errors import ExpressionError
from ..spec.expression_tree import Expression, LayerCall, Node
from ..spec.expressions import Vocabulary, parse

__all__ = ["parse_on_modules"]

_CALL = re.compile(r"\(\s*([^()\s]+)\s*\)")
_LETTERS = string.ascii_letters
_TAIL = string.digits + string.ascii_letters + "_"


def _stand_ins(names: list[str]) -> dict[str, str]:
    """A plain identifier of the same length for each name that is not one."""
    out: dict[str, str] = {}
    used = set(names)
    counters: dict[int, int] = {}
    for name in names:
        if name.isidentifier():
            continue
        width = len(name)
        while True:
            i = counters.get(width, 0)
            counters[width] = i + 1
            alias = _code(i, width)
            if alias not in used:
                break
        used.add(alias)
        out[name] = alias
    return out


def _code(i: int, width: int) -> str:
    """The ``i``-th identifier of ``width`` characters (letters alone for one character)."""
    if width == 1:
        return _LETTERS[i % len(_LETTERS)] if i < len(_LETTERS) else f"_{i}"
    digits = ""
    for _ in range(width - 1):
        digits = _TAIL[i % len(_TAIL)] + digits
        i //= len(_TAIL)
    return "_" + digits if i == 0 else f"_{i}{digits}"


def _rename(node: Node, back: Mapping[str, str]) -> Node:
    if isinstance(node, LayerCall) and node.layer is not None and node.layer in back:
        return dataclasses.replace(node, layer=back[node.layer])
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Node):
            changes[f.name] = _rename(value, back)
        elif isinstance(value, tuple) and value and all(isinstance(v, Node) for v in value):
            changes[f.name] = tuple(_rename(v, back) for v in value)
    return dataclasses.replace(node, **changes) if changes else node


def parse_on_modules(
    text: str, activations: Mapping[str, str], metrics: tuple[str, ...]
) -> Expression:
    """Parse ``text`` against layers named by module path (``activations``: name → activation)."""
    alias = _stand_ins(list(activations))
    if not isinstance(text, str) or not alias:
        vocabulary = Vocabulary(dict(activations), metrics, has_validation=False)
        return parse(text, vocabulary)
    back = {v: k for k, v in alias.items()}

    def swap(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in alias and not name.isidentifier():  # an unknown path: named as one
            fresh = _stand_ins([*activations, *alias, name]).get(name)
            if fresh is None or fresh in back:
                return match.group(0)
            alias[name], back[fresh] = fresh, name
        if name not in alias:
            return match.group(0)
        start, end = match.span(1)
        whole = match.group(0)
        offset = match.start(0)
        return whole[: start - offset] + alias[name] + whole[end - offset :]

    swapped = _CALL.sub(swap, text)
    layers = {alias.get(k, k): v for k, v in activations.items()}
    try:
        parsed = parse(swapped, Vocabulary(layers, metrics, has_validation=False))
    except ExpressionError as err:
        raise ExpressionError(_unswap(err.message, back), text, err.column) from None
    return Expression(text, _rename(parsed.root, back))


def _unswap(message: str, back: Mapping[str, str]) -> str:
    """``message`` with the stand-ins it quotes, calls or lists named as the user named them."""
    for stand_in, name in back.items():
        message = message.replace(f"'{stand_in}'", f"'{name}'")
        message = message.replace(f"({stand_in})", f"({name})")
    head, found, listed = message.partition("layers: ")
    if found:
        names = [back.get(item, item) for item in listed.split(", ")]
        message = head + found + ", ".join(names)
    return message
