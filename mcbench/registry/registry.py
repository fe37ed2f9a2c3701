"""Name -> plugin class lookups, with the distribution that provides each plugin."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import pluggy

import mcbench
from mcbench.errors import PluginError, suggest
from mcbench.hookspecs import KIND_HOOKS
from mcbench.kinds import Plugin
from mcbench.registry.failures import LoadFailure, describe_error
from mcbench.registry.manager import distribution_of, make_plugin_manager

P = TypeVar("P", bound=Plugin)


@dataclass(frozen=True)
class Entry:
    cls: type[Plugin]
    kind: str
    provider: str  # the pluggy plugin name (module) that registered it
    distribution: str
    version: str

    @property
    def name(self) -> str:
        return self.cls.name

    @property
    def description(self) -> str:
        return (self.cls.__doc__ or "").strip().splitlines()[0] if self.cls.__doc__ else ""

    @property
    def cache_version(self) -> str:
        return self.cls.version or f"{self.distribution}=={self.version}"


class Registry:
    """Every plugin class by kind and name. Each hook implementation is called through
    pluggy on its own (so pluggy decides the arguments it gets, the order, wrappers and
    monitoring) with a ``register`` that knows which plugin is calling. An installed
    plugin whose hook raises is skipped whole and listed in ``failures``."""

    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm
        self.entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KIND_HOOKS}
        self.failures: list[LoadFailure] = list(getattr(pm, "failures", ()))
        pending: list[tuple[type, str, str, str, str]] = []
        failed: set[str] = set()
        for kind, hook_name in KIND_HOOKS.items():
            for impl, call in _each_implementation(pm, hook_name):
                if impl.plugin_name in failed:
                    continue
                found: list[type] = []
                failure = self._call(impl, call, hook_name, register=found.append)
                if failure:
                    failed.add(impl.plugin_name)
                    continue
                dist, version = distribution_of(pm, impl.plugin)
                pending += [(cls, kind, impl.plugin_name, dist, version) for cls in found]
        for cls, kind, provider, dist, version in pending:
            if provider not in failed:
                self._add(cls, kind, provider, dist, version)
        for provider in failed:
            pm.unregister(name=provider)

    def commands(self, new_group: Callable[[], Any]) -> tuple[dict[str, Any], list[LoadFailure]]:
        """The click commands of every plugin (hook mcbench_register_commands), by name.
        Each plugin adds its commands to a group of its own (``new_group()``), so one
        whose hook raises adds none: it is returned among the failures."""
        commands, failures = {}, []
        for impl, call in _each_implementation(self.pm, "mcbench_register_commands"):
            group = new_group()
            failure = self._call(impl, call, "mcbench_register_commands", cli=group)
            if failure:
                failures.append(failure)
            else:
                commands.update(group.commands)
        return commands, failures

    def _call(
        self, impl: pluggy.HookImpl, call: Callable[..., object], hook_name: str, **kwargs: Any
    ) -> LoadFailure | None:
        """Call one implementation through pluggy. An installed plugin that raises is
        recorded and returned; one registered by hand raises PluginError."""
        try:
            call(**kwargs)
        except Exception as e:
            error = f"{hook_name} raised {describe_error(e)}"
            if impl.plugin_name not in getattr(self.pm, "distributions", {}):
                raise PluginError(f"plugin {impl.plugin_name!r}: {error}") from e
            dist, version = distribution_of(self.pm, impl.plugin)
            failure = LoadFailure(impl.plugin_name, dist, version, error)
            self.failures.append(failure)
            return failure
        return None

    def _add(self, cls: object, kind: str, provider: str, dist: str, version: str) -> None:
        if not (
            isinstance(cls, type) and issubclass(cls, Plugin) and dataclasses.is_dataclass(cls)
        ):
            raise PluginError(
                f"{provider} registered {cls!r} as a {kind}: a plugin must be a "
                f"dataclass subclassing the mcbench.kinds base for its kind"
            )
        if cls.kind != kind:
            raise PluginError(
                f"{provider} registered {cls.__name__} (a {cls.kind}) through the {kind} hook"
            )
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{provider}: {cls.__name__} has no 'name'")
        if name in self.entries[kind]:
            other = self.entries[kind][name]
            raise PluginError(
                f"two plugins register the {kind} '{name}': {other.provider} "
                f"({other.distribution} {other.version}) and {provider} "
                f"({dist} {version})"
            )
        self.entries[kind][name] = Entry(cls, kind, provider, dist, version)

    def get(self, kind: str, name: str) -> Entry:
        try:
            return self.entries[kind][name]
        except KeyError:
            raise KeyError(self._missing(kind, name)) from None

    def _missing(self, kind: str, name: str) -> str:
        if self.pm.is_blocked(name):
            return f"{kind} {name!r} is blocked (--block / $MCBENCH_BLOCK_PLUGINS)"
        for failure in self.failures:
            if failure.name == name:
                return f"{kind} {name!r} is not available: {failure.describe()}"
        available = sorted(self.entries[kind])
        message = (
            f"unknown {kind} {name!r}{suggest(name, available)} "
            f"available: {', '.join(available) or '(none)'}"
        )
        if self.failures:
            message += f"; plugins that failed to load: {', '.join(f.name for f in self.failures)}"
        return message

    def resolve(self, base: type[P], name: str) -> type[P]:
        """The class of the plugin named in a parameter that is itself a plugin (e.g. a
        metric's attack), checked to be of the required base (e.g. an evasion attack);
        KeyError otherwise."""
        cls = self.get(base.kind, name).cls
        if not issubclass(cls, base):
            fitting = [e.name for e in self.all(base.kind) if issubclass(e.cls, base)]
            raise KeyError(
                f"{base.kind} {name!r} is not a {base.__name__}; expected one of: "
                f"{', '.join(fitting)}"
            )
        return cls

    def entry_of(self, instance: object) -> Entry:
        """The entry whose class ``instance`` is (e.g. the attack a metric holds)."""
        cls = type(instance)
        entry = self.entries.get(getattr(cls, "kind", ""), {}).get(getattr(cls, "name", ""))
        if entry is None or entry.cls is not cls:
            raise PluginError(f"{cls.__qualname__} is not a registered plugin class")
        return entry

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def all(self, kind: str | None = None) -> list[Entry]:
        kinds = [kind] if kind else list(self.entries)
        return [self.entries[k][n] for k in kinds for n in sorted(self.entries[k])]


def _each_implementation(
    pm: pluggy.PluginManager, hook_name: str
) -> Iterator[tuple[pluggy.HookImpl, Callable[..., object]]]:
    """(implementation, caller) for each implementation of a hook that is not a wrapper,
    in pluggy's call order (tryfirst/trylast honoured). The caller runs that one
    implementation through pluggy, inside every wrapper of the hook."""
    impls = getattr(pm.hook, hook_name).get_hookimpls()
    plain = [i for i in reversed(impls) if not (i.hookwrapper or i.wrapper)]
    for impl in plain:
        others = [i.plugin for i in plain if i.plugin is not impl.plugin]
        yield impl, pm.subset_hook_caller(hook_name, remove_plugins=others)


def host_cache_version() -> str:
    """The cache version of the plugins mcbench itself provides (what a built-in
    plugin's ``Entry.cache_version`` is): the version of what holds a settings section's
    nested plugin."""
    return f"mcbench=={mcbench.__version__}"


def load_registry(
    *,
    entry_points: bool = True,
    extra: tuple[object, ...] = (),
    blocked: Iterable[str] = (),
    only: Iterable[str] | None = None,
) -> Registry:
    """The registry of the installed plugins (``make_plugin_manager`` says which)."""
    return Registry(
        make_plugin_manager(entry_points=entry_points, extra=extra, blocked=blocked, only=only)
    )
