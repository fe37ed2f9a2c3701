"""How a table row names a record: the label of each of its plugins, and the row key built
from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from mcbench.results.records import PluginSpec, Record
from mcbench.vocabulary import PLUGIN_AXES

MISSING = "-"  # a plugin the cell does not have, or a parameter its record does not name

Labels = dict[str, dict[str, str]]  # {field: {cell_id: label}}
Params = dict[str, object]  # a plugin's parameters


def plugin(record: Record, field: str) -> PluginSpec | None:
    """The plugin of the record's configuration in FIELD (one of PLUGIN_AXES), if any."""
    return cast("Mapping[str, PluginSpec | None]", record["config"]).get(field)


def plugin_label(records: list[Record], field: str) -> dict[str, str]:
    """{cell_id: label} of the plugin in FIELD: its name, plus the parameters whose values
    differ between the records using that plugin ('-' for a parameter a record lacks, e.g.
    one written before the plugin gained it)."""
    by_name: dict[str, list[Params]] = {}
    for r in records:
        spec = plugin(r, field)
        if spec:
            by_name.setdefault(spec["name"], []).append(spec["params"])
    varying = {name: _varying(ps) for name, ps in by_name.items()}
    out: dict[str, str] = {}
    for r in records:
        spec = plugin(r, field)
        if not spec:
            out[r["cell_id"]] = MISSING
            continue
        params = spec["params"]
        inner = ",".join(f"{k}={params.get(k, MISSING)}" for k in varying[spec["name"]])
        out[r["cell_id"]] = f"{spec['name']}({inner})" if inner else spec["name"]
    return out


def _varying(params: list[Params]) -> list[str]:
    """The parameter names whose values are not the same in every one of PARAMS (a value
    that is not there counts as '-'), sorted. One pass over the distinct parameter sets:
    thousands of records share a few."""
    by_text: dict[str, Params] = {}
    for p in params:  # equal texts are equal parameters (equal ones may differ in text)
        by_text.setdefault(repr(p), p)
    distinct: dict[object, Params] = {}
    for p in by_text.values():
        distinct.setdefault(_frozen(p), p)
    sets = list(distinct.values())
    names = {k for p in sets for k in p}
    return sorted(
        k for k in names if len({_frozen(p.get(k, MISSING)) for p in sets}) > 1 or _unequal(sets, k)
    )


def _unequal(sets: list[Params], key: str) -> bool:
    """Whether some value of KEY differs from itself (NaN), which the sets above hide."""
    return any(p.get(key, MISSING) != p.get(key, MISSING) for p in sets)


def _frozen(value: object) -> object:
    """VALUE as a hashable that is equal exactly when the values are equal."""
    if isinstance(value, dict):
        return frozenset((k, _frozen(v)) for k, v in value.items())
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def plugin_labels(records: list[Record]) -> Labels:
    """{field: {cell_id: label}} for every plugin field a table row names."""
    return {f: plugin_label(records, f) for f in PLUGIN_AXES}


def row_key(
    record: Record, labels: Labels, extra: dict[str, dict[str, object]] | None = None
) -> dict[str, object]:
    """The columns that name a record's row: its track, its label in each field of LABELS,
    its budget and seed, then each column of EXTRA ({column: {cell_id: value}})."""
    cell_id, config = record["cell_id"], record["config"]
    return {
        "track": config["track"],
        **{f: by_cell[cell_id] for f, by_cell in labels.items()},
        "budget": config["budget"],
        "seed": config["seed"],
        **{column: by_cell[cell_id] for column, by_cell in (extra or {}).items()},
    }
