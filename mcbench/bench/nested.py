"""The plugins held by a plugin's parameters (a metric's attack, the path repair's
adversarial attack) or by a settings section (the adversarial-training attack), each with
the registry entry it was resolved to and where it sits."""

from __future__ import annotations

from dataclasses import dataclass

from mcbench.registry.params import describe, is_plugin_type
from mcbench.registry.registry import Entry, Registry


@dataclass(frozen=True)
class Nested:
    at: str  # the parameter path inside what holds it, e.g. "attack" or "adversarial.attack"
    entry: Entry
    holder_version: str  # the cache version of the plugin (or of mcbench) that holds it


def nested_plugins(instance: object, registry: Registry, holder_version: str) -> tuple[Nested, ...]:
    """Every plugin held by ``instance``'s parameters, depth first."""
    found: list[Nested] = []
    for p in describe(type(instance)):
        value = getattr(instance, p.name)
        if not is_plugin_type(type(value)):
            continue
        entry = registry.entry_of(value)
        found.append(Nested(p.name, entry, holder_version))
        for inner in nested_plugins(value, registry, entry.cache_version):
            found.append(Nested(f"{p.name}.{inner.at}", inner.entry, inner.holder_version))
    return tuple(found)


def nested_versions(nested: tuple[Nested, ...], within: str | None = None) -> dict[str, str]:
    """``{where: cache version}`` of the nested plugins whose version is not pinned by
    what holds them (another distribution or version), e.g. a third-party attack as
    robust_accuracy.attack. A nested plugin of the holder's own distribution and version
    adds nothing, so built-ins inside built-ins leave keys as they are. ``within`` keeps
    the ones under one settings section, with paths relative to it."""
    out = {}
    for n in nested:
        at = n.at
        if within is not None:
            if not at.startswith(within + "."):
                continue
            at = at[len(within) + 1 :]
        if n.entry.cache_version != n.holder_version:
            out[at] = n.entry.cache_version
    return out
