"""The training loop as a line, the phase just done lit and the next one underlined."""

from __future__ import annotations

from rich.text import Text

from .base import Bar

STAGES = ("input", "forward", "loss", "backward", "gradients", "update", "repeat")
SHORT = ("in", "fwd", "loss", "bwd", "grad", "upd", "↻")


def stage_of(phase: str, pass_done: bool, fresh: bool) -> str | None:
    """The stage to light for the engine's most recent phase (None at a fresh start)."""
    if fresh:
        return None
    if phase == "backward" and pass_done:
        return "gradients"
    return phase


def lit_stages(lit: str | None) -> tuple[str, ...]:
    """Every stage the phase just done completes: the last backward layer completes the
    gradients too, and an update completes the loop, which repeats from the input."""
    if lit == "gradients":
        return ("backward", "gradients")
    if lit == "update":
        return ("update", "repeat")
    return (lit,) if lit else ()


class PipelineBar(Bar):
    """``input → forward → loss → backward → gradients → update → repeat``."""

    SUMMARY = True

    def build(self, width: int, height: int) -> list[Text]:
        dbg = self.session.view
        fresh = dbg.phase == "update" and dbg.step_index == 0 and not dbg.records
        pass_done = dbg.next_phase != dbg.phase
        lit = stage_of(dbg.phase, pass_done, fresh)
        upcoming = dbg.next_phase
        if lit == "gradients":
            upcoming = "update"
        elif lit == "update":
            upcoming = "input"
        where = ""
        if dbg.phase in ("forward", "backward") and dbg.layer_index is not None:
            where = dbg.layer_names[dbg.layer_index]
        for names, arrow in ((STAGES, " → "), (SHORT, " → "), (SHORT, "→")):
            line = self._line(names, arrow, lit, upcoming, where)
            if line.cell_len <= width:
                return [line]
            where = ""
        return [line[:width]]

    def _line(
        self, names: tuple[str, ...], arrow: str, lit: str | None, upcoming: str, where: str
    ) -> Text:
        line = Text(no_wrap=True, overflow="crop")
        for stage, name in zip(STAGES, names, strict=True):
            if line:
                line.append(arrow, style="dim")
            if stage in lit_stages(lit):
                label = (
                    f"[{name} {where}]"
                    if where and stage in ("forward", "backward")
                    else f"[{name}]"
                )
                line.append(label, style="reverse bold")
            elif stage == upcoming:
                line.append(name, style="underline")
            else:
                line.append(name, style="dim" if lit else "")
        return line
