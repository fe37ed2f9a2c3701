"""Leaderboard tables as a pure function of result records (JSON files): no torch, no
runner, no plugins are imported here."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from tabulate import tabulate

GROUP = ["track", "dataset", "architecture", "attack", "repair", "connection", "budget"]


def load_records(results: str | Path) -> tuple[list[dict], list[dict]]:
    """(ok records, failed records) found under RESULTS/records."""
    folder = Path(results) / "records"
    if not folder.is_dir():
        raise FileNotFoundError(f"{results}: no records folder (expected {folder})")
    ok, failed = [], []
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        (ok if record.get("status") == "ok" else failed).append(record)
    return ok, failed


def _labels(records: list[dict], field: str) -> dict[str, str]:
    """Plugin labels per record: the name, plus the parameters that differ between
    records using the same plugin."""
    by_name: dict[str, list[dict]] = {}
    for r in records:
        spec = r["config"].get(field)
        if spec:
            by_name.setdefault(spec["name"], []).append(spec["params"])
    varying = {name: sorted({k for p in ps for k in p if any(q.get(k) != p.get(k) for q in ps)})
               for name, ps in by_name.items()}
    out = {}
    for r in records:
        spec = r["config"].get(field)
        if not spec:
            out[r["cell_id"]] = "-"
            continue
        keys = varying[spec["name"]]
        inner = ",".join(f"{k}={spec['params'][k]}" for k in keys)
        out[r["cell_id"]] = f"{spec['name']}({inner})" if inner else spec["name"]
    return out


def metric_info(records: list[dict]) -> dict[str, dict]:
    info: dict[str, dict] = {}
    for r in records:
        info.update(r.get("metric_info", {}))
    return info


def frames(records: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per record at its reported t, one row per record and t along the path)."""
    labels = {f: _labels(records, f) for f in ("dataset", "architecture", "attack", "repair",
                                                "connection")}
    reported, along = [], []
    for r in records:
        key = {"track": r["config"]["track"],
               **{f: labels[f][r["cell_id"]] for f in labels},
               "budget": r["config"]["budget"], "seed": r["config"]["seed"]}
        for point in r["path"]:
            row = {**key, **point, "t": point["t"] if point["t"] is not None else float("nan")}
            along.append(row)
            if point["t"] == r["reported_t"]:
                ends = {}
                # the models the repair starts from, and for weight attacks the same
                # models before they were tampered with
                for field in ("endpoints", "untampered"):
                    scores = r.get(field)
                    if scores:
                        ends.update({f"{field}:{m}": _mean([scores[e][m] for e in scores])
                                     for m in next(iter(scores.values()))})
                reported.append({**row, **ends})
    return pd.DataFrame(reported), pd.DataFrame(along)


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def summarize(df: pd.DataFrame, by: list[str], metrics: list[str]) -> pd.DataFrame:
    """Mean and std over seeds of each metric, with the number of seeds."""
    grouped = df.groupby(by, dropna=False, sort=True)
    out = grouped.size().rename("seeds").to_frame()
    for m in metrics:
        out[f"{m}_mean"] = grouped[m].mean()
        out[f"{m}_std"] = grouped[m].std(ddof=1).fillna(0.0)
    return out.reset_index()


def _metrics_in(df: pd.DataFrame, records: list[dict]) -> list[str]:
    names = []
    for r in records:
        for m in r["config"]["metrics"]:
            if m["name"] not in names and m["name"] in df.columns and df[m["name"]].notna().any():
                names.append(m["name"])
    return names


def build_tables(records: list[dict]) -> dict[str, pd.DataFrame]:
    """{"summary": at the reported t, with the endpoints' own figures beside;
    "path": along t} - numeric columns ``<metric>_mean`` / ``_std``."""
    if not records:
        return {"summary": pd.DataFrame(), "path": pd.DataFrame()}
    reported, along = frames(records)
    metrics = _metrics_in(along, records)
    endpoint_cols = [f"{field}:{m}" for field in ("untampered", "endpoints") for m in metrics
                     if f"{field}:{m}" in reported and reported[f"{field}:{m}"].notna().any()]
    summary = summarize(reported, GROUP + ["t"], metrics + endpoint_cols)
    path = summarize(along, GROUP + ["t"], metrics)
    tables = {"summary": summary, "path": path}
    tampering = tamper_table(records)
    if not tampering.empty:
        tables["tamper"] = tampering
    return tables


TAMPER_FIGURES = ("targets_flipped", "keep_set_accuracy", "steps", "raise", "flips",
                  "accuracy_after")


def tamper_table(records: list[dict]) -> pd.DataFrame:
    """One row per tampered endpoint (shared by every cell built on it): what the weight
    attack changed (L0 / L2 / L-inf over all weights), its own figures and its run time."""
    labels = {f: _labels(records, f) for f in ("dataset", "architecture", "attack")}
    rows, seen = [], set()
    for r in records:
        for role, report in (r.get("tamper") or {}).items():
            key = r.get("keys", {}).get(f"tamper_{role}", (r["cell_id"], role))
            if key in seen:
                continue
            seen.add(key)
            size = report.get("size", {})
            rows.append({"track": r["config"]["track"],
                         **{f: labels[f][r["cell_id"]] for f in labels},
                         "seed": r["config"]["seed"], "endpoint": role,
                         "L0": size.get("l0"), "L2": size.get("l2"), "Linf": size.get("linf"),
                         **{k: report[k] for k in TAMPER_FIGURES if k in report},
                         "seconds": report.get("seconds")})
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    return table.sort_values(["track", "dataset", "architecture", "attack", "seed", "endpoint"],
                             ignore_index=True)


def _fmt(mean, std, seeds: int, percent: bool) -> str:
    """'mean ± std' over seeds; the mean alone where there is one seed (no spread known)."""
    if pd.isna(mean):
        return "-"
    scale = 100.0 if percent else 1.0
    digits = 1 if percent else 3
    if seeds < 2:
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def display(table: pd.DataFrame, info: dict[str, dict]) -> pd.DataFrame:
    """Merge each mean/std pair into one 'mean ± std' text column."""
    out = table[[c for c in table.columns if not c.endswith(("_mean", "_std"))]].copy()
    for col in table.columns:
        if col.endswith("_mean"):
            name = col[:-5]
            base = name.split(":")[-1]
            percent = info.get(base, {}).get("percent", False)
            title = name + (" %" if percent else "")
            out[title] = [_fmt(m, s, n, percent) for m, s, n in
                          zip(table[col], table[name + "_std"], table["seeds"])]
    return out


def render(table: pd.DataFrame, info: dict[str, dict], fmt: str) -> str:
    if table.empty:
        return "(no results)\n"
    if fmt == "csv":
        return table.to_csv(index=False)
    shown = display(table, info) if "seeds" in table else table
    if fmt == "html":
        return shown.to_html(index=False, border=0, classes="leaderboard")
    return tabulate(shown, headers="keys", tablefmt="github", showindex=False) + "\n"
