"""The ``B`` screen: list, add, toggle and remove breakpoint expressions."""

from __future__ import annotations

from backprop_tui.core.errors import ExpressionError
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from .modal import SteadyModal
from .session import Session


def examples(layers: list[str]) -> str:
    """Example expressions that parse for this network (its first layer by name), one a
    line: wrapped at the dialog's width, an expression would break at its spaces."""
    shown = ("loss < 0.01", "grad_norm > 100 or nan", f"grad_norm({layers[0]}) < 1e-6")
    return "e.g.  " + "\n      ".join(shown)


class BreakpointScreen(SteadyModal[None]):
    BINDINGS = [  # noqa: RUF012 - Textual reads this class attribute
        Binding("escape", "close", "close"),
        Binding("space", "toggle_breakpoint", "enable/disable", show=False),
        Binding("d,delete", "remove", "remove", show=False),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def compose(self) -> ComposeResult:
        with Vertical(id="breakpoint-box", classes="dialog"):
            yield Static(
                "Breakpoints: checked after every training step (c runs to the next)",
                classes="title",
            )
            yield OptionList(id="breakpoint-list")
            yield Input(placeholder="new breakpoint, enter to add", id="breakpoint-input")
            yield Static(
                examples(list(self.session.dbg.layer_names)), id="breakpoint-error", classes="hint"
            )
            yield Static(
                "tab: list/input · space: enable/disable\nd: remove · escape: close",
                classes="hint",
            )

    def on_mount(self) -> None:
        self._fill()
        self.query_one(Input).focus()

    def _fill(self, highlight: int | None = None) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        with self.session.lock:
            for bp in self.session.dbg.breakpoints:
                line = Text("on  " if bp.enabled else "off ", style="bold" if bp.enabled else "dim")
                line.append(f"{bp.text}   (held on {bp.hits} steps)")
                options.add_option(line)
            count = len(self.session.dbg.breakpoints)
        if not count:
            options.add_option(Option("no breakpoints yet: type one below", disabled=True))
        if count:
            options.highlighted = min(highlight if highlight is not None else count - 1, count - 1)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        error = self.query_one("#breakpoint-error", Static)
        try:
            with self.session.lock:
                self.session.dbg.add_breakpoint(text)
        except ExpressionError as err:
            error.update(err.pointer())
            return
        error.update(f"added: {text}")
        event.input.value = ""
        self._fill()

    def _selected(self) -> int | None:
        options = self.query_one(OptionList)
        if not options.has_focus or not self.session.dbg.breakpoints:
            return None
        return options.highlighted

    def action_toggle_breakpoint(self) -> None:
        index = self._selected()
        if index is not None:
            with self.session.lock:
                self.session.dbg.toggle_breakpoint(index)
            self._fill(index)

    def action_remove(self) -> None:
        index = self._selected()
        if index is not None:
            with self.session.lock:
                self.session.dbg.remove_breakpoint(index)
            self._fill(index)

    def action_close(self) -> None:
        self.dismiss(None)
