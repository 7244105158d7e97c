"""Breakpoint expressions: a hand-written tokenizer and recursive-descent parser.

User text is never handed to ``eval``, ``exec`` or Python's ``ast``. It is
parsed once into the node classes of :mod:`.expression_tree` and evaluated
after each training step against an
:class:`~.expression_tree.Environment` (the step's statistics).

Grammar, lowest precedence first::

    expression := disjunction
    disjunction:= conjunction ("or" conjunction)*
    conjunction:= negation ("and" negation)*
    negation   := "not" negation | comparison
    comparison := sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)*
    sum        := product (("+" | "-") product)*
    product    := unary (("*" | "/") unary)*
    unary      := "-" unary | atom
    atom       := NUMBER | NAME | NAME "(" LAYER ")" | "(" expression ")"

A value is a float or undefined (``None``: ``val_loss`` before the first epoch
ends, say). Undefined spreads through arithmetic, and every comparison with it
is false. A bare value is true when it is defined and non-zero; ``and``,
``or``, ``not`` and comparisons give 1.0 or 0.0. Comparisons chain as in
mathematics: ``0.1 < loss < 1``.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ExpressionError
from .expression_tree import (
    FLAGS,
    Arithmetic,
    Compare,
    Environment,
    Expression,
    LayerCall,
    Logic,
    Name,
    Negate,
    Node,
    Not,
    Number,
)

if TYPE_CHECKING:
    from .scenario import Scenario


# Names that stand alone; ``nan`` and ``inf`` are flags (1 when a tensor of the step holds one).
SCALARS = (
    "loss",
    "val_loss",
    "accuracy",
    "val_accuracy",
    "step",
    "epoch",
    "grad_norm",
    "weight_norm",
    "update_ratio",
)
# Functions of a layer name; the first three also stand alone, over the whole network.
LAYER_FUNCTIONS = (
    "grad_norm",
    "weight_norm",
    "update_ratio",
    "dead_fraction",
    "saturated_fraction",
)
NEEDS_LAYER = ("dead_fraction", "saturated_fraction")
# Which activations each per-unit function makes sense for.
ACTIVATIONS_OF = {
    "dead_fraction": ("relu",),
    "saturated_fraction": ("sigmoid", "tanh"),
}
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
_DIGITS = "0123456789"
_SINGLE = "()+-*/"
_SPELLED = {"nan": "NaN", "inf": "Inf"}
# Bounds that keep parsing and evaluation far from Python's recursion limit.
MAX_TOKENS = 256
MAX_DEPTH = 32  # parentheses, not and unary minus inside one another
_MISTAKES = {
    "&&": "use 'and' to combine conditions",
    "||": "use 'or' to combine conditions",
    "!": "use 'not' to negate a condition",
    "=": "use '==' to compare",
}


@dataclass(frozen=True)
class Vocabulary:
    """What names an expression may use: the network's layers (name → activation)."""

    layers: Mapping[str, str]
    metrics: tuple[str, ...] = ("accuracy",)
    has_validation: bool = True

    @classmethod
    def of(cls, scenario: Scenario) -> Vocabulary:
        return cls(
            layers={layer.name: layer.activation for layer in scenario.layers},
            metrics=tuple(scenario.metrics),
            has_validation=scenario.data.has_validation,
        )


# ------------------------------------------------------------------ tokens
@dataclass(frozen=True)
class Token:
    kind: str  # "number", "name", "op" or "end"
    text: str
    start: int


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``end`` token at ``len(text)``."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in _DIGITS or (c == "." and i + 1 < n and text[i + 1] in _DIGITS):
            end = _scan_number(text, i)
            tokens.append(Token("number", text[i:end], i))
            i = end
        elif c.isalpha() or c == "_":
            end = i + 1
            while end < n and (text[end].isalnum() or text[end] == "_"):
                end += 1
            tokens.append(Token("name", text[i:end], i))
            i = end
        elif text.startswith(("<=", ">=", "==", "!=", "&&", "||"), i):
            tokens.append(Token("op", text[i : i + 2], i))
            i += 2
        elif c in "<>=!" or c in _SINGLE:
            tokens.append(Token("op", c, i))
            i += 1
        else:
            raise ExpressionError(f"unexpected character {c!r}", text, i)
    tokens.append(Token("end", "", n))
    return tokens


def _scan_number(text: str, i: int) -> int:
    """The end of the number starting at ``i``: ``12``, ``1.5``, ``.5``, ``1e-3``."""
    n = len(text)
    while i < n and text[i] in _DIGITS:
        i += 1
    if i < n and text[i] == ".":
        i += 1
        while i < n and text[i] in _DIGITS:
            i += 1
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if j >= n or text[j] not in _DIGITS:
            raise ExpressionError("a number's exponent needs digits, as in 1e-3", text, j)
        while j < n and text[j] in _DIGITS:
            j += 1
        i = j
    return i


# ------------------------------------------------------------------ parser
class _Parser:
    def __init__(self, text: str, vocabulary: Vocabulary) -> None:
        self.text = text
        self.vocabulary = vocabulary
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0
        if len(self.tokens) > MAX_TOKENS + 1:
            raise self.error(
                f"the expression is too long (over {MAX_TOKENS} pieces); "
                "split it into several breakpoints",
                self.tokens[MAX_TOKENS].start,
            )

    def nest(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nested more than {MAX_DEPTH} deep; simplify it", token.start)

    @property
    def token(self) -> Token:
        return self.tokens[self.pos]

    def error(self, message: str, column: int) -> ExpressionError:
        return ExpressionError(message, self.text, column)

    def accept(self, *texts: str) -> Token | None:
        token = self.token
        if token.kind in ("op", "name") and token.text in texts:
            self.pos += 1
            return token
        return None

    def parse(self) -> Node:
        if self.token.kind == "end":
            raise self.error("the expression is empty; write a condition such as loss < 0.01", 0)
        node = self.disjunction()
        token = self.token
        if token.kind != "end":
            raise self.unexpected(token, "a comparison such as <, the word and or or, or the end")
        return node

    def unexpected(self, token: Token, wanted: str) -> ExpressionError:
        if token.text in _MISTAKES:
            return self.error(_MISTAKES[token.text], token.start)
        if token.kind == "end":
            return self.error(f"the expression ends too early; expected {wanted}", token.start)
        return self.error(f"unexpected '{token.text}'; expected {wanted}", token.start)

    def disjunction(self) -> Node:
        node = self.conjunction()
        while self.accept("or"):
            right = self.conjunction()
            node = Logic(node.start, right.end, "or", node, right)
        return node

    def conjunction(self) -> Node:
        node = self.negation()
        while self.accept("and"):
            right = self.negation()
            node = Logic(node.start, right.end, "and", node, right)
        return node

    def negation(self) -> Node:
        token = self.accept("not")
        if token is not None:
            self.nest(token)
            operand = self.negation()
            self.depth -= 1
            return Not(token.start, operand.end, operand)
        return self.comparison()

    def comparison(self) -> Node:
        first = self.sum()
        operands, ops = [first], []
        while self.token.kind == "op" and self.token.text in COMPARISONS:
            ops.append(self.token.text)
            self.pos += 1
            operands.append(self.sum())
        if not ops:
            return first
        for operand in operands:
            self.refuse_flag(operand, "compared")
        return Compare(first.start, operands[-1].end, tuple(operands), tuple(ops))

    def sum(self) -> Node:
        node = self.product()
        while (token := self.accept("+", "-")) is not None:
            right = self.product()
            self.refuse_flag(node, "used in arithmetic")
            self.refuse_flag(right, "used in arithmetic")
            node = Arithmetic(node.start, right.end, token.text, node, right)
        return node

    def product(self) -> Node:
        node = self.unary()
        while (token := self.accept("*", "/")) is not None:
            right = self.unary()
            self.refuse_flag(node, "used in arithmetic")
            self.refuse_flag(right, "used in arithmetic")
            node = Arithmetic(node.start, right.end, token.text, node, right)
        return node

    def unary(self) -> Node:
        token = self.accept("-")
        if token is not None:
            self.nest(token)
            operand = self.unary()
            self.depth -= 1
            self.refuse_flag(operand, "negated with '-'")
            return Negate(token.start, operand.end, operand)
        return self.atom()

    def refuse_flag(self, node: Node, how: str) -> None:
        if isinstance(node, Name) and node.name in FLAGS:
            raise self.error(
                f"'{node.name}' is a flag, true when a tensor holds {_SPELLED[node.name]}, and "
                f"cannot be {how}; use it on its own, as in grad_norm > 100 or {node.name}",
                node.start,
            )

    def atom(self) -> Node:
        token = self.token
        if token.kind == "number":
            self.pos += 1
            return Number(token.start, token.start + len(token.text), float(token.text))
        if token.kind == "name" and token.text not in ("and", "or", "not"):
            self.pos += 1
            return self.name(token)
        if self.accept("("):
            self.nest(token)
            inner = self.disjunction()
            self.depth -= 1
            close = self.accept(")")
            if close is None:
                raise self.unexpected(
                    self.token, "')' to close the '(' at column " + str(token.start + 1)
                )
            return _span(inner, token.start, close.start + 1)
        raise self.unexpected(token, "a number, a name such as loss, or '('")

    def name(self, token: Token) -> Node:
        name, start = token.text, token.start
        end = start + len(name)
        called = self.token.kind == "op" and self.token.text == "("
        if name in LAYER_FUNCTIONS and (called or name in NEEDS_LAYER):
            if not called:
                raise self.error(
                    f"{name} needs a layer, as in {name}({self.example_layer(name)})", start
                )
            return self.layer_call(name, start)
        if called:
            if name in SCALARS or name in FLAGS:
                raise self.error(f"'{name}' takes no layer; write it on its own", end)
            raise self.error(
                f"unknown function '{name}'{self.hint(name, LAYER_FUNCTIONS)}; "
                f"functions: {', '.join(LAYER_FUNCTIONS)}",
                start,
            )
        if name in FLAGS:
            return Name(start, end, name)
        if name in SCALARS:
            self.check_available(name, start)
            if name in LAYER_FUNCTIONS:
                return LayerCall(start, end, name, None)
            return Name(start, end, name)
        known = (*SCALARS, *FLAGS, *LAYER_FUNCTIONS[3:])
        if name in self.vocabulary.layers:
            raise self.error(
                f"'{name}' is a layer; use it inside a function, as in grad_norm({name})", start
            )
        raise self.error(
            f"unknown name '{name}'{self.hint(name, known)}; names: {', '.join(known)}", start
        )

    def check_available(self, name: str, start: int) -> None:
        v = self.vocabulary
        if name in ("accuracy", "val_accuracy") and "accuracy" not in v.metrics:
            raise self.error(
                f"the scenario computes no accuracy, so {name} is never defined; "
                "add metrics: [accuracy] to it",
                start,
            )
        if name.startswith("val_") and not v.has_validation:
            raise self.error(
                f"the scenario has no validation data, so {name} is never defined; "
                "set data.validation_split",
                start,
            )

    def layer_call(self, function: str, start: int) -> Node:
        self.pos += 1  # the "("
        token = self.token
        if token.kind != "name":
            raise self.unexpected(
                token, f"a layer name, as in {function}({self.example_layer(function)})"
            )
        layers = self.vocabulary.layers
        if token.text not in layers:
            raise self.error(
                f"unknown layer '{token.text}'{self.hint(token.text, tuple(layers))}; "
                f"layers: {', '.join(layers) or 'none'}",
                token.start,
            )
        allowed = ACTIVATIONS_OF.get(function)
        activation = layers[token.text]
        if allowed is not None and activation not in allowed:
            raise self.error(
                f"{function} applies to {' or '.join(allowed)} layers; "
                f"'{token.text}' uses {activation}",
                token.start,
            )
        self.pos += 1
        close = self.accept(")")
        if close is None:
            raise self.unexpected(self.token, f"')' after the layer name '{token.text}'")
        return LayerCall(start, close.start + 1, function, token.text)

    def example_layer(self, function: str) -> str:
        allowed = ACTIVATIONS_OF.get(function)
        for layer, activation in self.vocabulary.layers.items():
            if allowed is None or activation in allowed:
                return layer
        return "hidden"

    @staticmethod
    def hint(word: str, options: tuple[str, ...]) -> str:
        close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
        return f" (did you mean '{close[0]}'?)" if close else ""


def _span(node: Node, start: int, end: int) -> Node:
    """``node`` with its span widened to include the parentheses around it."""
    return dataclasses.replace(node, start=start, end=end)


def parse(text: str, vocabulary: Vocabulary) -> Expression:
    """Parse a breakpoint expression; raise :class:`ExpressionError` with the column at fault."""
    if not isinstance(text, str):
        raise ExpressionError("a breakpoint expression must be text", str(text), 0)
    return Expression(text, _Parser(text, vocabulary).parse())


__all__ = ["FLAGS", "Environment", "Expression", "ExpressionError", "Vocabulary", "parse"]
