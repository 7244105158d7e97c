"""Breakpoint expressions: values, undefined values, explanations and errors with columns."""

from __future__ import annotations

import ast
import builtins
import math
from typing import Any

import pytest
from backprop_tui.core.errors import ExpressionError
from backprop_tui.core.spec.expressions import Vocabulary, parse, tokenize
from hypothesis import given, settings
from hypothesis import strategies as st

VOCAB = Vocabulary({"hidden": "relu", "squash": "tanh", "output": "sigmoid"})


class Env:
    """A step whose numbers are written out by hand."""

    def __init__(self, **overrides: float | None) -> None:
        self.values: dict[str, float | None] = {
            "loss": 0.5,
            "val_loss": None,  # no epoch has ended yet
            "accuracy": 0.75,
            "val_accuracy": None,
            "step": 12.0,
            "epoch": 3.0,
            "nan": 0.0,
            "inf": 0.0,
        }
        self.layers: dict[tuple[str, str | None], float | None] = {
            ("grad_norm", None): 160.0,
            ("grad_norm", "hidden"): 153.2,
            ("grad_norm", "squash"): 2e-6,
            ("grad_norm", "output"): 0.02,
            ("weight_norm", None): 9.0,
            ("weight_norm", "hidden"): 4.0,
            ("update_ratio", None): 1e-3,
            ("update_ratio", "output"): 0.25,
            ("dead_fraction", "hidden"): 0.75,
            ("saturated_fraction", "squash"): 0.0,
        }
        for key, value in overrides.items():
            if key in self.values:
                self.values[key] = value
            else:
                function, layer = key.rsplit("__", 1)
                self.layers[(function, None if layer == "all" else layer)] = value

    def value(self, name: str) -> float | None:
        return self.values[name]

    def layer_value(self, function: str, layer: str | None) -> float | None:
        return self.layers.get((function, layer))

    def describe(self, name: str) -> str:
        return f"{name} first appeared in the backward pass, layer hidden, dL/dz"


GOOD: list[tuple[str, bool]] = [
    ("loss < 1", True),
    ("loss<1", True),
    ("loss < 0.01", False),
    ("loss <= 0.5", True),
    ("loss >= .5", True),
    ("loss == 0.5", True),
    ("loss != 0.5", False),
    ("loss > 5e-1", False),
    ("loss < 5E-1", False),
    ("loss > 1e-3", True),
    ("loss < 1.5e+0", True),
    ("grad_norm > 100", True),
    ("grad_norm(hidden) > 100", True),
    ("grad_norm( hidden ) > 153.3", False),
    ("grad_norm(output) > 100 or grad_norm(hidden) > 100", True),
    ("grad_norm(output) > 100 and grad_norm(hidden) > 100", False),
    ("not grad_norm(output) > 100", True),
    ("not not loss < 1", True),
    ("step >= 12 and epoch == 3", True),
    ("(step >= 100 or epoch > 2) and accuracy > 0.7", True),
    ("step >= 100 or epoch > 2 and accuracy > 0.8", False),  # and binds tighter
    ("0.1 < loss < 1", True),
    ("0.1 < loss < 0.2", False),
    ("1 < 2 < 3 < 4", True),
    ("grad_norm(squash) < 1e-4 * grad_norm(output)", True),
    ("grad_norm(hidden) / grad_norm(output) > 1000", True),
    ("loss + 1 == 1.5", True),
    ("loss - 1 == -0.5", True),
    ("-loss < 0", True),
    ("- -loss > 0", True),
    ("2 * 3 + 1 == 7", True),
    ("2 * (3 + 1) == 8", True),
    ("8 / 2 / 2 == 2", True),
    ("10 - 4 - 3 == 3", True),
    ("weight_norm > weight_norm(hidden)", True),
    ("update_ratio(output) > 0.1", True),
    ("update_ratio < 0.01", True),
    ("dead_fraction(hidden) > 0.5", True),
    ("saturated_fraction(squash) > 0.5", False),
    ("dead_fraction(hidden)", True),  # a bare number: true when non-zero
    ("saturated_fraction(squash)", False),
    ("nan", False),
    ("inf", False),
    ("grad_norm > 100 or nan", True),
    ("nan or inf", False),
    ("0", False),
    ("3", True),
    # undefined: val_loss before the first epoch ends
    ("val_loss < 1", False),
    ("val_loss > 1", False),
    ("val_loss == val_loss", False),
    ("val_loss", False),
    ("not val_loss < 1", True),
    ("val_loss + 1 > 0", False),
    ("val_loss < 1 or loss < 1", True),
    ("1 / 0 > 0", False),  # division by zero is undefined, not an error
    ("update_ratio(squash) > 0", False),  # the environment has no number for it
]


@pytest.mark.parametrize(("text", "expected"), GOOD)
def test_good_expressions_evaluate(text: str, expected: bool) -> None:
    expr = parse(text, VOCAB)
    assert expr.holds(Env()) is expected
    assert expr.text == text


def test_values_follow_the_environment() -> None:
    expr = parse("grad_norm(hidden) > 100", VOCAB)
    assert expr.holds(Env(grad_norm__hidden=100.5))
    assert not expr.holds(Env(grad_norm__hidden=99.5))
    assert not expr.holds(Env(grad_norm__hidden=None))
    assert not expr.holds(Env(grad_norm__hidden=math.nan))
    assert parse("val_loss < 1", VOCAB).holds(Env(val_loss=0.3))
    assert parse("nan", VOCAB).holds(Env(nan=1.0))
    assert parse("grad_norm > 100 or inf", VOCAB).holds(Env(grad_norm__all=1.0, inf=1.0))


def test_arithmetic_values() -> None:
    env = Env()
    assert parse("loss * 4 - 1", VOCAB).value(env) == 1.0
    assert parse("-(loss + 1) / 3", VOCAB).value(env) == -0.5
    assert parse("val_loss * 2", VOCAB).value(env) is None
    assert parse("loss < 1 and step > 3", VOCAB).value(env) == 1.0


@pytest.mark.parametrize(
    ("text", "env", "reason"),
    [
        ("grad_norm(hidden) > 100", Env(), "grad_norm(hidden) = 153.2 > 100"),
        ("100 < grad_norm(hidden)", Env(), "100 < grad_norm(hidden) = 153.2"),
        ("0.1 < loss < 1", Env(), "0.1 < loss = 0.5 < 1"),
        ("loss < 0.01 or step >= 12", Env(), "step = 12 >= 12"),
        ("loss < 1 and step >= 12", Env(), "loss = 0.5 < 1 and step = 12 >= 12"),
        (
            "grad_norm(squash) < 1e-4 * grad_norm(output)",
            Env(),
            "grad_norm(squash) = 2e-06 < 1e-4 * grad_norm(output) = 2e-06",
        ),
        ("dead_fraction(hidden)", Env(), "dead_fraction(hidden) = 0.75"),
        (
            "grad_norm > 1000 or nan",
            Env(nan=1.0),
            "nan: nan first appeared in the backward pass, layer hidden, dL/dz",
        ),
        ("not val_loss < 1", Env(), "not val_loss < 1 (val_loss = undefined)"),
        ("(loss < 1)", Env(), "loss = 0.5 < 1"),
    ],
)
def test_explain_gives_the_numbers(text: str, env: Env, reason: str) -> None:
    expr = parse(text, VOCAB)
    assert expr.holds(env)
    assert expr.explain(env) == reason


# (text, column of the caret, words the message must contain)
BAD: list[tuple[str, int, str]] = [
    ("", 0, "empty"),
    ("   ", 0, "empty"),
    ("loss <", 6, "ends too early"),
    ("loss < 1 and", 12, "ends too early"),
    ("loss = 1", 5, "'=='"),
    ("loss && step", 5, "'and'"),
    ("loss || step", 5, "'or'"),
    ("!nan", 0, "'not'"),
    ("loss ! 1", 5, "'not'"),
    ("los < 1", 0, "did you mean 'loss'"),
    ("Loss < 1", 0, "unknown name 'Loss'"),
    ("loss < x", 7, "unknown name 'x'"),
    ("grad_norm(hiden) > 1", 10, "did you mean 'hidden'"),
    ("grad_norm(nope) > 1", 10, "layers: hidden, squash, output"),
    ("grad_norm() > 1", 10, "a layer name"),
    ("grad_norm(1) > 1", 10, "a layer name"),
    ("grad_norm(hidden > 1", 17, "')'"),
    ("grad_norm(hidden output)", 17, "')' after the layer name 'hidden'"),
    ("grad_norm(hidden, output)", 16, "unexpected character ','"),
    ("dead_fraction > 0.5", 0, "needs a layer"),
    ("saturated_fraction < 1", 0, "saturated_fraction(squash)"),
    ("dead_fraction(output) > 0", 14, "relu"),
    ("saturated_fraction(hidden) > 0", 19, "sigmoid or tanh"),
    ("loss(hidden) < 1", 4, "takes no layer"),
    ("nan(hidden)", 3, "takes no layer"),
    ("norm(hidden) > 1", 0, "unknown function"),
    ("hidden > 1", 0, "is a layer"),
    ("nan > 1", 0, "flag"),
    ("loss < inf", 7, "flag"),
    ("nan + 1", 0, "flag"),
    ("2 * inf", 4, "flag"),
    ("-nan", 1, "flag"),
    ("(loss < 1", 9, "')' to close the '(' at column 1"),
    ("loss < 1)", 8, "unexpected ')'"),
    ("loss 1", 5, "unexpected '1'"),
    ("loss < 1 2", 9, "unexpected '2'"),
    ("1e", 2, "exponent"),
    ("1e+ > 0", 3, "exponent"),
    ("loss < 1.5.5", 10, "unexpected '.5'"),
    ("loss # comment", 5, "unexpected character '#'"),
    ("loss < $5", 7, "unexpected character '$'"),
    ("loss < 1 and and", 13, "unexpected 'and'"),
    ("or loss", 0, "unexpected 'or'"),
    ("()", 1, "unexpected ')'"),
    ("__import__(os)", 0, "unknown function '__import__'"),
    ("__import__('os')", 11, 'unexpected character "\'"'),
    ("loss.__class__", 4, "unexpected character '.'"),
]


@pytest.mark.parametrize(("text", "column", "words"), BAD)
def test_bad_expressions_point_at_the_fault(text: str, column: int, words: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(text, VOCAB)
    err = caught.value
    assert err.column == column, err.pointer()
    assert words in err.message
    assert err.text == text
    lines = err.pointer().split("\n")
    assert lines[0] == text
    assert lines[1].index("^") == column


def test_size_and_nesting_are_bounded() -> None:
    deep = "(" * 33 + "loss" + ")" * 33
    with pytest.raises(ExpressionError) as caught:
        parse(deep, VOCAB)
    assert caught.value.column == 32 and "nested" in caught.value.message
    assert parse("(" * 32 + "loss" + ")" * 32, VOCAB).holds(Env())
    with pytest.raises(ExpressionError, match="nested"):
        parse("not " * 40 + "nan", VOCAB)
    with pytest.raises(ExpressionError, match="nested"):
        parse("-" * 40 + "1", VOCAB)
    long = " or ".join(["nan"] * 200)
    with pytest.raises(ExpressionError) as caught:
        parse(long, VOCAB)
    assert "too long" in caught.value.message
    assert caught.value.column == 128 * len("nan or ")  # where the 257th piece starts
    assert parse(" or ".join(["nan"] * 128), VOCAB).holds(Env(nan=1.0))


def test_the_vocabulary_follows_the_scenario() -> None:
    plain = Vocabulary({"hidden": "relu"}, metrics=(), has_validation=False)
    for text, words in [
        ("accuracy > 0.9", "add metrics: [accuracy]"),
        ("val_accuracy > 0.9", "add metrics: [accuracy]"),
        ("val_loss < 1", "no validation data"),
    ]:
        with pytest.raises(ExpressionError) as caught:
            parse(text, plain)
        assert words in caught.value.message
        assert caught.value.column == 0
    assert parse("loss < 1 and grad_norm(hidden) > 0", plain).holds(Env())


def test_a_layer_may_share_a_keyword_name() -> None:
    vocab = Vocabulary({"loss": "relu", "not_": "tanh"})
    expr = parse("grad_norm(loss) > 1 and loss < 1", vocab)
    assert expr.layers() == {"loss"}


def test_tokens_keep_their_columns() -> None:
    tokens = tokenize("grad_norm(h1) >= 1.5e-3")
    assert [(t.kind, t.text, t.start) for t in tokens] == [
        ("name", "grad_norm", 0),
        ("op", "(", 9),
        ("name", "h1", 10),
        ("op", ")", 12),
        ("op", ">=", 14),
        ("number", "1.5e-3", 17),
        ("end", "", 23),
    ]


def test_parsing_and_evaluating_never_call_eval_exec_or_ast(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("user text reached eval, exec or ast")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    monkeypatch.setattr(builtins, "compile", refuse)
    monkeypatch.setattr(ast, "parse", refuse)
    monkeypatch.setattr(ast, "literal_eval", refuse)
    expr = parse("(grad_norm(hidden) > 1e2 or nan) and not loss < -1", VOCAB)
    assert expr.holds(Env())
    assert "153.2" in expr.explain(Env())


# ------------------------------------------------------------- property tests
PIECES = [
    "loss", "val_loss", "accuracy", "step", "epoch", "grad_norm", "weight_norm",
    "update_ratio", "dead_fraction", "saturated_fraction", "nan", "inf", "hidden",
    "squash", "output", "and", "or", "not", "(", ")", "<", "<=", ">", ">=", "==",
    "!=", "=", "!", "+", "-", "*", "/", "0", "1", "2.5", ".5", "1e-3", "1e", "1e999",
    "0.0", " ", ",", "&&", "#", "é", "_x",
]  # fmt: skip


def _random_env(draw: st.DrawFn) -> Env:
    numbers = st.one_of(
        st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5)
    )
    env = Env()
    for key in env.values:
        env.values[key] = draw(numbers)
    for key in env.layers:
        env.layers[key] = draw(numbers)
    return env


@st.composite
def token_soup(draw: st.DrawFn) -> tuple[str, Env]:
    parts = draw(st.lists(st.sampled_from(PIECES), max_size=14))
    return " ".join(parts) if draw(st.booleans()) else "".join(parts), _random_env(draw)


@st.composite
def any_text(draw: st.DrawFn) -> tuple[str, Env]:
    return draw(st.text(max_size=40)), _random_env(draw)


def _check(text: str, env: Env) -> None:
    try:
        expr = parse(text, VOCAB)
    except ExpressionError as err:
        assert 0 <= err.column <= len(text)
        assert err.pointer().startswith(text)
        return
    value = expr.value(env)
    assert value is None or isinstance(value, float)
    if expr.holds(env):
        assert isinstance(expr.explain(env), str)


@settings(max_examples=300, deadline=None)
@given(token_soup())
def test_token_soup_parses_or_raises_expression_error(case: tuple[str, Env]) -> None:
    _check(*case)


@settings(max_examples=300, deadline=None)
@given(any_text())
def test_any_text_parses_or_raises_expression_error(case: tuple[str, Env]) -> None:
    _check(*case)
