"""The result record of a cell: its fields, its schema version and its one reader.

A record is the JSON object that ``mcbench.run.record`` writes to RESULTS/records/<cell_id>.json.
Everything the results layer knows about a plugin it reads from the record (``metric_info``,
``attack_info``), never from the plugin itself. Schema 2 added ``plot_axis`` and
``correlate_with`` to each metric's info and the ``attack_info`` field; a schema-1 record is
read with the values that mcbench gave those built-in plugins when schema 1 was written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, TypedDict

from mcbench.errors import ConfigError

SCHEMA = 2
READABLE = (1, 2)

PlotAxis = Literal["top", "bottom", "right"]


class MetricInfo(TypedDict):
    name: str  # the plugin name; the key of the entry is the metric's label, else its name
    percent: bool  # a fraction shown as a percentage
    higher_is_better: bool | None  # None: not ranked, no barrier
    plot_axis: PlotAxis  # top: the percentage panel; bottom; right: the bottom panel's own axis
    correlate_with: list[str]  # metric names whose values along t the barrier table correlates


class AttackInfo(TypedDict):
    name: str
    report_figures: list[str]  # the keys of a weight attack's report the tamper table shows


class RecordError(TypedDict):
    type: str
    message: str
    traceback: str


class _Identity(TypedDict):
    """The fields every record has."""

    schema: int
    cell_id: str
    status: Literal["ok", "failed"]
    config: dict  # the resolved configuration of the cell


class Record(_Identity, total=False):
    label: str
    keys: dict[str, str]  # stage -> artifact key
    plugins: dict[str, str]  # "kind:name" -> "distribution version"
    metric_info: dict[str, MetricInfo]
    attack_info: AttackInfo | None
    provenance: dict  # the environment: versions, git commit, device, date
    seconds: float
    # a cell that ran
    path: list[dict]  # one point per t (None for a single model): metric -> value, notes
    reported_t: float | None
    endpoints: dict[str, dict]  # role -> scores of the models the repair starts from
    untampered: dict[str, dict]  # role -> scores before a weight attack
    tamper: dict[str, dict]  # role -> the weight attack's report
    injection: dict
    sizes: dict[str, int]
    timings: dict[str, float]
    reused: list[str]
    data_source: str
    # a cell that failed
    error: RecordError


REQUIRED = ("cell_id", "status", "config")

# What schema-1 records leave out: the values mcbench used for its built-in plugins then.
SCHEMA_1_PLOT_AXIS: dict[str, PlotAxis] = {"input_hessian_eig": "right"}
SCHEMA_1_CORRELATE_WITH: dict[str, list[str]] = {"adversarial_loss": ["input_hessian_eig"]}
SCHEMA_1_REPORT_FIGURES = [
    "targets_flipped",
    "keep_set_accuracy",
    "steps",
    "raise",
    "flips",
    "accuracy_after",
]


def default_plot_axis(percent: bool) -> PlotAxis:
    return "top" if percent else "bottom"


def from_json(data: object, file: str | None = None) -> Record:
    """A record as read from FILE, in the current shape whatever its schema (``schema``
    still says which one it was written with). A ConfigError names the file when DATA is
    not a record or has a schema this mcbench does not read."""
    if not isinstance(data, dict) or not set(REQUIRED) <= set(data):
        raise ConfigError(
            "not a result record: expected an object with cell_id, status and config", file=file
        )
    schema = data.get("schema")
    if schema not in READABLE:
        found = "no schema field" if schema is None else f"record schema {schema!r}"
        raise ConfigError(
            f"{found}: this mcbench reads record schemas "
            f"{', '.join(map(str, READABLE))} (a newer mcbench may have written it)",
            file=file,
        )
    record: Record = dict(data)  # type: ignore[assignment]
    if schema == 1:
        record = _from_schema_1(record)
    return record


def _from_schema_1(record: Record) -> Record:
    info = {}
    for key, entry in (record.get("metric_info") or {}).items():
        name = entry.get("name", key)
        percent = bool(entry.get("percent", False))
        info[key] = {
            "name": name,
            "percent": percent,
            "higher_is_better": entry.get("higher_is_better"),
            "plot_axis": SCHEMA_1_PLOT_AXIS.get(name, default_plot_axis(percent)),
            "correlate_with": list(SCHEMA_1_CORRELATE_WITH.get(name, [])),
        }
    attack = record["config"].get("attack")
    figures = SCHEMA_1_REPORT_FIGURES if record.get("tamper") else []
    return {
        **record,
        "metric_info": info,
        "attack_info": {"name": attack["name"], "report_figures": list(figures)}
        if attack
        else None,
    }


def to_json(record: Record) -> dict:
    """The record as written: a plain JSON object of the current schema."""
    missing = [k for k in ("schema", *REQUIRED) if k not in record]
    if missing:
        raise ValueError(f"a record needs {', '.join(missing)}")
    if record["schema"] != SCHEMA:
        raise ValueError(f"records are written with schema {SCHEMA}, not {record['schema']}")
    if record["status"] not in ("ok", "failed"):
        raise ValueError(f"a record's status is ok or failed, not {record['status']!r}")
    return dict(record)


def read_record(path: Path) -> Record:
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"not a valid record (JSON): {e}", file=str(path)) from None
    return from_json(data, str(path))


def load_records(results: str | Path) -> tuple[list[Record], list[Record]]:
    """(ok records, failed records) found under RESULTS/records, in file-name order."""
    folder = Path(results) / "records"
    if not folder.is_dir():
        raise FileNotFoundError(f"{results}: no records folder (expected {folder})")
    ok, failed = [], []
    for path in sorted(folder.glob("*.json")):
        record = read_record(path)
        (ok if record["status"] == "ok" else failed).append(record)
    return ok, failed


def metric_info(records: list[Record]) -> dict[str, MetricInfo]:
    """Each metric key's info, over all the records."""
    info: dict[str, MetricInfo] = {}
    for r in records:
        info.update(r.get("metric_info", {}))
    return info
