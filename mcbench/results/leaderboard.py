"""Leaderboard tables as a pure function of result records (JSON files): no torch, no
runner, no plugins are imported here."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

from mcbench.errors import ConfigError
from mcbench.results.format import NO_INFO
from mcbench.results.labels import Labels, plugin_labels, row_key
from mcbench.results.records import (
    MetricInfo,
    Point,
    Record,
    Report,
    Scores,
    SurfacePoint,
    metric_info,
)
from mcbench.vocabulary import ENDPOINT_AXES, PLUGIN_AXES

# The columns of a table row: a cell without its seed (rows are means over seeds).
ROW_GROUP = ["track", *PLUGIN_AXES, "budget"]
# What the attacked endpoints of a cell share: a weight attack's row.
ATTACKED = ["track", *ENDPOINT_AXES]

TITLES = {
    "summary": "Leaderboard (at the reported t; endpoints: the two attacked models; "
    "untampered: the same before a weight attack)",
    "barriers": "Barriers along the path (largest shortfall from the straight interpolation "
    "of the endpoints' values; Pearson r of adversarial loss and input-Hessian "
    "eigenvalue along t)",
    "tamper": "Weight attacks on the endpoints",
    "path": "Along the path",
}
# The fields of a record holding each endpoint role's scores.
BY_ROLE: tuple[Literal["endpoints", "untampered"], ...] = ("endpoints", "untampered")


def values_of(item: Point | Scores | SurfacePoint | Report) -> Mapping[str, Any]:
    """A point's, a model's or a report's values by key: besides the fields the record
    schema names, the metrics' scores (or the attack's figures), whose keys are the
    plugins' own."""
    return cast("Mapping[str, Any]", item)


def frames(
    records: list[Record],
    labels: Labels | None = None,
    extra: dict[str, dict[str, object]] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per record at its reported t, one row per record and t along the path),
    each keyed by ``row_key`` (with the columns of EXTRA, {column: {cell_id: value}})."""
    labels = labels or plugin_labels(records)
    reported, along = _Columns(), _Columns()
    for r in records:
        key = row_key(r, labels, extra)
        points = r["path"]
        along.add_points(key, points)
        for point in points:
            if point["t"] != r["reported_t"]:
                continue
            row: dict[str, object] = {**key, **point, "t": _t(point["t"])}
            row.pop("notes", None)
            # the models the repair starts from, and for weight attacks the same models
            # before they were tampered with
            for field in BY_ROLE:
                scores = r.get(field)
                if scores:
                    roles = scores.values()
                    for m in next(iter(roles)):
                        if m != "notes":
                            row[f"{field}:{m}"] = _mean([values_of(s).get(m) for s in roles])
            reported.add(row)
    return reported.frame(), along.frame()


def _t(t: float | None) -> float:
    return float("nan") if t is None else t


class _Columns:
    """Rows gathered column by column: the DataFrame that ``pd.DataFrame(rows)`` builds
    from a list of row dicts (columns in the order first seen, NaN where a row has no
    value), without building a dict per point and having pandas convert them all."""

    def __init__(self) -> None:
        self.columns: dict[str, list[object]] = {}
        self.rows = 0

    def _column(self, name: str) -> list[object]:
        column = self.columns.get(name)
        if column is None:
            column = self.columns[name] = [np.nan] * self.rows
        elif len(column) < self.rows:
            column.extend([np.nan] * (self.rows - len(column)))
        return column

    def add(self, row: Mapping[str, object]) -> None:
        for name, value in row.items():
            self._column(name).append(value)
        self.rows += 1

    def add_points(self, key: Mapping[str, object], points: Sequence[Point]) -> None:
        """One row per point: KEY's columns, then each point's values (but its notes)."""
        if not points:
            return
        for name, value in key.items():
            self._column(name).extend([value] * len(points))
        for name in dict.fromkeys(name for point in points for name in point):
            if name == "t":
                self._column(name).extend([_t(point["t"]) for point in points])
            elif name != "notes":
                self._column(name).extend([values_of(point).get(name, np.nan) for point in points])
        self.rows += len(points)

    def frame(self) -> pd.DataFrame:
        if not self.rows:
            return pd.DataFrame()
        for column in self.columns.values():
            column.extend([np.nan] * (self.rows - len(column)))
        return pd.DataFrame(self.columns)


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def summarize(df: pd.DataFrame, by: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean and std over seeds of each metric (those DF has), with the number of seeds;
    empty for no rows."""
    if df.empty:
        return pd.DataFrame()
    metrics = [m for m in metrics if m in df]
    grouped = df.groupby(by, dropna=False, sort=True)
    out = grouped.size().rename("seeds").to_frame()
    for m in metrics:
        out[f"{m}_mean"] = grouped[m].mean()
        out[f"{m}_std"] = grouped[m].std(ddof=1).fillna(0.0)
    return out.reset_index()


def metric_keys(records: list[Record]) -> list[str]:
    """Metric keys (label, else name) in the order the configurations list them."""
    keys: list[str] = []
    for r in records:
        for m in r["config"]["metrics"]:
            key = m.get("label") or m["name"]
            if key not in keys:
                keys.append(key)
    return keys


def _metrics_in(df: pd.DataFrame, records: list[Record]) -> list[str]:
    return [k for k in metric_keys(records) if k in df.columns and df[k].notna().any()]


def build_tables(records: list[Record]) -> dict[str, pd.DataFrame]:
    """{"summary": at the reported t, with the endpoints' own figures beside;
    "path": along t} - numeric columns ``<metric>_mean`` / ``_std``."""
    if not records:
        return {"summary": pd.DataFrame(), "path": pd.DataFrame()}
    labels = plugin_labels(records)
    reported, along = frames(records, labels)
    metrics = _metrics_in(along, records)
    endpoint_cols = [
        f"{field}:{m}"
        for field in ("untampered", "endpoints")
        for m in metrics
        if f"{field}:{m}" in reported and reported[f"{field}:{m}"].notna().any()
    ]
    summary = summarize(reported, ROW_GROUP + ["t"], metrics + endpoint_cols)
    path = summarize(along, ROW_GROUP + ["t"], metrics)
    tables = {"summary": summary, "path": path}
    barriers = barrier_table(records, metrics, labels)
    if not barriers.empty:
        tables["barriers"] = barriers
    tampering = tamper_table(records, labels)
    if not tampering.empty:
        tables["tamper"] = tampering
    return tables


def barrier(t: list[float], values: list[float], higher_is_better: bool) -> float:
    """How far the path falls short of the straight interpolation between its endpoints'
    values: max over t of (interpolation - value) for a score, (value - interpolation)
    for a loss. 0 when the path is never worse than the interpolation."""
    first, last = values[0], values[-1]
    gaps = [
        (first + (last - first) * x) - v if higher_is_better else v - (first + (last - first) * x)
        for x, v in zip(t, values)
    ]
    return max(0.0, max(gaps))


def correlated_pairs(metrics: list[str], info: Mapping[str, MetricInfo]) -> list[tuple[str, str]]:
    """(a, b) for each metric a that declares b's name in its ``correlate_with``, each
    pair once."""
    pairs: list[tuple[str, str]] = []
    for a in metrics:
        wanted = info.get(a, NO_INFO).get("correlate_with", [])
        for b in metrics:
            named = info.get(b, NO_INFO).get("name", b) in wanted
            if named and a != b and (a, b) not in pairs and (b, a) not in pairs:
                pairs.append((a, b))
    return pairs


def barrier_table(records: list[Record], metrics: list[str], labels: Labels) -> pd.DataFrame:
    """Per path (mean ± std over seeds): each metric's barrier height, and the Pearson
    correlation along t of each pair of metrics that a metric's info asks for."""
    info = metric_info(records)
    pairs = correlated_pairs(metrics, info)
    declared = [(m, info.get(m, NO_INFO).get("higher_is_better")) for m in metrics]
    ranked = [(m, better) for m, better in declared if better is not None]
    rows: list[dict[str, object]] = []
    for r in records:
        points = [p for p in r["path"] if p["t"] is not None]
        if len(points) < 3:
            continue
        t = [cast(float, p["t"]) for p in points]  # not None: the points above
        row = row_key(r, labels)
        for m, better in ranked:
            if values_of(points[0]).get(m) is None:  # a metric of another track, or not scored here
                continue
            values = [values_of(p).get(m) for p in points]
            if any(v is None for v in values):
                continue
            row[f"barrier:{m}"] = barrier(t, cast("list[float]", values), better)  # no None
        for a, b in pairs:
            name = "pearson" if len(pairs) == 1 else f"pearson:{a}~{b}"
            row[name] = _pearson(
                [values_of(p).get(a) for p in points], [values_of(p).get(b) for p in points]
            )
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    columns = [c for c in df.columns if c.startswith(("barrier:", "pearson"))]
    return summarize(df, ROW_GROUP, columns)


def _pearson(a: list[float | None], b: list[float | None]) -> float:
    """Pearson's r of A and B over the points where both have a value: what pandas'
    ``Series.corr`` computes, without building two Series per record (thousands of paths)."""
    x = np.array([np.nan if v is None else v for v in a], dtype=float)
    y = np.array([np.nan if v is None else v for v in b], dtype=float)
    both = ~(np.isnan(x) | np.isnan(y))
    if both.sum() < 2:
        return math.nan
    x, y = x[both] - x[both].mean(), y[both] - y[both].mean()
    x_max, y_max = np.abs(x).max(), np.abs(y).max()
    if x_max == 0 or y_max == 0:  # a constant series
        return math.nan
    x, y = x / x_max, y / y_max  # so that tiny deviations do not underflow when squared
    return float(np.clip(x @ y / math.sqrt(float(x @ x) * float(y @ y)), -1.0, 1.0))


def tamper_table(records: list[Record], labels: Labels) -> pd.DataFrame:
    """One row per tampered endpoint (shared by every cell built on it): what the weight
    attack changed (L0 / L2 / L-inf over all weights), the figures of its report that the
    attack declares, and its run time."""
    rows: list[dict[str, object]] = []
    seen: set[object] = set()
    attacked = {f: labels[f] for f in ATTACKED if f in labels}
    for r in records:
        attack_info = r.get("attack_info")
        figures = attack_info.get("report_figures", []) if attack_info else []
        for role, report in (r.get("tamper") or {}).items():
            key = r.get("keys", {}).get(f"tamper_{role}", (r["cell_id"], role))
            if key in seen:
                continue
            seen.add(key)
            size = report.get("size", {})
            named = row_key(r, attacked)
            del named["budget"]
            rows.append(
                {
                    **named,
                    "endpoint": role,
                    "L0": size.get("l0"),
                    "L2": size.get("l2"),
                    "Linf": size.get("linf"),
                    **{k: values_of(report)[k] for k in figures if k in report},
                    "seconds": report.get("seconds"),
                }
            )
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    return table.sort_values([*ATTACKED, "seed", "endpoint"], ignore_index=True)


def tables_to_print(
    tables: dict[str, pd.DataFrame], fmt: str, table: str | None = None, along_path: bool = True
) -> list[str]:
    """The names of the tables to print, in order: TABLE alone when asked for; for CSV
    (one table per file) the summary; else every table built, the path's when ALONG_PATH."""
    if table is not None:
        names = [table]
    elif fmt == "csv":
        names = ["summary"]
    else:
        names = [n for n in ("summary", "barriers", "tamper") if n in tables]
        names += ["path"] if along_path else []
    for name in names:
        if name not in tables:
            what = "weight attacks" if name == "tamper" else "paths"
            raise ConfigError(f"no {name!r} table: the records have no {what}")
    return names
