"""The status line: the last thing that happened, or a hint at what to press."""

from __future__ import annotations

from rich.text import Text

from ..render import fit
from .base import Bar


class StatusBar(Bar):
    SUMMARY = True

    def build(self, width: int, height: int) -> list[Text]:
        s = self.session
        prefix = (
            f"▶ running · p: pause · {s.progress + ' · ' if s.progress else ''}"
            if s.running
            else ""
        )
        return [Text(fit(prefix + s.status, width), no_wrap=True, style="italic")]
