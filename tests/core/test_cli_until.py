"""``backprop-tui run --until``: where it stops, what stopped it, and bad expressions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from backprop_tui.tui.cli import main
from click.testing import CliRunner, Result

pytestmark = pytest.mark.filterwarnings(
    "ignore:overflow encountered", "ignore:invalid value encountered"
)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def report(*args: str, status: int = 0) -> Any:
    result = invoke("run", *args, "--json")
    assert result.exit_code == status, result.output
    return json.loads(result.stdout)


def test_until_stops_where_the_expression_holds() -> None:
    out = report("xor", "--until", "step >= 7")
    assert out["steps"] == 7
    assert out["stopped_by"] == "breakpoint: step >= 7"


def test_until_with_steps_stops_at_whichever_comes_first() -> None:
    assert report("xor", "--steps", "5", "--until", "step >= 7")["stopped_by"] == "steps"
    out = report("xor", "--steps", "50", "--until", "loss < 0.6")
    assert out["stopped_by"] == "breakpoint: loss < 0.6"
    assert out["loss"] < 0.6 and out["steps"] < 50


def test_a_whole_run_ends_with_end() -> None:
    out = report("xor")
    assert out["stopped_by"] == "end"
    assert out["steps"] == 500


def test_the_text_output_says_what_stopped_it() -> None:
    result = invoke("run", "xor", "--until", "epoch >= 3")
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith("stopped by breakpoint: epoch >= 3")


@pytest.mark.parametrize(
    ("expr", "column"),
    [("grad_norm(hiden) > 1", 10), ("loss <", 6), ("loss = 1", 5), ("$", 0)],
)
def test_a_bad_expression_gets_a_caret_and_status_2(expr: str, column: int) -> None:
    result = invoke("run", "xor", "--until", expr)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"backprop-tui: bad breakpoint expression (column {column + 1}):"
    assert lines[1] == expr
    assert lines[2].index("^") == column
    assert "Traceback" not in result.output


def test_a_bug_scenario_stops_at_its_own_breakpoint() -> None:
    out = report("bug_dying_relu")
    assert out["stopped_by"] == "breakpoint: epoch >= 2 and dead_fraction(hidden) > 0.5"
    assert out["steps"] == 26  # the first step of epoch 2: 400 samples in batches of 16
    assert out["epoch"] == 2


def test_nan_stops_the_run_and_the_warnings_say_why() -> None:
    out = report("bug_nan", status=1)
    assert out["stopped_by"] == "inf"  # the loss overflowed before anything was NaN
    assert out["loss"] is None  # inf is not JSON
    assert any("exploding gradients" in text for text in out["warnings"])
    assert out["warnings"][-1].startswith("Inf first appeared in the loss")
