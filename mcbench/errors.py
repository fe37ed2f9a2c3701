"""Errors that the CLI turns into exit code 2 with a message naming file, line and key."""

from __future__ import annotations


class ConfigError(Exception):
    """A problem in user input, located as precisely as we can: file, line, key path."""

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
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class PluginError(Exception):
    """A plugin could not be loaded or registered (duplicate name, bad hook, bad class)."""
