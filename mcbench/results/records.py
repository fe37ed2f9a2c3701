"""The result record of a cell: its fields, its schema version and what it may hold.

A record is the JSON object that ``mcbench.run.record`` writes to RESULTS/records/<cell_id>.json.
Everything the results layer knows about a plugin it reads from the record (``metric_info``,
``attack_info``), never from the plugin itself. Schema 2 added ``plot_axis`` and
``correlate_with`` to each metric's info and the ``attack_info`` field; a schema-1 record is
read with the values that mcbench gave those built-in plugins when schema 1 was written.

Records are read only through ``mcbench.results.record_reader``, which checks each against
these fields (``mcbench.results.record_checks``); past it, the tables, figures, comparisons
and pages trust the shape."""

from __future__ import annotations

import re
from typing import Literal, TypedDict

from mcbench.vocabulary import PLUGIN_AXES

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
    t_rule: dict  # how reported_t was chosen and what the choice read; absent: the fixed rule
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


PLOT_AXES: tuple[PlotAxis, ...] = ("top", "bottom", "right")

Need = Literal["record", "tables", "rerun"]
"""How much a reader needs of a record. "record": what every record has, and every field it
has of its type (enough to count a folder's records by status). "tables": besides, of a cell
that ran, what the tables, figures and comparisons read (track, budget, seed, metrics, path,
reported t). "rerun": besides, what rebuilding the cell from its record needs (every
plugin with its version; train, split and evaluate), with the cell id and stage keys in
exactly the shape mcbench writes, since they name the files of the re-run."""

NAME = re.compile(r"[0-9A-Za-z_-][0-9A-Za-z_.-]{0,63}")
"""An identifier read from a record that may become part of a file name (a cell id, a stage
key): one file-name component, neither a separator nor a leading dot (so never ``.``,
``..`` or a hidden file), so that it cannot name a path out of the folder it is joined to.
Hand-made records (tests, examples) use short names such as ``a0``."""
WRITTEN_ID = re.compile(r"[0-9a-f]{16}")
"""A cell id or stage key as mcbench writes it: ``mcbench.hashing.content_hash`` of the
cell's or stage's identity, 16 lowercase hex digits."""

RESERVED = frozenset(
    {"track", *PLUGIN_AXES, "budget", "seed", "seeds", "t", "notes", "source", "series", "endpoint"}
)
"""The columns that name a table row (and ``t``, ``notes``, ``seeds``): a metric or a report
figure of that name would overwrite them in the tables."""


def default_plot_axis(percent: bool) -> PlotAxis:
    return "top" if percent else "bottom"


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


def metric_info(records: list[Record]) -> dict[str, MetricInfo]:
    """Each metric key's info, over all the records."""
    info: dict[str, MetricInfo] = {}
    for r in records:
        info.update(r.get("metric_info", {}))
    return info
