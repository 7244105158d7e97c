"""The command palette (ctrl+p) offers every key's action by name."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from functools import partial
from typing import Any

from textual.await_complete import AwaitComplete
from textual.command import CommandList, CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.css.query import NoMatches

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


def _quiet(action: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        with contextlib.suppress(KeyError, IndexError):
            action()

    return run


class SteadyPalette(CommandPalette):
    """Textual's command palette, steady under a burst of keys (a held key, a paste).

    Two Escapes (or Enters) arriving before the palette has gone each asked to
    dismiss it, and the second popped the screen beneath; a page key before its
    list was filled looked up a line that did not exist yet. Both ended the app.
    """

    _dismissed = False

    def dismiss(self, result: Any = None) -> AwaitComplete:
        if self._dismissed or self.app.screen is not self:
            return AwaitComplete(asyncio.sleep(0))
        self._dismissed = True
        self.workers.cancel_node(self)  # the search must not outlive the list it fills
        return super().dismiss(result)

    # After a dismiss, the palette's own watchers and search may still run for a
    # moment and find its widgets gone: that is the end of the palette, not an error.
    def _watch__list_visible(self) -> None:
        with contextlib.suppress(NoMatches):
            super()._watch__list_visible()

    async def _watch__show_busy(self) -> None:
        with contextlib.suppress(NoMatches):
            await super()._watch__show_busy()

    def _refresh_command_list(self, *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(NoMatches):
            super()._refresh_command_list(*args, **kwargs)

    def on_mount(self) -> None:
        # The list's own page and cursor keys look up lines that a burst of keys can
        # reach before the list has laid them out; there they do nothing.
        commands = self.query_one(CommandList)
        for name in ("page_up", "page_down", "cursor_up", "cursor_down", "first", "last"):
            action = getattr(commands, f"action_{name}")
            setattr(commands, f"action_{name}", _quiet(action))

    def _action_command_list(self, action: str) -> None:
        with contextlib.suppress(KeyError, IndexError, NoMatches):  # the list is not filled yet
            super()._action_command_list(action)
