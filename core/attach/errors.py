"""What can be wrong with a model, optimizer, data or script handed to ``attach``."""

from __future__ import annotations


class AttachError(Exception):
    """The model, loss, optimizer, data or script cannot be debugged; ``str(err)`` is one
    sentence that says what is wrong and how to fix it."""
