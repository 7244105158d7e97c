"""The footer: the keys, most important first, as many as fit; a click runs the key's action."""

from __future__ import annotations

from rich.text import Text
from textual.events import Click

from ..keys import Key, footer_keys
from .base import Bar

ALWAYS = ("help", "quit")  # shown at any width, so everything else can be found
ROOMY = 120  # from this width on, keys get a space either side


def _item_width(key: Key, pad: int) -> int:
    return len(key.display) + 2 * pad + len(key.label) + 2


def chosen_keys(width: int) -> list[Key]:
    """The footer's keys for ``width`` columns, in footer order."""
    pad = 1 if width >= ROOMY else 0
    keys = footer_keys()
    room = width - sum(_item_width(k, pad) for k in keys if k.action in ALWAYS)
    picked = {k.action for k in keys if k.action in ALWAYS}
    for key in keys:
        if key.action not in picked and _item_width(key, pad) <= room:
            picked.add(key.action)
            room -= _item_width(key, pad)
    return [k for k in keys if k.action in picked]


class KeyBar(Bar):
    def build(self, width: int, height: int) -> list[Text]:
        self._spans: list[tuple[int, int, str]] = []
        pad = " " if width >= ROOMY else ""
        line = Text(no_wrap=True, overflow="crop")
        for key in chosen_keys(width):
            start = line.cell_len
            line.append(f"{pad}{key.display}{pad}", style="reverse bold")
            line.append(f" {key.label} ")
            self._spans.append((start, line.cell_len, key.action))
        return [line]

    async def on_click(self, event: Click) -> None:
        for start, end, action in getattr(self, "_spans", []):
            if start <= event.x < end:
                await self.app.run_action(action)
                return
