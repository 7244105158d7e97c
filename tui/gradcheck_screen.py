"""The ``g`` screen: backprop's gradients against central finite differences."""

from __future__ import annotations

from backprop_tui.core import GradCheckResult
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from .modal import SteadyModal
from .session import Session


def result_text(result: GradCheckResult) -> Text:
    """One row per parameter: entries checked, largest relative error, verdict."""
    text = Text()
    rows = [("parameter", "checked", "max rel err", "verdict")]
    for p in result.params:
        rows.append(
            (p.name, f"{p.checked}/{p.total}", f"{p.max_error:.2e}", "ok" if p.passed else "FAIL")
        )
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    for n, row in enumerate(rows):
        style = "bold" if n == 0 else ("" if row[3] == "ok" else "bold red")
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        text.append("  ".join(cells) + "\n", style=style)
    verdict = "passed" if result.passed else "FAILED"
    text.append(
        f"\ngradient check {verdict}: largest relative error {result.max_error:.2e}"
        f" (tolerance {result.tolerance:g}, eps {result.eps:g})\n"
        f"batch of {result.batch_size} at step {result.step_index + 1}\n",
        style="bold",
    )
    return text


class GradcheckScreen(SteadyModal[None]):
    BINDINGS = [Binding("escape,q,g", "close", "close")]  # noqa: RUF012

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.result: GradCheckResult | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="gradcheck-box", classes="dialog"):
            yield Static(
                "Gradient check: central differences against backprop…", id="gradcheck-text"
            )
            yield Static("escape: close", classes="hint")

    def on_mount(self) -> None:
        self.check()

    @work(thread=True, exclusive=True, group="gradcheck")
    def check(self) -> None:
        try:
            with self.session.lock:
                result = self.session.dbg.gradient_check()
        except Exception as err:  # shown, not raised: the app stays up
            self.app.call_from_thread(
                self._show, Text(f"gradient check failed: {err}", style="bold red"), None
            )
            return
        self.app.call_from_thread(self._show, result_text(result), result)

    def _show(self, text: Text, result: GradCheckResult | None) -> None:
        self.result = result
        self.query_one("#gradcheck-text", Static).update(text)

    def action_close(self) -> None:
        self.dismiss(None)
