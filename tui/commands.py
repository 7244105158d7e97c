"""The command palette (ctrl+p) offers every key's action by name."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .keys import KEYS


class DebuggerCommands(Provider):
    """One command per key of the key table, with the key in its help line."""

    def _commands(self) -> list[tuple[str, str, str]]:
        return [
            (k.help, k.action, f"key: {k.display}") for k in KEYS if k.action != "previous_pane"
        ]

    async def discover(self) -> Hits:
        for title, action, help_text in self._commands():
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    partial(self.app.run_action, action),
                    help=help_text,
                )
