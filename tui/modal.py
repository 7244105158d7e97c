"""Dialogs that survive a burst of keys: a held key or a paste must never end the app.

Two Escapes (or Enters) that arrive before a dialog has gone each ask it to
close; the second would pop the screen beneath it, and Textual ends the app
when the last screen goes. A dialog closes once, and only while it is on top.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

from textual.await_complete import AwaitComplete
from textual.message import Message
from textual.screen import ModalScreen

ResultType = TypeVar("ResultType")


class DialogClosed(Message):
    """A dialog has gone: the panes beneath it show again, drawn afresh (what changed
    while it was open may not have reached a screen that was not on top)."""


class SteadyModal(ModalScreen[ResultType], Generic[ResultType]):
    """A modal screen whose ``dismiss`` acts once, and only while it is the top screen."""

    _dismissed = False

    def dismiss(self, result: ResultType | None = None) -> AwaitComplete:
        if self._dismissed or self.app.screen is not self:
            return AwaitComplete(asyncio.sleep(0))
        self._dismissed = True
        return super().dismiss(result)

    def on_unmount(self) -> None:
        self.app.post_message(DialogClosed())
