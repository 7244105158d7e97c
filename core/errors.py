"""Errors the engine raises for users: one sentence, naming the file, the place and the fix."""

from __future__ import annotations


class ScenarioError(Exception):
    """A scenario file (or the data it names) cannot be used.

    ``str(err)`` is the whole message a user sees:
    ``scenarios/x.yaml:12:7: model.layers[1].units: expected a positive integer, got 'four'.``
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        path: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        super().__init__(self._format())

    def _format(self) -> str:
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            where += ": "
        key = f"{self.path}: " if self.path else ""
        return f"{where}{key}{self.message}"


class BackendUnavailable(Exception):
    """The chosen backend or device cannot be used here; the message says what to do."""


class ExpressionError(Exception):
    """A breakpoint expression that does not parse or names something unknown.

    ``str(err)`` is one line; :meth:`pointer` draws a caret under the offending column.
    """

    def __init__(self, message: str, text: str, column: int) -> None:
        self.message = message
        self.text = text
        self.column = column
        super().__init__(f"{message} (column {column + 1})")

    def pointer(self) -> str:
        """The expression and a caret under the offending column, two lines."""
        return f"{self.text}\n{' ' * self.column}^ {self.message}"


class NotPossible(Exception):
    """What this kind of run cannot do (a replay cannot train); the text says so to the user."""
