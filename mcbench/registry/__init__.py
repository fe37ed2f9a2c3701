"""Names -> plugins: the plugin manager (entry points, pluggy), the registry of every
plugin by kind and name with the distribution that provides it (and the installed plugins
that failed to load), and the parameter schema read from each plugin's dataclass fields."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcbench.registry.failures import LoadFailure
from mcbench.registry.manager import ENTRY_POINT_GROUP, distribution_of, make_plugin_manager

if TYPE_CHECKING:
    from mcbench.registry.registry import Entry, Registry, load_registry

_REGISTRY_NAMES = ("Entry", "Registry", "load_registry")

__all__ = [
    "ENTRY_POINT_GROUP",
    "Entry",
    "LoadFailure",
    "Registry",
    "distribution_of",
    "load_registry",
    "make_plugin_manager",
]


def __getattr__(name: str) -> Any:
    # The registry imports the plugin API, and with it torch: it is imported when first
    # asked for, so that what needs only the plugin manager (such as listing the plugins'
    # commands for `mcbench --help`) starts in a fraction of a second.
    if name in _REGISTRY_NAMES:
        from mcbench.registry import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
