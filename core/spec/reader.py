"""Typed reads of a located YAML document, each failing with a placed error.

The one reader of scenario values: the scenario, its data block and its
``expect:`` checks all read through :class:`Reader`, so every mistake becomes a
:class:`ScenarioError` naming the file, line and column, the key path and what
would be accepted. Values from the file are quoted short and with their
control characters made visible.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import ScenarioError
from ..safetext import quote, visible
from .yamlio import Located

# A number written as text: YAML 1.1 reads ``1e-6`` (no dot) or a quoted number as a string.
NUMBER_TEXT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def shown(value: object) -> str:
    """A value from the file as an error message quotes it: short and visible."""
    return quote(value)


class Reader:
    """Typed reads of a located document, each failing with a placed error."""

    def __init__(self, doc: Located) -> None:
        self.doc = doc

    def fail(self, path: str, message: str) -> ScenarioError:
        return self.doc.error(path, message)

    def line_of(self, path: str) -> int | None:
        return self.doc.where(path)[0]

    def mapping(
        self,
        value: object,
        path: str,
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
        what: str = "a mapping of keys",
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected {what}, got {shown(value)}")
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = (
                    f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(allowed)}"
                )
                raise self.fail(
                    f"{path}.{visible(key)}" if path else visible(key),
                    f"unknown key {shown(key)}; {hint}",
                )
        for key in required:
            if key not in value:
                raise self.fail(path, f"the key '{key}' is missing; add it")
        return value

    def integer(self, value: object, path: str, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"expected a whole number, got {shown(value)}")
        if minimum is not None and value < minimum:
            raise self.fail(path, f"expected a whole number of at least {minimum}, got {value}")
        return value

    def number(
        self,
        value: object,
        path: str,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        text_ok: bool = False,
    ) -> float:
        """A finite number in [low, high]; ``text_ok`` also reads numbers written as text."""
        if text_ok and isinstance(value, str) and re.fullmatch(NUMBER_TEXT, value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(path, f"expected a number, got {shown(value)}")
        number = float(value)
        if not math.isfinite(number):
            raise self.fail(path, f"expected a finite number, got {value}")
        if low is not None and (number < low or (low_open and number == low)):
            bound = "greater than" if low_open else "at least"
            raise self.fail(path, f"expected a number {bound} {low}, got {value}")
        if high is not None and number > high:
            raise self.fail(path, f"expected a number of at most {high}, got {value}")
        return number

    def boolean(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {shown(value)}")
        return value

    def text(self, value: object, path: str, collapse: bool = False) -> str:
        """A string, with its control characters made visible.

        ``collapse`` joins its lines and runs of spaces into single spaces first.
        """
        if not isinstance(value, str):
            raise self.fail(path, f"expected text, got {shown(value)}")
        return visible(" ".join(value.split()) if collapse else value)

    def texts(self, value: object, path: str) -> tuple[str, ...]:
        """One string or a list of them (absent: none)."""
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {shown(value)}")
        return tuple(self.text(item, f"{path}[{i}]") for i, item in enumerate(value))

    def choice(self, value: object, path: str, options: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in options:
            close = (
                difflib.get_close_matches(value, options, n=1, cutoff=0.6)
                if isinstance(value, str)
                else []
            )
            hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(options)}"
            raise self.fail(path, f"unknown name {shown(value)}; {hint}")
        return value

    def matrix(
        self, value: object, path: str, shape: tuple[int, ...], what: str | None = None
    ) -> NDArray[np.float64]:
        try:
            array = np.array(value, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise self.fail(
                path, f"expected {'rows of numbers' if len(shape) == 2 else 'a list of numbers'}"
            ) from None
        if array.shape != shape:
            want = " × ".join(str(s) for s in shape)
            got = " × ".join(str(s) for s in array.shape) or "a single number"
            if what is None:
                what = "inputs × units" if len(shape) == 2 else "one per unit"
            raise self.fail(path, f"expected shape {want} ({what}), got {got}")
        if not np.isfinite(array).all():
            raise self.fail(path, "every number must be finite (no .nan or .inf)")
        return array
