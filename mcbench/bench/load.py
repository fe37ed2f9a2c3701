"""benchmarks.yaml -> validated cells. Every check runs before any computation, and every
error names the file, the line and the key."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from mcbench.bench.cells import Cell, PluginSpec
from mcbench.bench.dry_build import check_attacks_fit, check_networks
from mcbench.bench.nested import Nested, nested_plugins
from mcbench.bench.settings import (
    AdversarialTraining,
    ComputeSettings,
    EvalSettings,
    SplitSettings,
    TrainSettings,
)
from mcbench.bench.yamlfile import KeyPath, format_key, load_with_lines
from mcbench.errors import KEY_LIMIT, ConfigError, clip, shown, suggest
from mcbench.registry.params import INT_LIMIT, BadParam, UnknownParam, build
from mcbench.registry.registry import Registry, host_cache_version
from mcbench.vocabulary import KIND_BY_AXIS

if TYPE_CHECKING:
    from mcbench.kinds import RepairPlugin

TOP_KEYS = ("version", "description", "defaults", "tracks", "profiles")
AXES = KIND_BY_AXIS
SECTIONS = {
    "train": TrainSettings,
    "split": SplitSettings,
    "evaluate": EvalSettings,
    "adversarial": AdversarialTraining,
    "compute": ComputeSettings,
}
TRACK_KEYS = ("description", *AXES, "budgets", "seeds", *SECTIONS)
REQUIRED = ("datasets", "architectures", "repairs", "budgets", "seeds", "metrics")


@dataclass(frozen=True)
class Benchmark:
    file: str
    profile: str | None
    cells: tuple[Cell, ...]


class _Located:
    """Maps a key path inside a merged track back to the YAML line it came from."""

    def __init__(self, file: str, lines: dict[KeyPath, int], origin: dict[KeyPath, KeyPath]):
        self.file, self.lines, self.origin = file, lines, origin

    def error(self, message: str, at: KeyPath) -> ConfigError:
        """The error at AT (a path in the merged track, or in the file for the top level),
        with the line of AT or, where the key is missing, of what should hold it."""
        full = at
        for n in range(len(at), -1, -1):
            if at[:n] in self.origin:
                full = self.origin[at[:n]] + at[n:]
                break
        line = None
        for n in range(len(full), -1, -1):
            if full[:n] in self.lines:
                line = self.lines[full[:n]]
                break
        key = clip(format_key(full), KEY_LIMIT) or None
        return ConfigError(clip(message), file=self.file, line=line, key=key)


def load_benchmark(
    path: str | Path,
    registry: Registry,
    profile: str | None = None,
    tracks: tuple[str, ...] = (),
    compute: dict[str, Any] | None = None,
    device_type: str | None = None,
) -> Benchmark:
    """The cells of the benchmark file at PATH (with PROFILE, only TRACKS if given).
    COMPUTE overrides every track's compute settings (the command line's --precision and
    --compile); ``precision: auto`` is resolved for DEVICE_TYPE ("cpu", "cuda"; default:
    CUDA when present)."""
    file = str(path)
    if device_type is None:
        device_type = "cuda" if torch.cuda.is_available() else "cpu"
    raw, lines = load_with_lines(Path(path))
    top = _Located(file, lines, {})
    declared = _check_top(raw, top, profile, tracks)
    cells: list[Cell] = []
    for name in declared:
        if tracks and name not in tracks:
            continue
        settings, origin = _merge_track(raw, name, profile, top)
        own = settings.get("compute")
        if compute and (own is None or isinstance(own, dict)):
            settings["compute"] = {**(own or {}), **compute}
        located = _Located(file, lines, origin)
        cells.extend(_expand(name, settings, located, registry, device_type))
    return Benchmark(file=file, profile=profile, cells=tuple(cells))


def _check_top(
    raw: Any, top: _Located, profile: str | None, tracks: tuple[str, ...]
) -> dict[str, Any]:
    """The top level of the file: known keys, version 1, named tracks, and the PROFILE and
    TRACKS asked for among those declared. Returns the declared tracks."""
    if not isinstance(raw, dict):
        raise ConfigError(
            "expected a mapping with a 'tracks' key at the top", file=top.file, line=1
        )
    for key in raw:
        if key not in TOP_KEYS:
            raise top.error(
                f"unknown key {shown(key)}{suggest(str(key), TOP_KEYS)}; expected "
                f"one of: {', '.join(TOP_KEYS)}",
                (key,),
            )
    version = raw.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version != 1:
        raise top.error(
            f"unsupported version {shown(version)}; this mcbench reads version 1", ("version",)
        )
    declared = raw.get("tracks")
    if not isinstance(declared, dict) or not declared:
        raise top.error("expected a mapping of track names to track settings", ("tracks",))
    for name in declared:
        if not isinstance(name, str) or not name:
            raise top.error(
                f"a track name is text, got {shown(name)}", ("tracks",) + ((name,) if name else ())
            )
    profiles = raw.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise top.error("expected a mapping of profile names to profiles", ("profiles",))
    if profile is not None and profile not in profiles:
        raise ConfigError(
            clip(
                f"unknown profile {profile!r}{suggest(profile, profiles)} "
                f"available: {', '.join(map(str, profiles)) or '(none)'}"
            ),
            file=top.file,
            line=top.lines.get(("profiles",)),
            key="profiles",
        )
    for name in tracks:
        if name not in declared:
            raise ConfigError(
                clip(
                    f"unknown track {name!r}{suggest(name, declared)} "
                    f"available: {', '.join(declared)}"
                ),
                file=top.file,
                line=top.lines.get(("tracks",)),
                key="tracks",
            )
    if profile is not None:
        _check_profile(profiles[profile], declared, top, profile)
    return declared


def _check_profile(body: Any, declared: dict[str, Any], top: _Located, profile: str) -> None:
    at = ("profiles", profile)
    if not isinstance(body, dict):
        raise top.error("a profile is a mapping with 'defaults' and/or 'tracks'", at)
    for key in body:
        if key not in ("description", "defaults", "tracks"):
            raise top.error(
                f"unknown key {shown(key)}; a profile holds 'defaults' and 'tracks'", at + (key,)
            )
    tracks = body.get("tracks") or {}
    if not isinstance(tracks, dict):
        raise top.error("expected a mapping of track names to track settings", at + ("tracks",))
    for name in tracks:
        if name not in declared:
            raise top.error(
                f"profile names track {shown(name)}, which is not declared under "
                f"'tracks'{suggest(name, declared)}",
                at + ("tracks", name),
            )


def _merge_track(
    raw: Any, name: str, profile: str | None, top: _Located
) -> tuple[dict[str, Any], dict[KeyPath, KeyPath]]:
    """Layer defaults, the track, the profile's defaults and the profile's track (later
    wins). Settings sections merge key by key; axes are replaced whole."""
    layers: list[KeyPath] = [("defaults",), ("tracks", name)]
    if profile is not None:
        layers += [("profiles", profile, "defaults"), ("profiles", profile, "tracks", name)]
    merged: dict[str, Any] = {}
    origin: dict[KeyPath, KeyPath] = {(): ("tracks", name)}
    for layer in layers:
        body: Any = raw
        for part in layer:
            body = body.get(part) if isinstance(body, dict) else None
        if body is None:
            continue
        if not isinstance(body, dict):
            raise top.error("expected a mapping", layer)
        for key, value in body.items():
            if key not in TRACK_KEYS:
                raise top.error(
                    f"unknown key {shown(key)}{suggest(str(key), TRACK_KEYS)}; "
                    f"expected one of: {', '.join(TRACK_KEYS)}",
                    layer + (key,),
                )
            if key in SECTIONS and isinstance(value, dict):
                section = merged.setdefault(key, {})
                if not isinstance(section, dict):
                    section = merged[key] = {}
                for sub, subvalue in value.items():
                    section[sub] = subvalue
                    origin[(key, sub)] = layer + (key, sub)
                origin.setdefault((key,), layer + (key,))
            else:
                merged[key] = value
                origin[(key,)] = layer + (key,)
    return merged, origin


def _expand(
    track: str, s: dict[str, Any], loc: _Located, registry: Registry, device_type: str
) -> list[Cell]:
    for key in REQUIRED:
        if key not in s:
            raise loc.error(f"track {track!r} needs {key!r}", ())
    axes = {
        axis: _plugins(s.get(axis) or [], axis, kind, loc, registry) for axis, kind in AXES.items()
    }
    if not axes["metrics"]:
        raise loc.error("at least one metric is needed", ("metrics",))
    for axis in ("datasets", "architectures", "repairs"):
        if not axes[axis]:
            raise loc.error(f"at least one entry is needed in {axis!r}", (axis,))
    networks = check_networks(axes["datasets"], axes["architectures"], loc.error)
    check_attacks_fit(axes["attacks"], axes["architectures"], networks, loc.error)
    budgets = _ints(s["budgets"], "budgets", loc, minimum=1)
    seeds = _ints(s["seeds"], "seeds", loc, minimum=0)
    sections: dict[str, Any] = {
        key: _section(cls, s.get(key) or {}, key, loc, registry) for key, cls in SECTIONS.items()
    }
    sections["compute"] = sections["compute"].resolved(device_type)
    settings_plugins = tuple(
        Nested(f"{key}.{n.at}", n.entry, n.holder_version)
        for key, section in sections.items()
        for n in nested_plugins(section, registry, host_cache_version())
    )
    axes["metrics"] = _labelled(axes["metrics"])
    needs_connection = any(_uses_connection(r) for r in axes["repairs"])
    if needs_connection and not axes["connections"]:
        raise loc.error("the path repair needs at least one entry in 'connections'", ("repairs",))
    if needs_connection and sections["evaluate"].t_rule == "bonafide":
        _check_holdout(sections["evaluate"], budgets, loc)
    attacks: Sequence[PluginSpec | None] = axes["attacks"] or [None]
    cells = []
    for dataset, arch, attack, repair, budget, seed in itertools.product(
        axes["datasets"],
        axes["architectures"],
        attacks,
        axes["repairs"],
        budgets,
        seeds,
    ):
        connections: Sequence[PluginSpec | None] = (
            axes["connections"] if _uses_connection(repair) else [None]
        )
        for connection in connections:
            cells.append(
                Cell(
                    track=track,
                    dataset=dataset,
                    architecture=arch,
                    attack=attack,
                    repair=repair,
                    connection=connection,
                    budget=budget,
                    seed=seed,
                    metrics=tuple(axes["metrics"]),
                    **sections,
                    settings_plugins=settings_plugins,
                )
            )
    return cells


def _uses_connection(repair: PluginSpec) -> bool:
    return cast("type[RepairPlugin]", repair.entry.cls).uses_connection


def _check_holdout(evaluate: EvalSettings, budgets: list[int], loc: _Located) -> None:
    """Every budget of a path repair splits into images to fit on and images held out."""
    for i, budget in enumerate(budgets):
        try:
            evaluate.holdout_sizes(budget)
        except ValueError as e:
            raise loc.error(str(e), ("budgets", i)) from None


def _plugins(
    items: object, axis: str, kind: str, loc: _Located, registry: Registry
) -> list[PluginSpec]:
    if not isinstance(items, list):
        raise loc.error(f"expected a list of {kind} names or mappings with 'name'", (axis,))
    specs = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            name, values = item, {}
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            name, values = item["name"], {k: v for k, v in item.items() if k != "name"}
        else:
            raise loc.error(
                f"expected a {kind} name or a mapping with a 'name' key, got {shown(item)}",
                (axis, i),
            )
        name_at = (axis, i, "name") if isinstance(item, dict) else (axis, i)
        try:
            entry = registry.get(kind, name)
        except KeyError as e:
            raise loc.error(e.args[0], name_at) from None
        try:
            instance = build(entry.cls, values, resolve=registry.resolve)
        except (UnknownParam, BadParam) as e:
            at = (axis, i, *e.path) if isinstance(item, dict) else (axis, i)
            raise loc.error(str(e), at) from None
        nested = nested_plugins(instance, registry, entry.cache_version)
        specs.append(PluginSpec(kind=kind, entry=entry, instance=instance, nested=nested))
    names = [(s.name, s.identity()["params"]) for s in specs]
    for i, key in enumerate(names):
        if key in names[:i]:
            raise loc.error(
                f"{specs[i].name!r} is listed twice with the same parameters", (axis, i)
            )
    return specs


def _ints(values: object, key: str, loc: _Located, minimum: int) -> list[int]:
    if not isinstance(values, list) or not values:
        raise loc.error("expected a non-empty list of integers", (key,))
    for i, v in enumerate(values):
        if not isinstance(v, int) or isinstance(v, bool) or not minimum <= v < INT_LIMIT:
            raise loc.error(
                f"expected an integer >= {minimum} and below 2**63, got {shown(v)}", (key, i)
            )
    if len(set(values)) != len(values):
        raise loc.error("values are listed twice", (key,))
    return list(values)


def _section(cls: type[Any], values: object, key: str, loc: _Located, registry: Registry) -> Any:
    if not isinstance(values, dict):
        raise loc.error(f"expected a mapping of {key} settings", (key,))
    try:
        return build(cls, values, resolve=registry.resolve)
    except (UnknownParam, BadParam) as e:
        raise loc.error(str(e), (key, *e.path)) from None


def _labelled(metrics: list[PluginSpec]) -> list[PluginSpec]:
    """Label the entries of a metric listed more than once (with different parameters)
    by what tells them apart, e.g. robust_accuracy(attack=cw): one parameter if one
    suffices (a nested plugin's name first), else every parameter that differs."""
    out = []
    for spec in metrics:
        same = [m for m in metrics if m.name == spec.name]
        if len(same) == 1:
            out.append(spec)
            continue
        differ = [k for k in spec.params if any(m.params.get(k) != spec.params[k] for m in same)]
        candidates: list[tuple[str, Callable[[Any], str]]] = []
        for k in differ:
            if all(isinstance(m.params[k], dict) and "name" in m.params[k] for m in same):
                candidates.append((k, lambda v: v["name"]))
            candidates.append((k, _short))
        keys: list[tuple[str, Callable[[Any], str]]] | None = None
        for k, show in candidates:
            if len({show(m.params[k]) for m in same}) == len(same):
                keys = [(k, show)]
                break
        keys = keys or [(k, _short) for k in differ]
        inner = ",".join(f"{k}={show(spec.params[k])}" for k, show in keys)
        out.append(dataclasses.replace(spec, label=f"{spec.name}({inner})"))
    return out


def _short(value: object) -> str:
    if isinstance(value, dict) and "name" in value:
        return (
            value["name"]
            + "("
            + ",".join(f"{k}={v}" for k, v in value.items() if k != "name")
            + ")"
        )
    return str(value)
