"""Leaderboard tables as a pure function of result records (JSON files): no torch, no
runner, no plugins are imported here."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from mcbench.errors import ConfigError

GROUP = ["track", "dataset", "architecture", "attack", "repair", "connection", "budget"]

TITLES = {
    "summary": "Leaderboard (at the reported t; endpoints: the two attacked models; "
               "untampered: the same before a weight attack)",
    "barriers": "Barriers along the path (largest shortfall from the straight interpolation "
                "of the endpoints' values; Pearson r of adversarial loss and input-Hessian "
                "eigenvalue along t)",
    "tamper": "Weight attacks on the endpoints",
    "path": "Along the path",
}


def load_records(results: str | Path) -> tuple[list[dict], list[dict]]:
    """(ok records, failed records) found under RESULTS/records."""
    folder = Path(results) / "records"
    if not folder.is_dir():
        raise FileNotFoundError(f"{results}: no records folder (expected {folder})")
    ok, failed = [], []
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ConfigError(f"not a valid record (JSON): {e}", file=str(path)) from None
        if not isinstance(record, dict) or not {"cell_id", "status", "config"} <= set(record):
            raise ConfigError("not a result record: expected an object with cell_id, status "
                              "and config", file=str(path))
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


LABELLED = ("dataset", "architecture", "attack", "repair", "connection")


def plugin_labels(records: list[dict]) -> dict[str, dict[str, str]]:
    """{field: {cell_id: label}} for every plugin field a table row names."""
    return {f: _labels(records, f) for f in LABELLED}


def frames(records: list[dict], labels: dict | None = None
           ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per record at its reported t, one row per record and t along the path)."""
    labels = labels or plugin_labels(records)
    reported, along = [], []
    for r in records:
        key = {"track": r["config"]["track"],
               **{f: labels[f][r["cell_id"]] for f in labels},
               "budget": r["config"]["budget"], "seed": r["config"]["seed"]}
        for point in r["path"]:
            values = {k: v for k, v in point.items() if k != "notes"}
            row = {**key, **values, "t": point["t"] if point["t"] is not None else float("nan")}
            along.append(row)
            if point["t"] == r["reported_t"]:
                ends = {}
                # the models the repair starts from, and for weight attacks the same
                # models before they were tampered with
                for field in ("endpoints", "untampered"):
                    scores = r.get(field)
                    if scores:
                        ends.update({f"{field}:{m}": _mean([scores[e][m] for e in scores])
                                     for m in next(iter(scores.values())) if m != "notes"})
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


def metric_keys(records: list[dict]) -> list[str]:
    """Metric keys (label, else name) in the order the configurations list them."""
    keys: list[str] = []
    for r in records:
        for m in r["config"]["metrics"]:
            key = m.get("label") or m["name"]
            if key not in keys:
                keys.append(key)
    return keys


def _metrics_in(df: pd.DataFrame, records: list[dict]) -> list[str]:
    return [k for k in metric_keys(records) if k in df.columns and df[k].notna().any()]


def build_tables(records: list[dict]) -> dict[str, pd.DataFrame]:
    """{"summary": at the reported t, with the endpoints' own figures beside;
    "path": along t} - numeric columns ``<metric>_mean`` / ``_std``."""
    if not records:
        return {"summary": pd.DataFrame(), "path": pd.DataFrame()}
    labels = plugin_labels(records)
    reported, along = frames(records, labels)
    metrics = _metrics_in(along, records)
    endpoint_cols = [f"{field}:{m}" for field in ("untampered", "endpoints") for m in metrics
                     if f"{field}:{m}" in reported and reported[f"{field}:{m}"].notna().any()]
    summary = summarize(reported, GROUP + ["t"], metrics + endpoint_cols)
    path = summarize(along, GROUP + ["t"], metrics)
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
    gaps = [(first + (last - first) * x) - v if higher_is_better else v - (first + (last - first) * x)
            for x, v in zip(t, values)]
    return max(0.0, max(gaps))


CORRELATED = ("adversarial_loss", "input_hessian_eig")


def barrier_table(records: list[dict], metrics: list[str], labels: dict) -> pd.DataFrame:
    """Per path (mean ± std over seeds): each metric's barrier height, and the Pearson
    correlation along t between adversarial loss and the input-Hessian eigenvalue."""
    info = metric_info(records)
    rows = []
    for r in records:
        points = [p for p in r["path"] if p["t"] is not None]
        if len(points) < 3:
            continue
        t = [p["t"] for p in points]
        row = {"track": r["config"]["track"], **{f: labels[f][r["cell_id"]] for f in labels},
               "budget": r["config"]["budget"], "seed": r["config"]["seed"]}
        for m in metrics:
            better = info.get(m, {}).get("higher_is_better")
            values = [p.get(m) for p in points]
            if better is None or any(v is None for v in values):
                continue
            row[f"barrier:{m}"] = barrier(t, values, better)
        pairs = [(a, b) for a in metrics for b in metrics
                 if info.get(a, {}).get("name", a) == CORRELATED[0]
                 and info.get(b, {}).get("name", b) == CORRELATED[1]]
        for a, b in pairs:
            series = pd.DataFrame([{a: p.get(a), b: p.get(b)} for p in points]).astype(float)
            name = "pearson" if len(pairs) == 1 else f"pearson:{a}~{b}"
            row[name] = series[a].corr(series[b])
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    columns = [c for c in df.columns if c.startswith(("barrier:", "pearson"))]
    return summarize(df, GROUP, columns)


TAMPER_FIGURES = ("targets_flipped", "keep_set_accuracy", "steps", "raise", "flips",
                  "accuracy_after")


def tamper_table(records: list[dict], labels: dict) -> pd.DataFrame:
    """One row per tampered endpoint (shared by every cell built on it): what the weight
    attack changed (L0 / L2 / L-inf over all weights), its own figures and its run time."""
    rows, seen = [], set()
    for r in records:
        for role, report in (r.get("tamper") or {}).items():
            key = r.get("keys", {}).get(f"tamper_{role}", (r["cell_id"], role))
            if key in seen:
                continue
            seen.add(key)
            size = report.get("size", {})
            rows.append({"track": r["config"]["track"],
                         **{f: labels[f][r["cell_id"]] for f in
                            ("dataset", "architecture", "attack")},
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
    out = out.astype(object).where(out.notna(), None)  # e.g. no t for a single-model repair
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
    if "seeds" in table:
        shown = display(table, info)
    else:  # a plain table (the weight attacks'): blanks where a figure does not apply
        shown = table.astype(object).where(table.notna(), None)
    if fmt == "html":
        shown = shown.astype(object).where(shown.notna(), "-")
        return shown.to_html(index=False, border=0, classes="leaderboard", na_rep="-")
    return tabulate(shown, headers="keys", tablefmt="github", showindex=False,
                    missingval="-", floatfmt=".4g") + "\n"
