"""The plugin manager: built by a function (never at import time) so tests get a fresh one.

Entry points are loaded one at a time: one that fails to import, or that implements a hook
mcbench does not define, is recorded as a ``LoadFailure`` and skipped, so the others keep
working. Entry points named in ``blocked`` are not loaded at all (``pm.set_blocked``).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable

import pluggy

from mcbench import hookspecs
from mcbench.errors import PluginError
from mcbench.registry.failures import LoadFailure, describe_error

ENTRY_POINT_GROUP = "mcbench"


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus what mcbench reports about loading: the entry points that
    failed (``failures``) and the distribution of each loaded one."""

    def __init__(self) -> None:
        super().__init__("mcbench")
        self.failures: list[LoadFailure] = []
        self.distributions: dict[str, tuple[str, str]] = {}  # plugin name -> (dist, version)


def make_plugin_manager(
    *,
    entry_points: bool = True,
    extra: tuple[object, ...] = (),
    blocked: Iterable[str] = (),
    only: Iterable[str] | None = None,
) -> PluginManager:
    """Load the ``mcbench`` entry-point group (built-ins included) except the ``blocked``
    entry-point names (and, given ``only``, all but those names), plus ``extra`` plugin
    objects (modules or classes with hook implementations). A broken entry point is
    skipped and listed in ``pm.failures``; a broken ``extra`` plugin raises PluginError."""
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    for name in blocked:
        pm.set_blocked(name)
    wanted = None if only is None else set(only)
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if wanted is None or ep.name in wanted:
                _load_entry_point(pm, ep)
    for plugin in extra:
        pm.register(plugin)
        _check_hooks(pm, plugin)
    return pm


def _load_entry_point(pm: PluginManager, ep: importlib.metadata.EntryPoint) -> None:
    if pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
        return
    dist: tuple[str, str] = ("unknown", "")
    if ep.dist:
        dist = (ep.dist.metadata["name"], ep.dist.version)
    try:
        plugin = ep.load()
        pm.register(plugin, name=ep.name)
    except Exception as e:  # a broken third-party plugin must not disable the others
        pm.failures.append(LoadFailure(ep.name, *dist, describe_error(e)))
        return
    try:
        _check_hooks(pm, plugin)
    except PluginError as e:
        pm.unregister(plugin)
        pm.failures.append(LoadFailure(ep.name, *dist, str(e)))
        return
    pm.distributions[ep.name] = dist


def _check_hooks(pm: pluggy.PluginManager, plugin: object) -> None:
    """Every hook the plugin implements must be one mcbench defines (a typo'd hook name
    would otherwise be ignored without a word)."""
    for hook in pm.get_hookcallers(plugin) or ():
        impls = [i for i in hook.get_hookimpls() if i.plugin is plugin]
        if not hook.has_spec() and not all(i.optionalhook for i in impls):
            raise PluginError(
                f"plugin {pm.get_name(plugin)!r} implements {hook.name!r}, a hook mcbench "
                f"does not define"
            )


def distribution_of(pm: pluggy.PluginManager, plugin: object) -> tuple[str, str]:
    """(distribution name, version) that provided a plugin, or ("local", "") if registered
    by hand."""
    name = pm.get_name(plugin)
    if isinstance(pm, PluginManager) and name in pm.distributions:
        return pm.distributions[name]
    for loaded, dist in pm.list_plugin_distinfo():
        if loaded is plugin:
            return dist.metadata["name"], dist.version
    return "local", ""
