"""The plugin manager: built by a function (never at import time) so tests get a fresh one."""

from __future__ import annotations

import pluggy

from mcbench import hookspecs
from mcbench.errors import PluginError

ENTRY_POINT_GROUP = "mcbench"


def make_plugin_manager(*, entry_points: bool = True, extra: tuple = ()) -> pluggy.PluginManager:
    """Load every plugin of the ``mcbench`` entry-point group (built-ins included) plus
    ``extra`` plugin objects (modules or classes with hook implementations)."""
    pm = pluggy.PluginManager("mcbench")
    pm.add_hookspecs(hookspecs)
    if entry_points:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as e:  # a broken third-party plugin must say which one it is
            raise PluginError(f"could not load an '{ENTRY_POINT_GROUP}' entry point: {e!r}") from e
    for plugin in extra:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as e:
        raise PluginError(
            f"plugin {e.plugin!r} implements a hook mcbench does not define: {e}"
        ) from None
    return pm


def distribution_of(pm: pluggy.PluginManager, plugin) -> tuple[str, str]:
    """(distribution name, version) that provided a plugin, or ("local", "") if registered
    by hand."""
    for loaded, dist in pm.list_plugin_distinfo():
        if loaded is plugin:
            return dist.metadata["name"], dist.version
    return "local", ""
