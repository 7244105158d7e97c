"""Fixtures of the UI tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from backprop_tui.core import Debugger, load_scenario
from backprop_tui.tui.app import DebuggerApp, make_app


@pytest.fixture
def scenario_file(tmp_path: Path) -> Callable[[str], Path]:
    """Write a scenario's YAML text to a file and return its path."""

    def write(text: str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def xor() -> Debugger:
    return Debugger(load_scenario("xor"))


@pytest.fixture
def xor_app(xor: Debugger) -> DebuggerApp:
    return make_app(xor)
