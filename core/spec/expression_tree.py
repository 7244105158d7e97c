"""The parsed form of a breakpoint expression: small node classes, evaluated against a step.

:mod:`.expressions` builds these from text. A value is a float or undefined
(``None``: ``val_loss`` before the first epoch ends, say). Undefined spreads
through arithmetic, and every comparison with it is false. A bare value is true
when it is defined and non-zero; ``and``, ``or``, ``not`` and comparisons give
1.0 or 0.0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

Value = float | None
FLAGS = ("nan", "inf")  # 1 when a tensor of the step holds one


class Environment(Protocol):
    """What an expression reads: the state after one full training step."""

    def value(self, name: str) -> Value:
        """A scalar or flag of :data:`SCALARS` / :data:`FLAGS`; None when undefined."""

    def layer_value(self, function: str, layer: str | None) -> Value:
        """One of :data:`LAYER_FUNCTIONS` for a layer, or the whole network when None."""

    def describe(self, name: str) -> str:
        """Words for a flag that is set, e.g. where the first NaN appeared."""


@dataclass(frozen=True)
class Node:
    """A piece of the expression; ``start:end`` is its span in the text."""

    start: int
    end: int

    def evaluate(self, env: Environment) -> Value:
        raise NotImplementedError

    def leaves(self) -> Iterator[Node]:
        """The names and layer functions inside, in reading order."""
        yield from ()


@dataclass(frozen=True)
class Number(Node):
    value: float

    def evaluate(self, env: Environment) -> Value:
        return self.value


@dataclass(frozen=True)
class Name(Node):
    name: str

    def evaluate(self, env: Environment) -> Value:
        return _float(env.value(self.name))

    def leaves(self) -> Iterator[Node]:
        yield self


@dataclass(frozen=True)
class LayerCall(Node):
    """``grad_norm(hidden)``; ``layer`` is None for the network-wide ``grad_norm``."""

    function: str
    layer: str | None

    def evaluate(self, env: Environment) -> Value:
        return _float(env.layer_value(self.function, self.layer))

    def leaves(self) -> Iterator[Node]:
        yield self


@dataclass(frozen=True)
class Negate(Node):
    operand: Node

    def evaluate(self, env: Environment) -> Value:
        value = self.operand.evaluate(env)
        return None if value is None else -value

    def leaves(self) -> Iterator[Node]:
        yield from self.operand.leaves()


@dataclass(frozen=True)
class Not(Node):
    operand: Node

    def evaluate(self, env: Environment) -> Value:
        return 0.0 if truthy(self.operand.evaluate(env)) else 1.0

    def leaves(self) -> Iterator[Node]:
        yield from self.operand.leaves()


@dataclass(frozen=True)
class Logic(Node):
    op: str  # "and" | "or"
    left: Node
    right: Node

    def evaluate(self, env: Environment) -> Value:
        left = truthy(self.left.evaluate(env))
        if self.op == "and":
            return 1.0 if left and truthy(self.right.evaluate(env)) else 0.0
        return 1.0 if left or truthy(self.right.evaluate(env)) else 0.0

    def leaves(self) -> Iterator[Node]:
        yield from self.left.leaves()
        yield from self.right.leaves()


def _divide(a: float, b: float) -> Value:
    return None if b == 0 else a / b


_ARITHMETIC: dict[str, Callable[[float, float], Value]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


@dataclass(frozen=True)
class Arithmetic(Node):
    op: str
    left: Node
    right: Node

    def evaluate(self, env: Environment) -> Value:
        left, right = self.left.evaluate(env), self.right.evaluate(env)
        if left is None or right is None:
            return None
        return _ARITHMETIC[self.op](left, right)

    def leaves(self) -> Iterator[Node]:
        yield from self.left.leaves()
        yield from self.right.leaves()


@dataclass(frozen=True)
class Compare(Node):
    """``a < b <= c``: every neighbouring pair holds; false when any side is undefined."""

    operands: tuple[Node, ...]
    ops: tuple[str, ...]

    def values(self, env: Environment) -> list[Value]:
        return [operand.evaluate(env) for operand in self.operands]

    def evaluate(self, env: Environment) -> Value:
        values = self.values(env)
        for op, left, right in zip(self.ops, values[:-1], values[1:], strict=True):
            if left is None or right is None or not _COMPARE[op](left, right):
                return 0.0
        return 1.0

    def leaves(self) -> Iterator[Node]:
        for operand in self.operands:
            yield from operand.leaves()


def _float(value: Value) -> Value:
    return None if value is None else float(value)


def truthy(value: Value) -> bool:
    return value is not None and value != 0


def format_value(value: Value) -> str:
    """A number as the log shows it: ``153.2``, ``3``, ``1.2e-07``, ``undefined``."""
    if value is None:
        return "undefined"
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


@dataclass(frozen=True, eq=False)
class Expression:
    """A parsed breakpoint expression: evaluate it, or explain why it holds."""

    text: str
    root: Node

    def value(self, env: Environment) -> Value:
        return self.root.evaluate(env)

    def holds(self, env: Environment) -> bool:
        return truthy(self.root.evaluate(env))

    def source(self, node: Node) -> str:
        return self.text[node.start : node.end]

    def explain(self, env: Environment) -> str:
        """Why the expression holds, with the numbers: ``grad_norm(hidden) = 153.2 > 100``."""
        return self._explain(self.root, env)

    def _explain(self, node: Node, env: Environment) -> str:
        if isinstance(node, Logic):
            if node.op == "or":
                left_holds = truthy(node.left.evaluate(env))
                return self._explain(node.left if left_holds else node.right, env)
            return f"{self._explain(node.left, env)} and {self._explain(node.right, env)}"
        if isinstance(node, Compare):
            parts = [self._operand(node.operands[0], env)]
            for op, operand in zip(node.ops, node.operands[1:], strict=True):
                parts += [op, self._operand(operand, env)]
            return " ".join(parts)
        if isinstance(node, Name) and node.name in FLAGS:
            return f"{node.name}: {env.describe(node.name)}"
        if isinstance(node, (Name, LayerCall, Arithmetic, Negate)):
            return self._operand(node, env)
        values = ", ".join(
            f"{self.source(leaf)} = {format_value(leaf.evaluate(env))}" for leaf in node.leaves()
        )
        return f"{self.source(node)} ({values})" if values else self.source(node)

    def _operand(self, node: Node, env: Environment) -> str:
        if isinstance(node, Number):
            return self.source(node)
        return f"{self.source(node)} = {format_value(node.evaluate(env))}"

    def layers(self) -> set[str]:
        """The layers the expression reads."""
        return {
            leaf.layer for leaf in self.root.leaves() if isinstance(leaf, LayerCall) and leaf.layer
        }
