"""The names of a new plugin package, all derived from the one its author gives."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mcbench.errors import ConfigError

# A distribution name as PEP 508 allows it.
DISTRIBUTION = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
PREFIX = "mcbench-"


@dataclass(frozen=True)
class PluginNames:
    plugin: str
    """What benchmark files call it, and its entry-point name: my_trigger."""
    module: str
    """mcbench_my_trigger: prefixed, so that it cannot shadow another package's module."""
    cls: str
    """MyTrigger."""
    distribution: str
    """mcbench-my-trigger, as examples/checkerboard-attack names itself."""


def plugin_names(name: str) -> PluginNames:
    """The names for NAME (my-trigger, My_Trigger and mcbench-my-trigger give the same), or
    ConfigError when NAME is no package name or does not start with a letter."""
    if not DISTRIBUTION.fullmatch(name):
        raise ConfigError(
            f"{name!r} is not a package name: letters, digits, '-', '_' and '.', "
            f"starting and ending with a letter or digit"
        )
    normal = re.sub(r"[-_.]+", "-", name).lower()  # PEP 503 normalisation
    if normal.startswith(PREFIX):
        normal = normal[len(PREFIX) :]
    plugin = normal.replace("-", "_")
    if not plugin[:1].isalpha():
        raise ConfigError(f"{name!r}: a plugin name starts with a letter, after any {PREFIX!r}")
    return PluginNames(
        plugin=plugin,
        module=f"mcbench_{plugin}",
        cls="".join(part.capitalize() for part in plugin.split("_")),
        distribution=PREFIX + normal,
    )
