"""What the keys do. Mixed into the app; every action reads and writes the session."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, cast

from textual.screen import Screen

from .layout import PANES
from .widgets.base import Lines, Pane
from .widgets.gradients import GradientsPane

if TYPE_CHECKING:
    from backprop_tui.core import Granularity

    from .runner import Mode
    from .session import Session


FOLLOW = {  # the pane that shows what each phase computed
    "input": "network",
    "forward": "activations",
    "loss": "activations",
    "backward": "gradients",
    "update": "updates",
}


HEAL_AFTER = 0.5  # seconds a run may take to start its thread
KINDS = {"scenario": "a scenario run", "replay": "a recorded replay", "attached": "your model"}


if TYPE_CHECKING:
    from textual.app import App

    _Base = App[int]
else:
    _Base = object


class ActionsMixin(_Base):
    """The app's ``action_*`` methods."""

    auto_focus: str | None = "network"  # where the app last put the focus itself
    zoomed: str | None = None
    _heights: dict[str, int]

    if TYPE_CHECKING:
        session: Session

        def redraw_all(self, force: bool = False, only: tuple[str, ...] = ()) -> None: ...
        def start_run(self, mode: Mode) -> None: ...
        def _apply_layout(self, width: int | None = None, height: int | None = None) -> None: ...

    @property
    def main_screen(self) -> Screen[Any]:
        """The screen the panes live on, whatever dialog is open on top of it (a key bound
        to the app can arrive while one is: queries of the app itself search the top one)."""
        return self.screen_stack[0]

    # ------------------------------------------------------------- guards
    def _refuse(self, text: str) -> None:
        self.session.status = text
        self.main_screen.query_one("#status", Lines).redraw()

    def _heal_stopped(self) -> None:
        """A run whose thread never began, or ended without its message reaching the
        app (a burst of keys around c and p), must not leave the app "running"."""
        s = self.session
        gone = not s.engine_alive and time.monotonic() - s.run_started > HEAL_AFTER
        if s.running and gone:
            self.session.running = False
            self.session.stop_publishing()
            self.session.status = "paused"
            self.redraw_all()

    def _busy(self) -> bool:
        self._heal_stopped()
        if self.session.running:
            self._refuse("running: p pauses first")
            return True
        return False

    def _not_here(self, what: str) -> None:
        kind = KINDS.get(self.session.dbg.kind, self.session.dbg.kind)
        self._refuse(f"this is {kind}: {what} is not possible here")

    def _writable(self, what: str) -> bool:
        if self.session.read_only:
            self._not_here(what)
            return False
        return not self._busy()

    # ------------------------------------------------------------ stepping
    def _finished(self) -> bool:
        """Training is done: stepping keys say so and do nothing."""
        dbg = self.session.dbg
        if not dbg.finished:
            return False
        more = " E trains one more epoch." if dbg.can_train else ""
        self._refuse(
            f"training finished: {dbg.total_epochs} epochs, {dbg.step_number} steps.{more}"
        )
        return True

    def action_order_hint(self) -> None:
        """``o`` belongs to the update table; elsewhere it says so."""
        self._refuse("o orders the update table: tab to the update pane first")

    def action_goto(self) -> None:
        if self._busy():
            return
        from .weight_screen import GotoScreen

        dbg = self.session.dbg
        oldest = dbg.oldest_reachable_step
        reach = f"back to {oldest}" if oldest is not None and dbg.can_go_back else "no going back"
        reach += f", on to {dbg.total_steps}"
        self.push_screen(GotoScreen(reach, float(dbg.step_number)), self._go_to)

    def _go_to(self, chosen: float | None) -> None:
        s = self.session
        if chosen is None:
            s.status = "go to: cancelled"
            self.redraw_all()
            return
        target = min(int(chosen), s.dbg.total_steps)
        dbg = s.dbg
        if target < dbg.step_number or (target == dbg.step_number and dbg.phase != "update"):
            with s.lock:
                while dbg.step_number > target or dbg.phase != "update":
                    if not dbg.back():
                        break
                s.revision += 1
            s.status = (
                f"at step {dbg.step_number}"
                if dbg.step_number == target
                else f"step {target} is no longer kept: at step {dbg.step_number}, the oldest"
            )
            self.redraw_all()
        elif target > dbg.step_index and not self._finished():
            s.goto_target = target
            self.start_run("goto")
        else:
            s.status = f"at step {dbg.step_number}"
            self.redraw_all()

    def action_extend(self) -> None:
        dbg = self.session.dbg
        if not dbg.can_train:
            self._not_here("training on")
            return
        if self._busy():
            return
        if not dbg.finished:
            self._refuse(
                f"training is not finished yet (epoch {dbg.epoch_number}/{dbg.total_epochs})"
            )
            return
        with self.session.lock:
            dbg.extend(1)
        self.session.status = f"one more epoch: {dbg.total_epochs} in all · n steps, c continues"
        self.redraw_all()

    def action_step(self, granularity: str) -> None:
        if self._busy() or self._finished():
            return
        if granularity == "epoch":
            self.start_run("epoch")
            return
        s = self.session
        with s.lock:
            dbg = s.dbg
            try:
                record = dbg.step(cast("Granularity", granularity))
            except Exception as err:  # shown in the log; the app stays usable
                s.note(
                    f"step failed in {dbg.next_phase}: {type(err).__name__}: {err}", "error", "step"
                )
                record = None
            if record is not None:
                s.status = f"{record.describe()} · next: {dbg.next_phase}"
                if dbg.phase == "update":
                    hit = dbg.hit_breakpoint()
                    if hit is not None:
                        s.status = hit.describe()
                if dbg.loss is not None and not math.isfinite(dbg.loss):
                    s.status = f"loss is {dbg.loss}: see the log; b goes back a step"
                if granularity == "layer" and record.layer_index is not None:
                    s.select_layer(record.layer_index)  # the view follows the engine
        self._follow_phase()
        self.redraw_all()

    def _follow_phase(self) -> None:
        """In the compact layout, open the pane of the phase just done, unless the user
        moved the focus away from where the app last put it."""
        if not self.screen.has_class("-compact"):
            return
        focused = self.focused.id if isinstance(self.focused, Pane) else None
        if focused != self.auto_focus:
            return
        target = FOLLOW.get(self.session.dbg.phase)
        if target is not None and target != focused:
            self.auto_focus = target
            self.main_screen.query_one(f"#{target}", Pane).focus()

    def action_continue_run(self) -> None:
        if self._writable("continuing training") and not self._finished():
            self.start_run("continue")

    def action_pause(self) -> None:
        if self.session.running:
            self.workers.cancel_group(self, "engine")
            self.session.status = "pausing…"
            self.main_screen.query_one("#status", Lines).redraw()
            self.set_timer(HEAL_AFTER + 0.1, self._heal_stopped)
        else:
            self._refuse("not running: c continues to the next breakpoint")

    def action_step_back(self) -> None:
        if self._busy():
            return
        s = self.session
        with s.lock:
            went = s.dbg.back()
            s.revision += 1
        s.status = (
            f"went back to step {s.dbg.step_number}: its weights, before step "
            f"{s.dbg.step_number + 1}"
            if went
            else "at the start: there is no step before it"
            if s.dbg.step_number == 0
            else "no older step kept in the history (--history-mb keeps more)"
            if s.dbg.can_go_back
            else "this run cannot go back"
        )
        self.redraw_all()

    # ----------------------------------------------------------- selection
    def action_layer(self, delta: int) -> None:
        self.action_select_layer(self.session.layer + delta)

    def action_select_layer(self, index: int) -> None:
        self.session.select_layer(index)
        self.session.status = f"layer {self.session.spec.name} selected"
        self.redraw_all()

    def action_cursor(self, d_row: int, d_col: int, fine: bool = False) -> None:
        step_rows, step_cols = (
            (1, 1) if fine else self.main_screen.query_one(GradientsPane).step_size
        )
        self.session.move_cursor(d_row * step_rows, d_col * step_cols)
        self._cursor_moved()

    def action_cursor_to(self, row: int, col: int) -> None:
        self.session.cursor = (row, col)
        self.session.move_cursor(0, 0)
        self._cursor_moved()

    def _cursor_moved(self) -> None:
        spec = self.session.spec
        if spec.kernel is None:  # pooling, flatten, dropout: no weight under the cursor
            self.session.status = f"{spec.name} ({spec.kind}) has no weights · [ ]: another layer"
        else:
            param, index = self.session.cursor_param()
            self.session.status = f"cursor on {param}{list(index)} · w: edit it"
        for name in ("gradients", "chain", "updates", "boundary", "status"):  # boundary: the unit
            self.main_screen.query_one(f"#{name}", Lines).redraw()

    def action_next_pane(self, step: int = 1) -> None:
        focused = self.focused
        current = (
            PANES.index(focused.id) if isinstance(focused, Pane) and focused.id in PANES else -1
        )
        target = self.main_screen.query_one(f"#{PANES[(current + step) % len(PANES)]}", Pane)
        if self.zoomed is not None:
            self._show_zoom(target.id)
            self.redraw_all(force=True)
            self.call_after_refresh(target.focus)  # it was hidden: focus once it is laid out
        else:
            target.focus()

    def action_previous_pane(self) -> None:
        self.action_next_pane(-1)

    # Textual's own Tab skips hidden widgets; while one pane is zoomed, Tab zooms the next.
    def action_focus_next(self) -> None:
        if self.zoomed is not None and isinstance(self.focused, Pane):
            self.action_next_pane(1)
        else:
            super().action_focus_next()

    def action_focus_previous(self) -> None:
        if self.zoomed is not None and isinstance(self.focused, Pane):
            self.action_next_pane(-1)
        else:
            super().action_focus_previous()

    def action_zoom(self) -> None:
        """The focused pane takes the whole screen; z again (or Escape) gives it back."""
        focused = self.focused
        if self.zoomed is not None:
            self._show_zoom(None)
            self.session.status = "zoom off"
        elif isinstance(focused, Pane) and focused.id in PANES:
            self._show_zoom(focused.id)
            self.session.status = f"{focused.id} zoomed · z: back · tab: zoom the next pane"
        self.redraw_all(force=True)

    def _show_zoom(self, name: str | None) -> None:
        self.zoomed = name
        for column in ("#left", "#right"):
            box = self.main_screen.query_one(column)
            box.display = name is None or any(p.id == name for p in box.query(Pane))
            box.styles.width = "100%" if name is not None else None
            box.styles.max_width = "100%" if name is not None else None
        for pane in self.query(Pane):
            pane.display = name is None or pane.id == name
            if pane.id == name:
                pane.fold(False)
                pane.styles.height = "1fr"
        if name is None:
            for pane in self.query(Pane):
                pane.styles.height = None
            self._heights = {}
            self.call_after_refresh(self._apply_layout)

    # -------------------------------------------------------------- dialogs
    # The dialogs load on first use: they are not needed for the first frame.
    def search_themes(self) -> None:
        """Textual's theme picker (a palette command), in the steady palette."""
        from textual.theme import ThemeProvider

        from .commands import SteadyPalette

        self.push_screen(SteadyPalette(providers=[ThemeProvider], placeholder="Search for themes…"))

    def action_command_palette(self) -> None:
        from textual.command import CommandPalette

        from .commands import SteadyPalette

        if self.use_command_palette and not CommandPalette.is_open(self):  # type: ignore[arg-type]
            self.push_screen(SteadyPalette(id="--command-palette"))

    def action_help(self) -> None:
        from .help_screen import HelpScreen

        self.push_screen(HelpScreen())

    def action_breakpoints(self) -> None:
        if not self.session.dbg.can_edit:
            self._refuse(
                f"this is a {self.session.dbg.kind} run: breakpoints are not possible here"
            )
            return
        from .breakpoint_screen import BreakpointScreen

        self.push_screen(BreakpointScreen(self.session), lambda _: self.redraw_all())

    def action_gradcheck(self) -> None:
        if not self.session.dbg.can_gradcheck:
            self._not_here("a gradient check (it needs the live network and its data)")
        elif not self._busy():
            from .gradcheck_screen import GradcheckScreen

            self.push_screen(GradcheckScreen(self.session))

    def action_learning_rate(self) -> None:
        """``L``: the learning rate of the steps that follow (while running, too)."""
        s = self.session
        dbg = s.dbg
        if not dbg.can_set_learning_rate:
            if s.read_only:
                self._not_here("changing the learning rate")
            else:
                self._refuse("the learning rate is your script's: set it on its optimizer")
            return
        from .weight_screen import LearningRateScreen

        with s.lock:
            rate = dbg.learning_rate
            where = f"from step {dbg.step_index + 1} on"
        if rate is None:
            self._refuse("this run's learning rate is not known here")
            return

        def done(new: float | None) -> None:
            if new is None:
                s.status = "learning rate unchanged"
            else:
                with s.lock:
                    dbg.set_learning_rate(new)
                    first = dbg.step_index + 1
                    s.revision += 1
                s.status = f"learning rate {rate:g} → {new:g} from step {first} on (going back past it undoes it)"
            self.redraw_all()

        self.push_screen(LearningRateScreen(where, rate), done)

    def action_edit_weight(self) -> None:
        if not self._writable("editing weights"):
            return
        s = self.session
        if s.spec.kernel is None:  # ReLU, dropout, a 4-D weight: no matrix under the cursor
            self._refuse(f"{s.spec.name} ({s.spec.kind}) has no weight matrix to edit here")
            return
        param, index = s.cursor_param()
        with s.lock:
            value = float(s.dbg.params[param][index])
        where = f"{param}[{', '.join(map(str, index))}]"
        from .weight_screen import WeightScreen

        def done(new: float | None) -> None:
            if new is None:
                s.status = "edit cancelled"
            else:
                with s.lock:
                    s.dbg.set_weight(param, index, new)
                    s.revision += 1
                s.status = f"{where}: {value:+.6g} → {new:+.6g}"
            self.redraw_all()

        self.push_screen(WeightScreen(where, value), done)

    async def action_quit(self) -> None:
        self.workers.cancel_group(self, "engine")
        self.exit(return_code=0)
