"""The app's keys, in one table: bindings, the footer, the help screen and the palette read it."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    """One action: the keys that run it, how the footer shows it and what it does."""

    keys: str  # Textual key names, comma separated
    action: str
    label: str  # a word or two, for the footer
    help: str  # a sentence, for the help screen and the command palette
    shown: str = ""  # how the key is written for people (defaults to the first key)
    footer: int = 0  # footer priority: 1 shows first, 0 never in the footer
    palette: str = ""  # the command palette's title, when it differs from ``help``

    @property
    def display(self) -> str:
        return self.shown or self.keys.split(",")[0]


KEYS: tuple[Key, ...] = (
    Key("space,s", "step('phase')", "step", "Step one phase of the pipeline", "space", 1),
    Key("l", "step('layer')", "layer", "Step one layer of the forward or backward pass", "", 4),
    Key("n", "step('batch')", "batch", "Finish this training step (next batch)", "", 2),
    Key("e", "step('epoch')", "epoch", "Run to the end of the epoch", "", 5),
    Key("c", "continue_run", "cont", "Continue to the next breakpoint", "", 3),
    Key("E", "extend", "", "After training finished: train one more epoch", "E"),
    Key("p", "pause", "pause", "Pause a running continue at once", "", 6),
    Key("b", "step_back", "back", "Go back one training step (time travel)", "", 7),
    Key("G", "goto", "", "Go to step N (back or forward; a prompt asks)", "G"),
    Key("o", "order_hint", "", "Update table: order by |change| or by index", "o"),
    Key("tab", "next_pane", "pane", "Focus the next pane", "tab", 10),
    Key("z", "zoom", "zoom", "Zoom the focused pane to the whole screen, and back", "", 15),
    Key("shift+tab", "previous_pane", "", "Focus the previous pane", "shift+tab"),
    Key(
        "left_square_bracket",
        "layer(-1)",
        "layer",
        "Select the previous / next layer",
        "[ ]",
        9,
        "Select the previous layer",
    ),
    Key("right_square_bracket", "layer(1)", "", "Select the next layer", "]"),
    Key("g", "gradcheck", "gradchk", "Gradient check against finite differences", "", 11),
    Key("B", "breakpoints", "breaks", "Edit breakpoints", "B", 8),
    Key("w", "edit_weight", "edit", "Edit the weight under the cursor", "", 12),
    Key("L", "learning_rate", "", "Set the learning rate for the steps that follow", "L"),
    Key("question_mark", "help", "help", "Show the keys", "?", 13),
    Key("q", "quit", "quit", "Quit", "", 14),
)
"""Arrows move the cursor of the focused pane; the help screen says so separately."""

CURSOR_HELP = (
    ("arrows", "Gradient cursor; scroll the update table and the log"),
    ("shift+arrows", "Gradient cursor by one weight in a big map"),
    ("pgup pgdn", "Scroll a page (update table, log)"),
    ("ctrl+p", "Command palette: every action by name"),
)


def bindings() -> list[Binding]:
    """Textual bindings for every key of the table (the footer is drawn by the app itself)."""
    return [Binding(k.keys, k.action, k.label or k.help, show=False) for k in KEYS]


def footer_keys() -> list[Key]:
    """The keys the footer shows, most important first."""
    return sorted((k for k in KEYS if k.footer), key=lambda k: k.footer)
