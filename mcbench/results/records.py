"""The result record of a cell: every field it holds, its schema version and what each
field may hold; the one definition that the writer (``mcbench.run.record``), the reader
(``mcbench.results.record_reader``) and the type checker go by.

A record is the JSON object that ``mcbench.run.record`` writes to RESULTS/records/<cell_id>.json.
Everything the results layer knows about a plugin it reads from the record (``metric_info``,
``attack_info``), never from the plugin itself. Schema 2 added ``plot_axis`` and
``correlate_with`` to each metric's info and the ``attack_info`` field; a schema-1 record is
read with the values that mcbench gave those built-in plugins when schema 1 was written.
Schema 3 holds the same fields as schema 2: it marks the records written against this
complete schema, which declares every field (``surface`` included) and is checked when a
record is written and when it is read.

The TypedDicts below say what each field holds; the ``Annotated`` markers (``mcbench.typed``)
say what the reader checks beyond the type and what its error messages call each value.
Records are read only through ``mcbench.results.record_reader``, which checks each against
them (``mcbench.results.record_checks``); past it, the tables, figures, comparisons and pages
trust the shape."""

import re
from typing import Annotated, Literal, NotRequired, Required, TypedDict

from mcbench.typed import (
    AtLeast,
    Expect,
    ExtraItems,
    Finite,
    Matches,
    MaxDepth,
    MayLack,
    MinLen,
    Needed,
    NonNull,
    When,
)
from mcbench.vocabulary import PLUGIN_AXES

SCHEMA = 3
READABLE = (1, 2, 3)

RAN = "ran"
"""The reader's flag for a cell that ran, read for the tables: what they read must be there."""
RERUN = "rerun"
"""The reader's flag for a record read to rebuild its cell: every plugin with its version,
the settings, and identifiers in exactly the shape mcbench writes them."""

MAX_DEPTH = 32  # nesting of plugin parameters and settings; the published records use 4

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

# --- the values fields are made of ---------------------------------------------------------

Identifier = Annotated[
    str,
    When(RERUN, Matches(WRITTEN_ID, "16 lowercase hex digits, as mcbench writes it"), otherwise=[
        Matches(NAME, "a name of letters, digits, '-', '_' and '.' (not first), at most 64")
    ]),
]  # fmt: skip
"""A cell id or a stage key: it names a file."""
Score = Annotated[float | None, Expect("a number or null")]
"""A metric's value (NaN included), or null where the metric does not apply."""
FiniteNumber = Annotated[float, Finite(), Expect("a finite number")]
Seconds = Annotated[float, Expect("a number of seconds")]
Count = Annotated[int, AtLeast(0), Expect("a count, an integer of at least 0")]
Position = Annotated[list[FiniteNumber], MinLen(1), Expect("a position, a list of numbers")]
"""A point of a surface repair's grid, or one of its corners."""
Settings = Annotated[dict[str, object], MaxDepth(MAX_DEPTH), Expect("an object of settings")]
"""Free-form settings: compared and printed, nested at most MAX_DEPTH deep."""
T = Annotated[
    Annotated[float, Finite()] | None, Expect("a finite number, or null for a single model")
]
"""A position along the path: a finite number, or null for a single model."""

PlotAxis = Literal["top", "bottom", "right"]
PLOT_AXES: tuple[PlotAxis, ...] = ("top", "bottom", "right")

# --- the configuration ---------------------------------------------------------------------


class PluginSpec(TypedDict):
    """A plugin as the configuration names it."""

    name: Annotated[str, MinLen(1), Expect("the plugin's name, a string")]
    params: Annotated[
        dict[str, object], MaxDepth(MAX_DEPTH), Expect("the plugin's parameters, an object")
    ]
    version: NotRequired[
        Annotated[str, Expect("the plugin's version, a string"), When(RERUN, Needed())]
    ]  # "distribution==version"


class MetricSpec(PluginSpec):
    label: NotRequired[Annotated[str | None, Expect("the metric's label, a string")]]


Plugin = Annotated[PluginSpec, Expect("a plugin: an object with name and params")]
RebuiltPlugin = Annotated[Plugin | None, When(RERUN, Needed(), NonNull())]
"""An axis a cell cannot be rebuilt without."""
NeededSettings = Annotated[Settings | None, When(RERUN, Needed(), NonNull())]


class Adversarial(TypedDict, total=False):
    """The adversarial training settings: the attack and the endpoints it trains."""

    attack: object
    endpoints: Annotated[list[str], Expect("a list of roles")]


class Config(TypedDict, total=False):
    """The resolved configuration of the cell (settings left out take their defaults)."""

    track: Annotated[str, Expect("the track's name, a string"), When(RAN, Needed())]
    dataset: RebuiltPlugin
    architecture: RebuiltPlugin
    attack: Plugin | None
    repair: RebuiltPlugin
    connection: Plugin | None
    budget: Annotated[int, AtLeast(1), Expect("an integer of at least 1"), When(RAN, Needed())]
    seed: Annotated[int, AtLeast(0), Expect("an integer of at least 0"), When(RAN, Needed())]
    metrics: Annotated[
        list[Annotated[MetricSpec, Expect("a plugin: an object with name and params")]],
        Expect("a list of metrics"),
        When(RAN, Needed()),
    ]
    train: NeededSettings
    split: NeededSettings
    evaluate: NeededSettings
    adversarial: Annotated[
        Annotated[Adversarial, ExtraItems(object), MaxDepth(MAX_DEPTH)] | None,
        Expect("an object of settings"),
        When(RERUN, NonNull()),
    ]
    compute: Annotated[Settings | None, When(RERUN, NonNull())]


# --- what the results layer knows of the plugins -------------------------------------------


class MetricInfo(TypedDict):
    """What the results layer knows of a metric; the key of its entry is the metric's
    label, else its name. Hand-made records may leave fields out: the reader fills them."""

    name: Annotated[str, Expect("the metric's name, a string"), MayLack()]  # the plugin name
    percent: Annotated[bool, MayLack()]  # a fraction shown as a percentage
    higher_is_better: Annotated[bool | None, MayLack()]  # None: not ranked, no barrier
    # top: the percentage panel; bottom; right: the bottom panel's own axis
    plot_axis: Annotated[PlotAxis, Expect("top, bottom or right"), MayLack()]
    # metric names whose values along t the barrier table correlates
    correlate_with: Annotated[list[str], Expect("a list of metric names"), MayLack()]


class AttackInfo(TypedDict):
    name: Annotated[str, Expect("the attack's name, a string")]
    # the keys of a weight attack's report the tamper table shows
    report_figures: Annotated[list[str], Expect("a list of report keys")]


# --- what the cell measured ----------------------------------------------------------------


class Scores(TypedDict, total=False):
    """One model's scores: metric key -> Score (the other keys), and free-form notes."""

    notes: object


class Point(TypedDict):
    """A point of the path: its t, and its scores (metric key -> Score, the other keys)."""

    t: T
    notes: NotRequired[object]


class FixedRule(TypedDict):
    """The fixed t rule: the t the settings name."""

    rule: Literal["fixed"]
    report_t: Annotated[float, Finite(), Expect("the rule's t, a finite number")]


class BonafideReading(TypedDict):
    """What the bonafide rule read: its settings, the sizes of the fit and held-out parts
    of the bonafide set, the held-out accuracy at every point and the endpoints' mean."""

    rule: Literal["bonafide"]
    holdout: FiniteNumber
    tolerance: FiniteNumber
    fit_size: Annotated[int, AtLeast(1), Expect("a number of images, at least 1")]
    held_out_size: Annotated[int, AtLeast(1), Expect("a number of images, at least 1")]
    held_out_accuracy: Annotated[
        list[Annotated[float, Finite(), Expect("an accuracy, a finite number")]],
        Expect("a list: one accuracy per point"),
    ]
    endpoints_accuracy: FiniteNumber


class BonafideRule(BonafideReading):
    """The bonafide rule on a path, with the t it chose (the reported t)."""

    t: FiniteNumber


TRule = Annotated[FixedRule | BonafideRule, Expect("an object: the t rule and what it read")]
"""How the reported t was chosen; absent: the fixed rule (records before the field)."""


class SurfaceFixedRule(TypedDict):
    rule: Literal["fixed"]  # the grid point nearest the corners' centroid


class SurfacePoint(TypedDict):
    """An evaluated point of the grid: its (u, v) and its scores (the other keys)."""

    uv: Position
    notes: NotRequired[object]


class Surface(TypedDict):
    """A surface repair's grid: every evaluated (u, v) with its scores, the corners, and
    the point the record reports (its one model)."""

    corners: Annotated[list[Position], MinLen(3), Expect("a list of at least 3 corner positions")]
    points: Annotated[
        list[
            Annotated[
                SurfacePoint, ExtraItems(Score), Expect("an object: uv and the metrics' scores")
            ]
        ],
        MinLen(1),
        Expect("a non-empty list of evaluated points"),
    ]
    chosen: Position
    index: NotRequired[Annotated[int, AtLeast(0), Expect("the chosen point's index")]]
    rule: NotRequired[
        Annotated[
            SurfaceFixedRule | BonafideReading, Expect("an object: the rule and what it read")
        ]
    ]


class ReportSize(TypedDict, total=False):
    """How far a weight attack moved the weights."""

    l0: Score
    l2: Score
    linf: Score
    changed: object


class Report(TypedDict, total=False):
    """A weight attack's report: its size and run time; the other keys are the attack's
    own (``attack_info.report_figures`` names those the tamper table shows)."""

    size: Annotated[ReportSize, ExtraItems(object), Expect("an object with l0, l2 and linf")]
    seconds: Annotated[float | None, Expect("a number of seconds or null")]


class Injection(TypedDict):
    """The images a weight attack was asked to misclassify: their indices in the data,
    the labels it aimed at and their true labels."""

    index: list[int]
    labels: list[int]
    true_labels: list[int]


class Sizes(TypedDict, total=False):
    """The number of images in each part of the data."""

    train: Count
    defender_pool: Count
    bonafide: Count
    evaluation: Count
    triggered: Count
    targets: Count


class Timings(TypedDict, total=False):
    """Seconds per stage; besides these, ``endpoint_<role>_s`` and ``tamper_<role>_s``."""

    endpoints_s: Seconds
    tamper_s: Seconds
    repair_s: Seconds
    evaluate_s: Seconds


class Provenance(TypedDict, total=False):
    """Where the record was made."""

    mcbench: str | None
    git_commit: Annotated[str | None, Expect("a string or null")]
    python: str | None
    torch: str | None
    cuda: str | None
    device: Annotated[str | None, Expect("a string or null")]
    platform: str | None
    date: Annotated[str | None, Expect("a string or null")]  # ISO 8601, UTC


class RecordError(TypedDict, total=False):
    """The exception a failed cell raised."""

    type: Annotated[str | None, Expect("a string")]
    message: Annotated[str | None, Expect("a string")]
    traceback: Annotated[str | None, Expect("a string")]


ByRole = Annotated[dict[str, Annotated[Scores, ExtraItems(Score), Expect("an object of scores")]],
                   Expect("an object keyed by endpoint role")]  # fmt: skip
RanNeeded = When(RAN, Needed("it in the record of a cell that ran"), otherwise=[MayLack()])


class BaseRecord(TypedDict):
    """What a cell's record says before it runs (``mcbench.run.record.base_record``)."""

    schema: int
    cell_id: Identifier
    config: Annotated[Config, ExtraItems(Annotated[object, MaxDepth(MAX_DEPTH)]),
                      Expect("an object: the cell's configuration")]  # fmt: skip
    label: Annotated[str, MayLack()]
    compiled: NotRequired[
        Annotated[list[str], Expect("a list of the stages trained through torch.compile")]
    ]  # absent: none was
    plugins: Annotated[
        dict[str, str], Expect("an object: plugin -> distribution version"), MayLack()
    ]  # "kind:name" -> "distribution==version"
    metric_info: Annotated[
        dict[str, Annotated[MetricInfo, Expect("the metric's info, an object")]],
        Expect("an object: metric -> its info"),
        MayLack(),
    ]
    attack_info: Annotated[
        AttackInfo | None, Expect("an object with name and report_figures, or null"), MayLack()
    ]
    provenance: Annotated[
        Provenance, ExtraItems(object), Expect("an object: versions, commit, device, date"),
        MayLack(),
    ]  # fmt: skip
    keys: Annotated[
        dict[str, Identifier], Expect("an object: stage -> artifact key"), MayLack()
    ]  # stage -> artifact key


class CellResults(TypedDict):
    """What the evaluation of a cell adds to its record (``mcbench.run.cell.evaluate_cell``);
    a failed cell's record has none of it."""

    path: Annotated[
        list[
            Annotated[Point, ExtraItems(Score), Expect("a point: an object with t and the scores")]
        ],
        Expect("a list of points along the path"),
        RanNeeded,
    ]  # one point per t (t None for a single model)
    reported_t: Annotated[T, RanNeeded]
    t_rule: NotRequired[TRule]
    surface: NotRequired[
        Annotated[Surface, Expect("an object: corners, points and the chosen point")]
    ]
    endpoints: Annotated[ByRole, MayLack()]  # role -> scores of the models the repair starts from
    untampered: NotRequired[ByRole]  # role -> scores before a weight attack
    tamper: NotRequired[
        Annotated[
            dict[
                str,
                Annotated[
                    Report, ExtraItems(object), Expect("the weight attack's report, an object")
                ],
            ],
            Expect("an object keyed by endpoint role"),
        ]
    ]  # role -> the weight attack's report
    injection: NotRequired[Annotated[Injection, Expect("an object")]]
    sizes: Annotated[Sizes, ExtraItems(Count), Expect("an object of sizes"), MayLack()]
    timings: Annotated[Timings, ExtraItems(Seconds), Expect("an object of seconds"), MayLack()]
    reused: Annotated[list[str], Expect("a list of stage names"), MayLack()]  # stages reused
    data_source: Annotated[str, MayLack()]  # the data copy read


class Record(BaseRecord, CellResults, total=False):
    """A record as read: what every record has (schema, cell id, status, configuration),
    and of the other fields those that the cell wrote (a cell that failed has no results;
    a hand-made record may leave out what the reader does not need)."""

    status: Required[Literal["ok", "failed"]]
    seconds: Annotated[float | None, Expect("a number of seconds")]
    error: Annotated[RecordError | None, Expect("an object with type, message and traceback")]


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


Need = Literal["record", "tables", "rerun"]
"""How much a reader needs of a record. "record": what every record has, and every field it
has of its type (enough to count a folder's records by status). "tables": besides, of a cell
that ran, what the tables, figures and comparisons read (track, budget, seed, metrics, path,
reported t). "rerun": besides, what rebuilding the cell from its record needs (every
plugin with its version; train, split and evaluate), with the cell id and stage keys in
exactly the shape mcbench writes, since they name the files of the re-run."""


def default_plot_axis(percent: bool) -> PlotAxis:
    return "top" if percent else "bottom"


def to_json(record: Record) -> Record:
    """The record as written: a plain JSON object of the current schema."""
    missing = [k for k in ("schema", *REQUIRED) if k not in record]
    if missing:
        raise ValueError(f"a record needs {', '.join(missing)}")
    if record["schema"] != SCHEMA:
        raise ValueError(f"records are written with schema {SCHEMA}, not {record['schema']}")
    if record["status"] not in ("ok", "failed"):
        raise ValueError(f"a record's status is ok or failed, not {record['status']!r}")
    return record.copy()


def metric_info(records: list[Record]) -> dict[str, MetricInfo]:
    """Each metric key's info, over all the records."""
    info: dict[str, MetricInfo] = {}
    for r in records:
        info.update(r.get("metric_info", {}))
    return info
