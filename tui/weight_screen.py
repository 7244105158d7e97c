"""The ``w`` prompt: type a new value for the weight under the cursor."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static

from .modal import SteadyModal


def parse_value(text: str) -> float:
    """A number from what was typed — nan and inf too: planting one is how a NaN
    breakpoint or diagnostic is tried out; ValueError with a sentence otherwise."""
    try:
        return float(text.strip().replace("−", "-"))
    except ValueError:
        raise ValueError(
            f"'{text.strip()[:40]}' is not a number; type one such as -0.25, 1e-3 or nan"
        ) from None


def parse_step(text: str) -> int:
    """A step number from what was typed; ValueError with a sentence otherwise."""
    try:
        step = int(text.strip())
    except ValueError:
        raise ValueError(
            f"'{text.strip()[:40]}' is not a step number; type one such as 12"
        ) from None
    if step < 0:
        raise ValueError("steps count from 0 (before the first)")
    return step


class WeightScreen(SteadyModal[float | None]):
    """Asks for one number; dismisses with it, or with None on escape."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]  # noqa: RUF012

    def __init__(self, where: str, value: float) -> None:
        super().__init__()
        self.where = where
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="weight-box", classes="dialog"):
            yield Static(self.question())
            yield Input(value=f"{self.value:.6g}", id="weight-input", select_on_focus=True)
            yield Static("enter: set · escape: cancel", id="weight-error", classes="hint")

    def question(self) -> str:
        return f"New value for {self.where} (now {self.value:+.6g}):"

    def parse(self, text: str) -> float:
        return parse_value(text)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            value = self.parse(event.value)
        except ValueError as err:
            self.query_one("#weight-error", Static).update(str(err))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class GotoScreen(WeightScreen):
    """Asks for a step to go to (``G``); dismisses with it, or with None on escape."""

    def question(self) -> str:
        return f"Go to step ({self.where}; now at step {self.value:.0f}):"

    def parse(self, text: str) -> float:
        return float(parse_step(text))


def parse_rate(text: str) -> float:
    """A learning rate from what was typed: a positive number; ValueError with a sentence."""
    value = parse_value(text)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(
            f"a learning rate is a positive number, such as 0.1 or 1e-3, not {value:g}"
        )
    return value


class LearningRateScreen(WeightScreen):
    """Asks for the learning rate of the steps that follow (``L``)."""

    def question(self) -> str:
        return f"Learning rate {self.where} (now {self.value:.6g}):"

    def parse(self, text: str) -> float:
        return parse_rate(text)
