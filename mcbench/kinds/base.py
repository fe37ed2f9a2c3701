"""The base of every plugin class.

A plugin is a frozen dataclass that subclasses one of these bases. Its dataclass fields are
its parameters (type annotation + default; ``field(metadata={"help": ...})`` documents one),
``name`` is how benchmarks.yaml refers to it, and the first line of its docstring is the
one-line description ``mcbench plugins`` prints. ``__post_init__`` may raise ``ValueError``
for values out of range: mcbench reports it against the YAML key before anything runs.
"""

from __future__ import annotations

from typing import ClassVar


class Plugin:
    name: ClassVar[str]
    kind: ClassVar[str]
    version: ClassVar[str | None] = None
    """Bump to invalidate cached results; defaults to the providing distribution's version."""
