"""Errors that the CLI turns into exit code 2 with a message naming file, line and key."""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable

MESSAGE_LIMIT = 240
"""Characters of a message about a benchmark file (clip): one quoting a huge value (an
alias bomb expanded, a list of a million numbers) must still read as one line."""
KEY_LIMIT = 100
"""Characters of a key path shown (a path a hundred levels deep is no help)."""

ELLIPSIS = "..."


class ConfigError(Exception):
    """A problem in user input, located as precisely as we can: file, line, key path.

    Shown as one line of printable text, whatever the message or key holds (newlines or
    terminal escapes copied from the file)."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ):
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = printable(self.file) + (f":{self.line}" if self.line else "") + ": "
        key = f"{printable(self.key)}: " if self.key else ""
        return f"{where}{key}{printable(self.message)}"


class PluginError(Exception):
    """A plugin could not be loaded or registered (duplicate name, bad hook, bad class)."""


def printable(text: str) -> str:
    """TEXT with every character that is not printable (newlines, tabs, escapes, stray
    surrogates) written as its Python escape, so it cannot break or recolour a line."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """TEXT cut to LIMIT characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


class _Brief(reprlib.Repr):
    """repr() of a few items and levels; integers too long for str() are described."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxlist, self.maxtuple, self.maxdict = 3, 6, 6, 6
        self.maxset, self.maxfrozenset, self.maxstring, self.maxother = 6, 6, 40, 40
        self.maxlong = 40

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 512:
            return f"<an integer of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_BRIEF = _Brief()


def shown(value: object, limit: int = 60) -> str:
    """A value as an error message quotes it: its repr, cut short with an ellipsis."""
    try:
        text = _BRIEF.repr(value)
    except (ValueError, RecursionError):
        text = f"<{type(value).__name__}>"
    return clip(printable(text), limit)


def suggest(word: str, choices: Iterable[object]) -> str:
    """ " - did you mean 'X'?" for the choice closest to WORD, or "" if none is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.5)
    return f" - did you mean {close[0]!r}?" if close else ""
