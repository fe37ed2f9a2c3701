"""Names -> plugins: the plugin manager (entry points, pluggy), the registry of every
plugin by kind and name with the distribution that provides it (and the installed plugins
that failed to load), and the parameter schema read from each plugin's dataclass fields."""

from mcbench.registry.failures import LoadFailure
from mcbench.registry.manager import ENTRY_POINT_GROUP, distribution_of, make_plugin_manager
from mcbench.registry.registry import Entry, Registry, load_registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "Entry",
    "LoadFailure",
    "Registry",
    "distribution_of",
    "load_registry",
    "make_plugin_manager",
]
