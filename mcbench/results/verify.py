"""Re-running a published row: its record's configuration becomes a one-cell benchmark
file, the cell is run afresh, and every number is compared with the published one."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import pandas as pd
import yaml  # type: ignore[import-untyped]  # no stubs in the test extra (types-PyYAML)
from tabulate import tabulate

from mcbench.errors import ConfigError
from mcbench.results.compare import differences, without_version
from mcbench.results.format import NO_INFO
from mcbench.results.leaderboard import BY_ROLE, values_of
from mcbench.results.records import Adversarial, PluginSpec, Record, RecordError
from mcbench.vocabulary import PLUGIN_AXES


def _entry(spec: PluginSpec | None) -> dict[str, object]:
    """A plugin identity {name, params, version} as a benchmark file names it."""
    assert spec is not None  # a record read to be re-run names each plugin it is built from
    return {"name": spec["name"], **spec["params"]}


def benchmark_document(record: Record) -> dict[str, object]:
    """The benchmark file whose only cell is the record's cell."""
    c = record["config"]
    track: dict[str, object] = {
        "datasets": [_entry(c["dataset"])],
        "architectures": [_entry(c["architecture"])],
        "repairs": [_entry(c["repair"])],
        "budgets": [c["budget"]],
        "seeds": [c["seed"]],
        "metrics": [_entry(m) for m in c["metrics"]],
        "train": c["train"],
        "split": c["split"],
        "evaluate": c["evaluate"],
    }
    if c.get("attack"):
        track["attacks"] = [_entry(c["attack"])]
    if c.get("connection"):
        track["connections"] = [_entry(c["connection"])]
    adversarial: Adversarial = c.get("adversarial") or {}
    if adversarial.get("endpoints"):
        track["adversarial"] = c["adversarial"]
    # a record without compute settings computed in fp32, which "auto" may not mean here
    track["compute"] = c.get("compute") or {"precision": "fp32"}
    return {"version": 1, "tracks": {c["track"]: track}}


def write_benchmark(record: Record, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# The cell of the published record {record['cell_id']} "
        f"({record.get('label', '')}), rebuilt from its recorded configuration.\n"
    )
    path.write_text(header + yaml.safe_dump(benchmark_document(record), sort_keys=False))
    return path


class RebuiltCell(Protocol):
    """What is checked of the cell a benchmark file builds (``mcbench.bench.cells.Cell``,
    which the results layer does not import)."""

    @property
    def cell_id(self) -> str: ...

    def config(self) -> Mapping[str, Any]: ...


def check_same_cell(cell: RebuiltCell, record: Record, file: str) -> None:
    """The rebuilt cell must be the recorded one: same configuration and same plugin
    versions, hence the same cell id."""
    if cell.cell_id == record["cell_id"]:
        return
    ours = cell.config()
    theirs: Mapping[str, Any] = record["config"]

    def strip(config: Mapping[str, Any]) -> dict[str, object]:
        return {
            k: [without_version(m) for m in v] if k == "metrics" else without_version(v)
            for k, v in config.items()
        }

    reasons = differences(strip(ours), strip(theirs))
    reasons = [r.replace("yours", "this mcbench").replace("published", "recorded") for r in reasons]
    versions = {
        f"{k}: this mcbench {ours[k]['version']}, recorded {theirs[k]['version']}"
        for k in PLUGIN_AXES
        if ours.get(k) and theirs.get(k) and ours[k]["version"] != theirs[k]["version"]
    }
    reasons += sorted(versions)
    raise ConfigError(
        "this mcbench builds a different cell from the recorded configuration "
        f"(cell id {cell.cell_id}, recorded {record['cell_id']}): "
        + (
            "; ".join(reasons)
            or "the configuration is the same, so the recorded "
            "cell id does not belong to it (an edited record, or one written by "
            "an mcbench that keys cells differently)"
        ),
        file=file,
    )


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
        return (
            f"{self.points * 100:g} points for percentages, "
            f"{self.relative * 100:g}% of the published value otherwise"
        )


def _values(record: Record) -> dict[tuple[str, str], float]:
    """(where, metric) -> value, for every point on the path and every endpoint score."""
    out: dict[tuple[str, str], float] = {}
    for point in record["path"]:
        where = "t=-" if point["t"] is None else f"t={point['t']:g}"
        for metric, value in values_of(point).items():
            if metric not in ("t", "notes") and value is not None:
                out[(where, metric)] = value
    for field in BY_ROLE:
        for role, scores in (record.get(field) or {}).items():
            for metric, value in values_of(scores).items():
                if metric != "notes" and value is not None:
                    out[(f"{field} {role}", metric)] = value
    return out


def reproduction(published: Record, reproduced: Record, tolerance: Tolerance) -> pd.DataFrame:
    """One row per published value: published, reproduced, |difference|, allowed, ok."""
    info = published.get("metric_info", {})
    new = _values(reproduced)
    rows: list[dict[str, object]] = []
    for (where, metric), value in _values(published).items():
        percent = info.get(metric, NO_INFO).get("percent", False)
        again = new.get((where, metric), math.nan)
        limit, ok = tolerance.allows(value, again, percent)
        rows.append(
            {
                "where": where,
                "metric": metric,
                "published": value,
                "reproduced": again,
                "difference": abs(again - value),
                "allowed": limit,
                "ok": bool(ok and not math.isnan(again)),
            }
        )
    return pd.DataFrame(rows)


def _candidates(records: list[Record]) -> str:
    return "\n".join(f"  {r['cell_id']}  {r.get('label', '')}" for r in records)


def _matches(record: Record, query: str) -> bool:
    """A cell id or its first characters, or words each equal to a word of the label."""
    words = query.split()
    if not words:
        return False
    label = record.get("label", "").split()
    return record["cell_id"].startswith(query) or all(w in label for w in words)


def select_rows(records: list[Record], queries: list[str], every: bool = False) -> list[Record]:
    """The records QUERIES name, in the records' order. A query is a cell id, the first
    characters of one (the names of the files in records/), or words of a label, each
    matching a whole word: "n=50" does not name "n=500". A query naming no record, or
    several unless EVERY, is a ConfigError listing the candidates."""
    chosen: list[Record] = []
    for query in queries:
        found = [r for r in records if _matches(r, query)]
        if not found:
            raise ConfigError(
                f"no record matches {query!r}; the records are:\n{_candidates(records)}"
            )
        if len(found) > 1 and not every:
            raise ConfigError(
                f"{query!r} matches {len(found)} records; name one by more of its label or "
                f"its cell id (or --all verifies every match):\n{_candidates(found)}"
            )
        chosen += [r for r in found if r not in chosen]
    return [r for r in records if r in chosen]


@dataclass
class Verdict:
    """A published record against its re-run."""

    published: Record
    again: Record
    tolerance: Tolerance
    table: pd.DataFrame  # reproduction(); empty when the re-run failed

    @property
    def ran(self) -> bool:
        return self.again.get("status") == "ok"

    @property
    def reproduces(self) -> bool:
        return self.ran and not self.table.empty and bool(self.table.ok.all())

    def largest(self) -> pd.Series | None:
        """The value that differs most, None when no value was reproduced."""
        if self.table.empty or self.table.difference.isna().all():
            return None
        # a row's label (reproduction's rows have a RangeIndex), and its row
        label = cast(int, self.table.difference.idxmax())
        return cast("pd.Series", self.table.loc[label])

    def lines(self) -> list[str]:
        """The verdict as text: the headline, every value when one misses (so that the
        misses are seen in context), and the largest difference."""
        label = self.published.get("label", "")
        if not self.ran:
            error: RecordError = self.again.get("error") or {}
            return [f"{label}: the re-run failed: {error.get('type')}: {error.get('message')}"]
        head = f"\n{label} [{self.published['cell_id']}]: "
        if self.table.empty:
            return [
                head + "DOES NOT reproduce: no value to compare (the published record has none)"
            ]
        verdict = "reproduces" if self.reproduces else "DOES NOT reproduce"
        out = [
            head + f"{verdict}: {int(self.table.ok.sum())}/{len(self.table)} values within "
            f"{self.tolerance} (published on {_device(self.published)}, "
            f"re-run on {_device(self.again)})"
        ]
        if not self.reproduces:
            out.append(
                tabulate(
                    self.table,  # type: ignore[arg-type]  # tabulate reads a DataFrame (its stubs omit it)
                    headers="keys",
                    tablefmt="github",
                    showindex=False,
                    floatfmt=".4g",
                )
            )
        worst = self.largest()
        if worst is None:
            out.append("largest difference: none (no value was reproduced)")
        else:
            out.append(
                f"largest difference: {worst.difference:.4g} ({worst.metric} at {worst['where']})"
            )
        return out


def _device(record: Record) -> str:
    return (record.get("provenance") or {}).get("device") or "an unrecorded device"


def verify_rows(
    records: list[Record], rerun: Callable[[Record], Record], tolerance: Tolerance
) -> Iterator[Verdict]:
    """Each record against RERUN(record), the record of the same cell run again (the caller
    runs it, so this module never imports the runner), one verdict at a time."""
    for record in records:
        again = rerun(record)
        table = (
            reproduction(record, again, tolerance)
            if again.get("status") == "ok"
            else pd.DataFrame()
        )
        yield Verdict(record, again, tolerance, table)
