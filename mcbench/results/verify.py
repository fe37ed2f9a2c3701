"""Re-running a published row: its record's configuration becomes a one-cell benchmark
file, the cell is run afresh, and every number is compared with the published one."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from mcbench.results.compare import differences, without_version
from mcbench.errors import ConfigError


def _entry(spec: dict) -> dict:
    """A plugin identity {name, params, version} as a benchmark file names it."""
    return {"name": spec["name"], **spec["params"]}


def benchmark_document(record: dict) -> dict:
    """The benchmark file whose only cell is the record's cell."""
    c = record["config"]
    track = {"datasets": [_entry(c["dataset"])], "architectures": [_entry(c["architecture"])],
             "repairs": [_entry(c["repair"])], "budgets": [c["budget"]], "seeds": [c["seed"]],
             "metrics": [_entry(m) for m in c["metrics"]],
             "train": c["train"], "split": c["split"], "evaluate": c["evaluate"]}
    if c.get("attack"):
        track["attacks"] = [_entry(c["attack"])]
    if c.get("connection"):
        track["connections"] = [_entry(c["connection"])]
    if (c.get("adversarial") or {}).get("endpoints"):
        track["adversarial"] = c["adversarial"]
    return {"version": 1, "tracks": {c["track"]: track}}


def write_benchmark(record: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (f"# The cell of the published record {record['cell_id']} "
              f"({record.get('label', '')}), rebuilt from its recorded configuration.\n")
    path.write_text(header + yaml.safe_dump(benchmark_document(record), sort_keys=False))
    return path


def check_same_cell(cell, record: dict, file: str) -> None:
    """The rebuilt cell must be the recorded one: same configuration and same plugin
    versions, hence the same cell id."""
    if cell.cell_id == record["cell_id"]:
        return
    ours, theirs = cell.config(), record["config"]
    def strip(config):
        return {k: [without_version(m) for m in v] if k == "metrics" else without_version(v)
                for k, v in config.items()}

    reasons = differences(strip(ours), strip(theirs))
    reasons = [r.replace("yours", "this mcbench").replace("published", "recorded")
               for r in reasons]
    versions = {f"{k}: this mcbench {ours[k]['version']}, recorded {theirs[k]['version']}"
                for k in ("dataset", "architecture", "attack", "repair", "connection")
                if ours.get(k) and theirs.get(k) and ours[k]["version"] != theirs[k]["version"]}
    reasons += sorted(versions)
    raise ConfigError("this mcbench builds a different cell from the recorded configuration "
                      f"(cell id {cell.cell_id}, recorded {record['cell_id']}): "
                      + ("; ".join(reasons) or "the configuration is the same, so the recorded "
                         "cell id does not belong to it (an edited record, or one written by "
                         "an mcbench that keys cells differently)"), file=file)


@dataclass(frozen=True)
class Tolerance:
    """A reproduced value matches when |new - published| <= points (percent metrics, as a
    fraction: 0.02 = 2 points) or <= relative * |published| (every other metric)."""

    points: float = 0.02
    relative: float = 0.05

    def allows(self, published: float, new: float, percent: bool) -> tuple[float, bool]:
        limit = self.points if percent else self.relative * abs(published)
        return limit, abs(new - published) <= limit + 1e-12

    def __str__(self) -> str:
        return (f"{self.points * 100:g} points for percentages, "
                f"{self.relative * 100:g}% of the published value otherwise")


def _values(record: dict) -> dict[tuple[str, str], float]:
    """(where, metric) -> value, for every point on the path and every endpoint score."""
    out = {}
    for point in record["path"]:
        where = "t=-" if point["t"] is None else f"t={point['t']:g}"
        for metric, value in point.items():
            if metric not in ("t", "notes") and value is not None:
                out[(where, metric)] = value
    for field in ("endpoints", "untampered"):
        for role, scores in (record.get(field) or {}).items():
            for metric, value in scores.items():
                if metric != "notes" and value is not None:
                    out[(f"{field} {role}", metric)] = value
    return out


def reproduction(published: dict, reproduced: dict, tolerance: Tolerance) -> pd.DataFrame:
    """One row per published value: published, reproduced, |difference|, allowed, ok."""
    info = published.get("metric_info", {})
    new = _values(reproduced)
    rows = []
    for (where, metric), value in _values(published).items():
        percent = info.get(metric, {}).get("percent", False)
        again = new.get((where, metric), math.nan)
        limit, ok = tolerance.allows(value, again, percent)
        rows.append({"where": where, "metric": metric, "published": value,
                     "reproduced": again, "difference": abs(again - value),
                     "allowed": limit, "ok": bool(ok and not math.isnan(again))})
    return pd.DataFrame(rows)
