"""The ``w`` prompt: type a new value for the weight under the cursor."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static

from .modal import SteadyModal


def parse_value(text: str) -> float:
    """A finite number from what was typed; ValueError with a sentence otherwise."""
    try:
        value = float(text.strip().replace("−", "-"))
    except ValueError:
        raise ValueError(
            f"'{text.strip()}' is not a number; type one such as -0.25 or 1e-3"
        ) from None
    if not math.isfinite(value):
        raise ValueError("the value must be a finite number")
    return value


class WeightScreen(SteadyModal[float | None]):
    """Asks for one number; dismisses with it, or with None on escape."""

    BINDINGS = [Binding("escape", "cancel", "cancel")]  # noqa: RUF012

    def __init__(self, where: str, value: float) -> None:
        super().__init__()
        self.where = where
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="weight-box", classes="dialog"):
            yield Static(f"New value for {self.where} (now {self.value:+.6g}):")
            yield Input(value=f"{self.value:.6g}", id="weight-input", select_on_focus=True)
            yield Static("enter: set · escape: cancel", id="weight-error", classes="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            value = parse_value(event.value)
        except ValueError as err:
            self.query_one("#weight-error", Static).update(str(err))
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)
