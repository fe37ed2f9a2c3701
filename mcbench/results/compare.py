"""Your records ranked among a published table's, after checking that both follow the same
protocol. Records only: no torch, no plugins."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

import pandas as pd

from mcbench.errors import ConfigError
from mcbench.results.format import NO_INFO, number
from mcbench.results.labels import plugin_labels
from mcbench.results.leaderboard import frames, metric_keys
from mcbench.results.records import MetricInfo, Record, metric_info
from mcbench.vocabulary import ENDPOINT_AXES

# What a row's numbers depend on besides the repair being compared: the data, the attacked
# endpoints (how they were trained and attacked), the budget and the evaluation's t rule.
PROTOCOL = ("track", *ENDPOINT_AXES, "budget", "split", "train", "adversarial")
T_RULE = (
    "report_t",
    "recalibrate_bn",
    "recalibrate_augmented",
    "recalibrate_anchored",
    "t_rule",
    "holdout",
    "tolerance",
)
# What a record without these settings followed (EvalSettings' defaults: records leave
# out the ones at their default, as did the records written before they existed).
T_RULE_DEFAULTS = {
    "t_rule": "fixed",
    "holdout": 0.2,
    "tolerance": 0.02,
    "recalibrate_augmented": 0,
    "recalibrate_anchored": False,
}
# The settings each rule leaves unused: they do not keep rows apart.
T_RULE_UNUSED = {"fixed": ("holdout", "tolerance"), "bonafide": ("report_t",)}
# The numeric precision of a record's forward passes (records without it computed in fp32);
# compilation is not protocol: it changes speed, not what is computed.
PRECISION_DEFAULT = "fp32"
# A protocol group: rows in one group are ranked against each other.
PROTOCOL_GROUP = ["track", *ENDPOINT_AXES, "budget"]


def without_version(spec: object) -> object:
    """A plugin identity without its version: versions are provenance, not protocol."""
    if isinstance(spec, dict) and "name" in spec and "params" in spec:
        return {"name": spec["name"], "params": spec["params"]}
    return spec


def protocol(record: Record) -> dict[str, object]:
    """Everything in a record's configuration that a comparable row must share."""
    config = record["config"]
    out = {key: without_version(config.get(key)) for key in PROTOCOL}
    evaluate = {**T_RULE_DEFAULTS, **(config.get("evaluate") or {})}
    unused = T_RULE_UNUSED.get(cast(str, evaluate["t_rule"]), ())  # any other value: none
    out["evaluate"] = {key: evaluate.get(key) for key in T_RULE if key not in unused}
    out["precision"] = (config.get("compute") or {}).get("precision", PRECISION_DEFAULT)
    return out


def metric_definitions(record: Record) -> dict[str, object]:
    return {m.get("label") or m["name"]: without_version(m) for m in record["config"]["metrics"]}


def flatten(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, inner in value.items():
            out.update(flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def differences(yours: object, published: object) -> list[str]:
    """'key: yours X, published Y' for each leaf that differs."""
    a, b = flatten(yours), flatten(published)
    return [
        f"{key}: yours {json.dumps(a.get(key))}, published {json.dumps(b.get(key))}"
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key)
    ]


def _key(value: object) -> str:
    return json.dumps(value, sort_keys=True)


@dataclass
class Mismatch:
    """One of your records that no published row can be compared with, and why."""

    label: str
    cell_id: str
    reasons: list[str]

    def __str__(self) -> str:
        return f"{self.label} [{self.cell_id}]:\n" + "\n".join(f"    {r}" for r in self.reasons)


@dataclass
class Comparison:
    table: pd.DataFrame  # one row per (protocol group, source, repair, connection)
    metrics: list[str]  # ranked metrics, in the records' order
    mismatches: list[Mismatch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _data_copy(record: Record) -> str | None:
    found = re.search(r"sha256 ([0-9a-f]{12,})", record.get("data_source") or "")
    return found.group(1) if found else None


def match(yours: list[Record], published: list[Record]) -> tuple[list[Record], list[Mismatch]]:
    """Split your records into comparable ones and mismatches (with their reasons)."""
    protocols = [protocol(p) for p in published]
    by_protocol: dict[str, list[Record]] = {}
    for p, theirs in zip(published, protocols):
        by_protocol.setdefault(_key(theirs), []).append(p)
    ok: list[Record] = []
    mismatches: list[Mismatch] = []
    for r in yours:
        mine = protocol(r)
        peers = by_protocol.get(_key(mine))
        if not peers:
            reasons = min((differences(mine, theirs) for theirs in protocols), key=len)
            budgets = sorted(
                {
                    cast(int, theirs["budget"])  # a record's budget, as protocol() copies it
                    for theirs in protocols
                    if {**mine, "budget": None} == {**theirs, "budget": None}
                }
            )
            if budgets and r["config"]["budget"] not in budgets:
                reasons = [
                    f"budget: yours {r['config']['budget']}, published "
                    f"{', '.join(map(str, budgets))}"
                ]
            mismatches.append(
                Mismatch(
                    r.get("label", r["cell_id"]),
                    r["cell_id"],
                    ["protocol differs from the nearest published row:", *reasons],
                )
            )
            continue
        theirs = metric_definitions(peers[0])
        clashes = [
            f"metric {name}: " + "; ".join(differences(spec, theirs[name]))
            for name, spec in metric_definitions(r).items()
            if name in theirs and spec != theirs[name]
        ]
        shared = set(metric_definitions(r)) & set(theirs)
        if clashes or not shared:
            mismatches.append(
                Mismatch(
                    r.get("label", r["cell_id"]),
                    r["cell_id"],
                    clashes or ["no metric in common with the published rows"],
                )
            )
            continue
        ok.append(r)
    return ok, mismatches


def compare(yours: list[Record], published: list[Record]) -> Comparison:
    """Rank each of your comparable rows among the published rows of its protocol group.
    Rows are means over seeds at the reported t; rank 1 is best, ties share the better rank."""
    if not published:
        raise ValueError("the published table has no records")
    if not yours:
        raise ValueError("your results have no records")
    ok, mismatches = match(yours, published)
    notes: list[str] = []
    copies = {c for r in yours if (c := _data_copy(r)) is not None} - {
        _data_copy(r) for r in published
    }
    if copies:
        notes.append(
            "your data copy (sha256 "
            + ", ".join(c[:12] for c in sorted(copies))
            + "…) is not the one the published rows used; the numbers may differ "
            "by the copy alone (e.g. JPEG-compressed images)"
        )
    if not ok:
        return Comparison(pd.DataFrame(), [], mismatches, notes)
    groups = {_group(r) for r in ok}
    peers = [r for r in published if _group(r) in groups]
    records: list[Record] = []
    source: dict[str, object] = {}
    for side, rows in (("yours", ok), ("published", peers)):
        for r in rows:
            # a cell may be on both sides (you re-ran a published cell): keep them apart
            cell_id = f"{side}:{r['cell_id']}"
            records.append({**r, "cell_id": cell_id})
            source[cell_id] = side
    reported, _ = frames(records, plugin_labels(records), extra={"source": source})
    if reported.empty:  # no row has a point at its reported t
        return Comparison(pd.DataFrame(), [], mismatches, notes)
    info = metric_info(records)
    theirs = metric_keys(peers)
    ranked = [
        m
        for m in metric_keys(ok)
        if m in reported
        and m in theirs
        and info.get(m, NO_INFO).get("higher_is_better") is not None
    ]
    keys = PROTOCOL_GROUP + ["source", "repair", "connection", "t"]
    table = (
        reported.groupby(keys, dropna=False, sort=True)
        .agg(seeds=("seed", "size"), **{m: (m, "mean") for m in ranked})
        .reset_index()
    )
    for m in ranked:
        better_high = info[m]["higher_is_better"]
        table[f"rank:{m}"] = (
            table.groupby(PROTOCOL_GROUP, dropna=False)[m]
            .rank(method="min", ascending=not better_high)
            .astype("Int64")
        )
    return Comparison(table, ranked, mismatches, notes)


def _group(record: Record) -> str:
    return _key({k: without_version(record["config"].get(k)) for k in PROTOCOL_GROUP})


def ranking_tables(
    result: Comparison, by: str, info: Mapping[str, MetricInfo]
) -> list[tuple[str, pd.DataFrame]]:
    """(heading, rows sorted by the rank of BY) per protocol group, values formatted as
    'value (rank)'."""
    if by not in result.metrics:
        raise ValueError(
            f"cannot rank by {by!r}: the metrics ranked in both are "
            f"{', '.join(result.metrics) or '(none)'}"
        )
    out: list[tuple[str, pd.DataFrame]] = []
    for group, rows in result.table.groupby(PROTOCOL_GROUP, dropna=False, sort=True):
        rows = rows.sort_values([f"rank:{by}", "source"], ascending=[True, False])
        shown = pd.DataFrame(
            {
                "rank": rows[f"rank:{by}"].to_numpy(),
                "source": rows["source"].to_numpy(),
                "repair": rows["repair"].to_numpy(),
                "connection": rows["connection"].to_numpy(),
                "t": ["-" if pd.isna(t) else f"{t:g}" for t in rows["t"]],
                "seeds": rows["seeds"].to_numpy(),
            }
        )
        for m in result.metrics:
            percent = info.get(m, NO_INFO).get("percent", False)
            title = m + (" %" if percent else "")
            shown[title] = [
                f"{number(v, percent)} ({rank})" for v, rank in zip(rows[m], rows[f"rank:{m}"])
            ]
        heading = " · ".join(
            f"{k} {v}" if k == "budget" else str(v) for k, v in zip(PROTOCOL_GROUP, group)
        )
        out.append((heading, shown))
    return out


class Mismatched(ConfigError):
    """Rows that cannot be ranked against the published ones: a one-line message, and the
    rows with their reasons (``listing``, several lines) to show before it."""

    def __init__(self, message: str, listing: str) -> None:
        super().__init__(message)
        self.listing = listing


def refuse_mismatches(
    result: Comparison, published: str, total: int, skip_mismatched: bool
) -> str | None:
    """The mismatch policy: ``Mismatched`` when any of your TOTAL rows does not follow the
    protocol of PUBLISHED, unless SKIP_MISMATCHED and some rows do (then the listing of
    the rows left out, to print beside the ranking); None when every row matches."""
    if not result.mismatches:
        return None
    listing = "\n".join(f"  {m}" for m in result.mismatches)
    if result.table.empty or not skip_mismatched:
        hint = "" if result.table.empty else " (--skip-mismatched ranks the rows that do match)"
        raise Mismatched(
            f"{len(result.mismatches)} of your {total} rows do not follow the protocol of "
            f"{published}; they cannot be ranked against it{hint}",
            f"not comparable ({len(result.mismatches)} rows, protocol differs):\n{listing}",
        )
    return f"not compared ({len(result.mismatches)} rows, protocol differs):\n{listing}"
