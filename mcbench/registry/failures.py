"""What is reported about a plugin that could not be loaded: one line each."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadFailure:
    """An installed plugin (an entry point of the ``mcbench`` group) that was skipped."""

    name: str  # the entry-point name, which --block takes
    distribution: str
    version: str
    error: str

    def describe(self) -> str:
        return (
            f"plugin {self.name!r} ({self.distribution} {self.version}) failed to load: "
            f"{self.error}"
        )

    def warning(self) -> str:
        return f"{self.describe()}; skipped (--block {self.name} to silence this)"


def describe_error(error: BaseException) -> str:
    """``Type: message`` on one line."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
