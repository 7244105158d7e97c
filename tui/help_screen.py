"""The ``?`` screen: every key and what it does."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from .keys import CURSOR_HELP, KEYS
from .modal import SteadyModal


def help_text() -> Text:
    """The keys as two columns: key, what it does."""
    rows = [(k.display, k.help) for k in KEYS if k.display not in ("]", "shift+tab")]
    rows += list(CURSOR_HELP)
    width = max(len(key) for key, _ in rows)
    text = Text()
    for key, what in rows:
        text.append(key.rjust(width), style="bold reverse")
        text.append(f"  {what}\n")
    text.append("\nThe pipeline line lights the phase just done and underlines the next.\n")
    text.append("Numbers carry their sign. Heat maps run blue (below 0) to red (above);\n")
    text.append("with NO_COLOR each cell reads as a sign and a digit: -9 … 0 … +9.")
    return text


class HelpScreen(SteadyModal[None]):
    BINDINGS = [  # noqa: RUF012 - Textual reads this class attribute
        Binding("escape,q,question_mark", "close", "close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box", classes="dialog") as box:
            box.border_title = "keys"
            box.border_subtitle = "escape closes"
            yield Static(help_text(), id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
