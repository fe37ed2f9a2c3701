"""`mcbench new`: a third-party plugin package, rendered with copier from the template kept
in ``plugin-template/`` (installed with mcbench as package data)."""

from mcbench.scaffold.names import PluginNames, plugin_names
from mcbench.scaffold.render import STAGES, TEMPLATE, write_package

__all__ = ["STAGES", "TEMPLATE", "PluginNames", "plugin_names", "write_package"]
