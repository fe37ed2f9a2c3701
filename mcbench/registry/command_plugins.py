"""Which installed plugins may add ``mcbench`` commands, told from their source without
importing them, so that listing the commands does not import every plugin (and torch)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Iterable

from mcbench.registry.manager import ENTRY_POINT_GROUP

HOOK = "mcbench_register_commands"


def command_plugin_names(blocked: Iterable[str] = ()) -> list[str]:
    """The entry-point names of the installed plugins, less ``blocked``, that may implement
    the commands hook: those whose module's source names it, and any whose source cannot
    be read or may take its hooks from elsewhere (``import *``, an object's methods)."""
    skip = set(blocked)
    return [
        ep.name
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        if ep.name not in skip and may_add_commands(ep)
    ]


def may_add_commands(ep: importlib.metadata.EntryPoint) -> bool:
    """False only when the entry point is a module whose source neither names the hook
    nor imports ``*``: pluggy registers the module's own attributes, so such a module
    cannot implement it."""
    if ep.attr:
        return True
    try:
        spec = importlib.util.find_spec(ep.module)
    except Exception:  # a parent package that fails to import: load it, to report why
        return True
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return True
    try:
        with open(spec.origin, encoding="utf-8") as f:
            source = f.read()
    except (OSError, UnicodeDecodeError):
        return True
    return HOOK in source or "import *" in source
