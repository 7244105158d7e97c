"""The Textual app: panes that show a training run, keys that step it.

``make_app(debugger)`` is the one way in, for the CLI and for every test. The
debugger may also be a read-only replay of a recorded run (``read_only = True``):
stepping forward and back works, changing or continuing training does not.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from backprop_tui.core import RunView
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Event, Key, MouseDown, Resize
from textual.worker import get_current_worker

from . import layout
from .actions import ActionsMixin
from .keys import bindings
from .modal import DialogClosed
from .render import Palette, wrap
from .runner import FramePacer, Mode, RunStopped, StepDone, run_steps
from .session import Session
from .widgets.activations import ActivationsPane
from .widgets.base import Lines, Pane
from .widgets.boundary import BoundaryPane
from .widgets.chain_rule import ChainRulePane
from .widgets.gradients import GradientsPane
from .widgets.header import HeaderBar
from .widgets.history_chart import ChartPane
from .widgets.keybar import KeyBar
from .widgets.log import LogPane
from .widgets.network import NetworkPane
from .widgets.pipeline import PipelineBar
from .widgets.status import StatusBar
from .widgets.updates import UpdatePane


def commands_provider() -> type[Any]:
    """The command palette's provider, imported when the palette first opens."""
    from .commands import DebuggerCommands

    return DebuggerCommands


PANE_KEYS = {  # what the keys do where the focus is (said when it arrives)
    "network": "↑↓: select a layer · ←→: the gradient cursor",
    "boundary": "←→: the hidden unit drawn large · [ ]: the layer",
    "activations": "z: zoom to see every sample",
    "chart": "z: zoom",
    "log": "↑↓ pgup pgdn: scroll · z: read every line in full",
    "gradients": "arrows: move the cursor (shift: one weight) · w: edit the weight",
    "chain": "arrows: the weight whose chain rule is shown",
    "updates": "↑↓ pgup pgdn: scroll · o: order by |change| or by index",
}
SCREEN_FIRST_S = 0.25  # the longest the steps wait for the screen to answer a key
LIVE = ("header", "pipeline", "status", "chart", "log")  # redrawn every frame while running


class DebuggerApp(ActionsMixin, App[int]):
    """Steps a :class:`~backprop_tui.core.Debugger` and shows every phase's numbers."""

    CSS_PATH = "app.tcss"
    TITLE = "backprop-tui"
    COMMANDS: ClassVar[set[Any]] = {*App.COMMANDS, commands_provider}
    BINDINGS: ClassVar[list[BindingType]] = [
        *bindings(),
        *(
            Binding(key, f"cursor({dr}, {dc})", "move cursor", show=False)
            for key, dr, dc in (("up", -1, 0), ("down", 1, 0), ("left", 0, -1), ("right", 0, 1))
        ),
        *(
            Binding(f"shift+{key}", f"cursor({dr}, {dc}, True)", "move cursor by one", show=False)
            for key, dr, dc in (("up", -1, 0), ("down", 1, 0), ("left", 0, -1), ("right", 0, 1))
        ),
    ]

    def __init__(self, debugger: RunView, fps: float = 10.0) -> None:
        super().__init__()
        self.zoomed: str | None = None  # the pane that has the whole screen (z)
        self._network_key: tuple[str, int] | None = None  # the rule and width it was sized to
        self._user_focus = False  # the app's own first focus keeps the start hint
        self.session = Session(debugger, fps)
        self._detail_drawn = 0.0
        self._detail_snapshot: object = None  # the last snapshot every pane was drawn from
        self._heights: dict[str, int] = {}  # compact layout: rows per pane, as last set
        self.pacer = FramePacer(fps)

    # ---------------------------------------------------------------- layout
    def compose(self) -> ComposeResult:
        s = self.session
        yield HeaderBar(s, id="header")
        yield PipelineBar(s, id="pipeline")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield NetworkPane(s, id="network")
                yield BoundaryPane(s, id="boundary")
                yield ActivationsPane(s, id="activations")
                yield ChartPane(s, id="chart")
                yield LogPane(s, id="log")
            with Vertical(id="right"):
                yield GradientsPane(s, id="gradients")
                yield ChainRulePane(s, id="chain")
                yield UpdatePane(s, id="updates")
        yield StatusBar(s, id="status")
        yield KeyBar(s, id="keys")

    async def on_event(self, event: Event) -> None:
        # A key (or click) while a run continues: the steps wait until its answer is on
        # the screen. Both threads share one GIL, so otherwise the screen's thread would
        # get the interpreter only every other switch interval and answer at half speed
        # or less (the boundary's worker takes turns too).
        if isinstance(event, (Key, MouseDown)) and self.session.running:
            ask = self.session.lock.screen_first(SCREEN_FIRST_S)
            self.call_after_refresh(self.session.lock.screen_done, ask)
        await super().on_event(event)

    def on_mount(self) -> None:
        self.session.palette = self._palette()
        self.theme_changed_signal.subscribe(self, lambda _theme: self._retheme())
        self.main_screen.query_one("#network", Pane).focus()
        self.call_after_refresh(setattr, self, "_user_focus", True)
        self._apply_layout()

    def _palette(self) -> Palette:
        colours = self.get_css_variables()
        return Palette(
            negative=colours.get("primary", Palette.negative),
            zero=colours.get("background", Palette.zero),
            positive=colours.get("error", Palette.positive),
            glyphs=self.no_color,
        )

    def _retheme(self) -> None:
        self.session.palette = self._palette()
        self.redraw_all(force=True)

    def on_dialog_closed(self, message: DialogClosed) -> None:
        self.redraw_all(force=True)

    def on_resize(self, event: Resize) -> None:
        self._apply_layout(event.size.width, event.size.height)

    def on_descendant_focus(self) -> None:
        if self.screen.has_class("-compact"):
            self._apply_layout()
        name = self.focused_pane()
        if name is not None and self._user_focus and not self.session.running:  # keys here
            self.session.status = f"{name} · {PANE_KEYS.get(name, 'tab: next pane')}"
            self.main_screen.query_one("#status", Lines).redraw()

    def panes(self) -> list[Pane]:
        return [self.main_screen.query_one(f"#{name}", Pane) for name in layout.PANES]

    def focused_pane(self) -> str | None:
        focused = self.focused
        return focused.id if isinstance(focused, Pane) and focused.id in layout.PANES else None

    def _apply_layout(self, width: int | None = None, height: int | None = None) -> None:
        """Two columns on a big screen; an accordion of folded panes on a small one."""
        if width is None or height is None:
            width, height = self.size
        screen = self.screen
        if not isinstance(self.focused, Pane) and self.focused is not None:
            return  # a dialog is open
        if self.zoomed is not None:
            return  # one pane has the whole screen until z gives it back
        small = layout.compact(width, height)
        screen.set_class(small, "-compact")
        focused = self.focused_pane()
        panes = self.panes()
        if not small:
            self._heights = {}
            for pane in panes:
                pane.styles.height = None
                pane.fold(False)
            self.main_screen.query_one("#network", Pane).styles.height = self._network_rows()
            return
        wanted = {"gradients": self.main_screen.query_one(GradientsPane).wanted_rows(width, height)}
        rows = layout.compact_heights(list(layout.PANES), focused, height, wanted)
        open_ = layout.expanded(focused)
        if rows != self._heights:  # setting a height lays the screen out again
            self._heights = rows
            for pane in panes:
                pane.styles.height = rows[pane.id or ""]
        for pane in panes:
            pane.fold(pane.id not in open_)

    def _fit_network_pane(self) -> None:
        key = (self.session.view.update_rule, self.size.width)
        if key != self._network_key:
            self._network_key = key
            pane = self.main_screen.query_one("#network", Pane)
            pane.styles.height = self._network_rows()

    def _network_rows(self) -> int:
        """Layers, the input, loss and update-rule lines, the batch line and the border;
        the rule as many lines as it wraps to (Adam's is long), so it reads in full;
        half the column at most."""
        width = self.size.width
        # The left column's share of the screen (app.tcss: 2fr of 5, at most 80), less
        # the border and the rule's indent.
        room = max(min(80, width * 2 // 5) - 4, 8)
        rule = len(wrap(self.session.view.update_rule, room))
        wanted = len(self.session.dbg.layers) + 4 + 2 + max(rule - 1, 0)
        # A model of many modules gets half the column; the pane shows the layers around
        # the selected one, and the panes below keep their rows.
        return min(wanted, max((self.size.height - layout.BARS) // 2, 10))

    # --------------------------------------------------------------- drawing
    def redraw_all(self, force: bool = False, only: tuple[str, ...] = ()) -> None:
        """Rebuild every pane (or those named in ``only``) from one state of the run."""
        if not only and self.screen.has_class("-compact"):
            self._apply_layout()  # the selected layer decides how tall the gradients are
        elif not only and self.zoomed is None:
            self._fit_network_pane()  # a new learning rate may wrap the rule to more lines
        # Each pane reads one state of the run (Session.reading): while running, the
        # snapshot of its kind, without the lock.
        for widget in self.query(Lines):
            if not only or widget.id in only:
                widget.redraw(force=force)

    # --------------------------------------------------------------- running
    def start_run(self, mode: Mode) -> None:
        self.session.running = True
        self.session.run_started = time.monotonic()
        self.session.progress = ""
        self.pacer.start()
        self.session.frame_period = self.pacer.period
        self.session.detail_period = self.pacer.detail_period
        if mode == "epoch":
            self.session.status = "running to the end of the epoch"
        elif mode == "goto":
            self.session.status = f"going to step {self.session.goto_target}"
        else:
            self.session.status = "continuing to the next breakpoint"
        # Only what says it runs: every other pane already shows the run as it stands,
        # and its first frame comes within a period.
        self.redraw_all(only=LIVE)
        self._run(mode)

    @work(thread=True, exclusive=True, group="engine", exit_on_error=False)
    def _run(self, mode: Mode) -> None:
        worker = get_current_worker()
        run_steps(self.session, mode, lambda: worker.is_cancelled, self.post_message)

    def on_step_done(self, message: StepDone) -> None:
        """While running: the summary panes every frame, the detailed ones twice a second.

        The detailed panes (numbers of every weight) change wholesale each step; drawing
        them at every frame would make most of what is sent to the terminal.
        """
        if not self.session.running:
            return
        self.session.frame_period = self.pacer.frame(time.thread_time(), message.rate)
        self.session.detail_period = self.pacer.detail_period
        self.session.progress = f"{message.steps:,} steps · {message.rate:,.0f} steps/s"
        now = time.monotonic()
        snapshot = self.session.detailed
        fresh = snapshot is not None and snapshot is not self._detail_snapshot
        # The worker marks a snapshot detailed every detail period and prepares it; should
        # the screen miss one (a slow frame), it draws in full from the next after twice that.
        if fresh or now - self._detail_drawn >= 2 * self.session.detail_period:
            self._detail_drawn = now
            self._detail_snapshot = snapshot
            self.redraw_all()
        else:
            self.redraw_all(only=LIVE)

    def on_run_stopped(self, message: RunStopped) -> None:
        s = self.session
        s.running = False
        s.stop_publishing()
        if message.level in ("error",):
            s.note(message.reason, "error", kind="run")
        else:
            s.status = f"{message.reason} ({message.steps:,} steps)"
        self.redraw_all()


def make_app(debugger: RunView, fps: float = 10.0) -> DebuggerApp:
    """The app for a debugger (or a read-only replay), refreshing at most ``fps`` times a second."""
    return DebuggerApp(debugger, fps=fps)
