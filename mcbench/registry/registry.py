"""Name -> plugin class lookups, with the distribution that provides each plugin."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pluggy

from mcbench.errors import PluginError
from mcbench.hookspecs import KIND_HOOKS
from mcbench.kinds import Plugin
from mcbench.registry.manager import distribution_of, make_plugin_manager
from mcbench.registry.params import suggest


@dataclass(frozen=True)
class Entry:
    cls: type
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
    def __init__(self, pm: pluggy.PluginManager):
        self.pm = pm
        self.entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KIND_HOOKS}
        for kind, hook_name in KIND_HOOKS.items():
            hook = getattr(pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                dist, version = distribution_of(pm, impl.plugin)

                def register(cls, _kind=kind, _impl=impl, _dist=dist, _version=version):
                    self._add(cls, _kind, _impl.plugin_name, _dist, _version)

                impl.function(register=register)

    def _add(self, cls, kind, provider, dist, version):
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
            available = sorted(self.entries[kind])
            raise KeyError(
                f"unknown {kind} {name!r}{suggest(name, available)} "
                f"available: {', '.join(available) or '(none)'}"
            ) from None

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def all(self, kind: str | None = None) -> list[Entry]:
        kinds = [kind] if kind else list(self.entries)
        return [self.entries[k][n] for k in kinds for n in sorted(self.entries[k])]


def load_registry(*, entry_points: bool = True, extra: tuple = ()) -> Registry:
    return Registry(make_plugin_manager(entry_points=entry_points, extra=extra))
