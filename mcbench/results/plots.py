"""Figures from result records (JSON files): the metrics along t of every path, and each
metric against the bonafide budget. Like the leaderboard, no torch is imported here."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.typing import LineStyleType

from mcbench.results.format import NO_INFO, scale
from mcbench.results.labels import Labels, plugin_labels
from mcbench.results.leaderboard import ATTACKED, frames, metric_keys, summarize
from mcbench.results.plot_names import plot_name
from mcbench.results.record_reader import Invalid, load_records, settled
from mcbench.results.records import PlotAxis, Record, default_plot_axis, metric_info
from mcbench.results.surface_plots import surface_figures

CONNECTION_STYLES: list[tuple[LineStyleType, str]] = [
    ("-", "o"),
    ("-.", "s"),
    (":", "^"),
    ("-", "D"),
    ("-.", "v"),
    (":", "P"),
]
BASELINE_DASHES: list[LineStyleType] = [
    (0, (6, 3)),
    (0, (2, 2)),
    (0, (8, 2, 2, 2)),
    (0, (4, 1, 1, 1, 1, 1)),
]
COLOURS = [f"C{i}" for i in range(10)]
PNG_DPI = 120

Group = dict[str, Any]
"""What a figure draws: its columns' values in the rows (the labels, the budget)."""


def is_path(record: Record) -> bool:
    """Whether the repair yields a path (points at t) rather than one model (t = None)."""
    return any(p["t"] is not None for p in record["path"])


def path_groups(
    records: list[Record], context: PlotContext | None = None
) -> list[tuple[Group, pd.DataFrame, pd.DataFrame, list[float]]]:
    """What each path figure draws, per (track, dataset, architecture, attack, path
    repair, budget): (the group, its rows along t, the single-model repairs' rows at the
    same budget, the reported t's). CONTEXT: the labels and styles of RECORDS, when the
    caller has them already."""
    records = _succeeded(records)
    paths = [r for r in records if is_path(r)]
    if not paths:
        return []
    context = context or PlotContext(records)
    singles = [r for r in records if not is_path(r)]
    _, along = frames(paths, context.labels)
    along = _numeric(along, context.metrics)
    baselines = frames(singles, context.labels)[0] if singles else pd.DataFrame()
    baselines = _numeric(baselines, context.metrics)
    reported_t = _reported_t(paths, context.labels)
    key = ATTACKED + ["repair", "budget"]
    groups: list[tuple[Group, pd.DataFrame, pd.DataFrame, list[float]]] = []
    for group, rows in along.groupby(key, sort=True, dropna=False):
        where = dict(zip(key, group))
        references = _matching(baselines, {k: where[k] for k in ATTACKED + ["budget"]})
        groups.append((where, rows, references, reported_t.get(group, [])))
    return groups


def path_figures(records: list[Record], context: PlotContext | None = None) -> dict[str, Figure]:
    """One figure per (track, dataset, architecture, attack, path repair, budget): the
    metrics along t for each connection, the single-model repairs as reference lines."""
    records = _succeeded(records)
    context = context or (PlotContext(records) if records else None)
    figures: dict[str, Figure] = {}
    for where, rows, references, reported_t in path_groups(records, context):
        assert context is not None  # a group: there are records
        figure = _path_figure(context, where, rows, references, reported_t)
        name = plot_name(
            "path",
            where["track"],
            where["dataset"],
            where["architecture"],
            where["attack"],
            where["repair"],
            f"n{where['budget']}",
        )
        figures[_unique(name, figures)] = figure
    return figures


def budget_groups(
    records: list[Record], context: PlotContext | None = None
) -> list[tuple[Group, pd.DataFrame]]:
    """What each budget figure draws, per (track, dataset, architecture, attack) with at
    least two budgets: (the group, its rows at the reported t, with their series)."""
    records = _succeeded(records)
    if not records:
        return []
    context = context or PlotContext(records)
    reported = _numeric(frames(records, context.labels)[0], context.metrics)
    if reported.empty:  # no record has a point at its reported t
        return []
    reported["series"] = [
        repair if connection == "-" else f"{repair}/{connection}"
        for repair, connection in zip(reported.repair, reported.connection)
    ]
    return [
        (dict(zip(ATTACKED, group)), rows)
        for group, rows in reported.groupby(ATTACKED, sort=True, dropna=False)
        if rows.budget.nunique() >= 2
    ]


def budget_figures(records: list[Record], context: PlotContext | None = None) -> dict[str, Figure]:
    """Per (track, dataset, architecture, attack) with at least two budgets: each metric
    at the reported t against the bonafide budget, one line per repair (and connection)."""
    records = _succeeded(records)
    context = context or (PlotContext(records) if records else None)
    figures: dict[str, Figure] = {}
    for where, rows in budget_groups(records, context):
        assert context is not None  # a group: there are records
        figure = _budget_figure(context, where, rows)
        if figure is None:
            continue
        name = plot_name("budget", *(where[k] for k in ATTACKED))
        figures[_unique(name, figures)] = figure
    return figures


def write_plots(
    results_or_records: str | Path | list[Record],
    out_dir: str | Path,
    formats: tuple[str, ...] = ("png", "svg"),
    *,
    invalid: Invalid | None = None,
) -> list[Path]:
    """Write every path, budget and surface figure in each format; return the paths written.
    INVALID: what to do with a record file that does not read (see ``load_records``)."""
    if isinstance(results_or_records, (str, Path)):
        records, _ = load_records(results_or_records, invalid=invalid)
        if not records:
            raise ValueError(
                f"{results_or_records}: no successful records under "
                f"{Path(results_or_records) / 'records'}"
            )
    else:
        records = _succeeded(results_or_records)
        if not records:
            raise ValueError("no successful records to plot")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with settled():
        context = PlotContext(records)  # labels and styles: computed once for both kinds
        for figures in (
            path_figures(records, context),
            budget_figures(records, context),
            surface_figures(records),
        ):
            for name, figure in figures.items():
                for fmt in formats:
                    target = out / f"{name}.{fmt}"
                    if target.is_symlink():  # never write through a link left in the folder
                        target.unlink()
                    figure.savefig(target, format=fmt, dpi=PNG_DPI if fmt == "png" else "figure")
                    written.append(target)
                figure.clear()
    return sorted(written)


class PlotContext:
    """What every figure of a set of records shares: labels, metrics and their styles."""

    def __init__(self, records: list[Record]) -> None:
        self.labels = plugin_labels(records)
        self.info = metric_info(records)
        self.metrics = metric_keys(records)
        self.colour = {m: COLOURS[i % len(COLOURS)] for i, m in enumerate(self.metrics)}
        self.connections = connection_order(records, self.labels)
        connections = self.connections
        self.connection_style = {
            c: CONNECTION_STYLES[i % len(CONNECTION_STYLES)] for i, c in enumerate(connections)
        }
        singles = sorted({self.labels["repair"][r["cell_id"]] for r in records if not is_path(r)})
        self.baseline_dash = {
            s: BASELINE_DASHES[i % len(BASELINE_DASHES)] for i, s in enumerate(singles)
        }

    def percent(self, metric: str) -> bool:
        return bool(self.info.get(metric, NO_INFO).get("percent", False))

    def scale(self, metric: str) -> float:
        return scale(self.percent(metric))

    def axis(self, metric: str) -> PlotAxis:
        """top, bottom or right (the bottom panel's own axis), as the metric declares."""
        declared = self.info.get(metric, NO_INFO).get("plot_axis")
        return declared or default_plot_axis(self.percent(metric))

    def on_right(self, metric: str) -> bool:
        return self.axis(metric) == "right"

    def connection_rank(self, label: str) -> tuple[int, str]:
        order = self.connections
        return (order.index(label) if label in order else len(order), label)

    def series_rank(self, label: str) -> tuple[bool, str, tuple[int, str]]:
        repair, _, connection = label.partition("/")
        return (not connection, repair, self.connection_rank(connection) if connection else (0, ""))

    def title(self, metric: str) -> str:
        better = self.info.get(metric, NO_INFO).get("higher_is_better")
        arrow = "" if better is None else (" ↑" if better else " ↓")
        return metric + (" (%)" if self.percent(metric) else "") + arrow


def _path_figure(
    context: PlotContext,
    where: Group,
    rows: pd.DataFrame,
    references: pd.DataFrame,
    reported_t: list[float],
) -> Figure:
    metrics = [m for m in context.metrics if m in rows and rows[m].notna().any()]
    top_metrics = [m for m in metrics if context.axis(m) == "top"]
    bottom_metrics = [m for m in metrics if context.axis(m) != "top"]
    summary = summarize(rows, ["connection", "t"], metrics)
    connections = sorted(summary.connection.unique(), key=context.connection_rank)

    figure = Figure(figsize=(10, 7.5 if bottom_metrics else 4.8), layout="constrained")
    if bottom_metrics:
        top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    else:
        top, bottom = figure.subplots(1, 1), None
    right = bottom.twinx() if any(context.on_right(m) for m in bottom_metrics) else None
    seeds = int(summary.seeds.max())
    top.set_title(
        _title_lines(
            [*_group_parts(where), f"budget {where['budget']}", f"{seeds} seed{'s' * (seeds != 1)}"]
        )
    )

    for connection in connections:
        line = summary[summary.connection == connection].sort_values("t")
        for metric in metrics:
            axis = {"top": top, "bottom": bottom, "right": right}[context.axis(metric)]
            _draw_mean(axis, context, line, metric, connection)

    for axis in (top, bottom):
        if axis is not None:
            for t in reported_t:
                axis.axvline(
                    t, color="0.4", linewidth=0.8, alpha=0.7, zorder=0, label=f"reported t = {t:g}"
                )

    baseline_names = _draw_baselines(top, context, references, top_metrics)

    top.set_ylabel("score (%)")
    top.set_ylim(-3, 103)
    top.grid(alpha=0.3)
    last = top
    if bottom is not None:
        left = [m for m in bottom_metrics if not context.on_right(m)]
        bottom.set_ylabel(", ".join(left) if left else "")
        bottom.grid(alpha=0.3)
        if right is not None:
            own = [m for m in bottom_metrics if context.on_right(m)]
            right.set_ylabel(", ".join(own), color=context.colour[own[0]])
            right.tick_params(axis="y", colors=context.colour[own[0]])
        last = bottom
    last.set_xlabel("t (position along the path)")
    last.set_xlim(-0.02, 1.02)

    handles = _legend_handles(context, metrics, connections, baseline_names, reported_t)
    figure.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False)
    return figure


def _draw_mean(
    axis: Axes, context: PlotContext, line: pd.DataFrame, metric: str, connection: str
) -> None:
    points = line[line[f"{metric}_mean"].notna()]
    if points.empty:
        return
    scale = context.scale(metric)
    style, marker = context.connection_style.get(connection, ("-", "o"))
    mean = points[f"{metric}_mean"] * scale
    axis.plot(
        points.t,
        mean,
        color=context.colour[metric],
        linestyle=style,
        marker=marker,
        markersize=4,
        linewidth=1.5,
        label=f"{connection}: {metric}",
    )
    if int(points.seeds.max()) >= 2:
        spread = points[f"{metric}_std"] * scale
        axis.fill_between(
            points.t,
            mean - spread,
            mean + spread,
            color=context.colour[metric],
            alpha=0.15,
            linewidth=0,
        )


def _draw_baselines(
    axis: Axes, context: PlotContext, references: pd.DataFrame, metrics: list[str]
) -> list[str]:
    """Each single-model repair's value at this budget, as a horizontal dashed line."""
    if references.empty:
        return []
    drawn: list[str] = []
    present = [m for m in metrics if m in references]
    table = summarize(references, ["repair"], present)
    for _, row in table.iterrows():
        for metric in present:
            value = row[f"{metric}_mean"]
            if pd.isna(value):
                continue
            axis.axhline(
                value * context.scale(metric),
                color=context.colour[metric],
                linestyle=context.baseline_dash.get(row.repair, "--"),
                linewidth=1.2,
                alpha=0.9,
                label=f"{row.repair}: {metric}",
            )
            if row.repair not in drawn:
                drawn.append(row.repair)
    return drawn


def _legend_handles(
    context: PlotContext,
    metrics: list[str],
    connections: list[str],
    baselines: list[str],
    reported_t: list[float],
) -> list[Line2D]:
    """Colour = metric, marker and line style = connection, dash pattern = baseline."""
    handles = [
        Line2D(
            [],
            [],
            color=context.colour[m],
            linewidth=3,
            label=context.title(m) + (" [right axis]" if context.on_right(m) else ""),
        )
        for m in metrics
    ]
    for c in connections:
        style, marker = context.connection_style.get(c, ("-", "o"))
        handles.append(
            Line2D(
                [],
                [],
                color="0.2",
                linestyle=style,
                marker=marker,
                markersize=5,
                label=f"path: {c}",
            )
        )
    for b in baselines:
        handles.append(
            Line2D(
                [],
                [],
                color="0.2",
                linestyle=context.baseline_dash.get(b, "--"),
                label=f"{b} (single model)",
            )
        )
    if reported_t:
        handles.append(Line2D([], [], color="0.4", linewidth=0.8, label="reported t"))
    return handles


def _budget_figure(context: PlotContext, where: Group, rows: pd.DataFrame) -> Figure | None:
    metrics = [m for m in context.metrics if m in rows and rows[m].notna().any()]
    if not metrics:
        return None
    series = sorted(rows.series.unique(), key=context.series_rank)
    budgets = sorted(rows.budget.unique())
    columns = min(3, len(metrics))
    lines = -(-len(metrics) // columns)
    legend_rows = -(-len(series) // 4)
    figure = Figure(
        figsize=(4.2 * columns + 0.4, 3.4 * lines + 0.7 + 0.25 * legend_rows), layout="constrained"
    )
    axes = figure.subplots(lines, columns, squeeze=False).ravel()
    figure.suptitle(f"{_group_title(where)}: at the reported t, by bonafide budget")
    table = summarize(rows, ["series", "budget"], metrics)
    for axis, metric in zip(axes, metrics):
        scale = context.scale(metric)
        for i, name in enumerate(series):
            points = table[(table.series == name) & table[f"{metric}_mean"].notna()]
            points = points.sort_values("budget")
            if points.empty:
                continue
            spread = points[f"{metric}_std"] * scale if int(points.seeds.max()) >= 2 else None
            axis.errorbar(
                points.budget,
                points[f"{metric}_mean"] * scale,
                yerr=spread,
                color=COLOURS[i % len(COLOURS)],
                marker=CONNECTION_STYLES[i % len(CONNECTION_STYLES)][1],
                markersize=4,
                capsize=3,
                linewidth=1.3,
                label=name,
            )
        axis.set_xscale("log")
        axis.set_xticks(budgets, labels=[f"{b:g}" for b in budgets])
        axis.minorticks_off()
        axis.set_title(context.title(metric), fontsize="medium")
        axis.set_xlabel("bonafide budget")
        axis.grid(alpha=0.3)
    for axis in axes[len(metrics) :]:
        axis.set_visible(False)
    handles = [
        Line2D(
            [],
            [],
            color=COLOURS[i % len(COLOURS)],
            marker=CONNECTION_STYLES[i % len(CONNECTION_STYLES)][1],
            label=name,
        )
        for i, name in enumerate(series)
    ]
    figure.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(handles), 4),
        fontsize="small",
        frameon=False,
    )
    return figure


def connection_order(records: list[Record], labels: Labels) -> list[str]:
    """The connections' labels in the order their cells ran (the benchmark file's order),
    by the records' dates; records without a date follow, in their own order."""
    ran = sorted(
        records,
        key=lambda r: (
            (r.get("provenance") or {}).get("date") is None,
            (r.get("provenance") or {}).get("date") or "",
        ),
    )
    order: list[str] = []
    for r in ran:
        label = labels["connection"][r["cell_id"]]
        if label != "-" and label not in order:
            order.append(label)
    return order


def _succeeded(records: list[Record]) -> list[Record]:
    return [r for r in records if r.get("status") == "ok"]


def _numeric(df: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    df = df.copy()
    for m in metrics:
        if m in df:
            df[m] = pd.to_numeric(df[m], errors="coerce")
    return df


def _matching(df: pd.DataFrame, where: Mapping[str, object]) -> pd.DataFrame:
    if df.empty:
        return df
    mask = pd.Series(True, index=df.index)
    for key, value in where.items():
        mask &= df[key] == value
    return df[mask]


def _reported_t(records: list[Record], labels: Labels) -> dict[tuple[object, ...], list[float]]:
    out: dict[tuple[object, ...], list[float]] = {}
    for r in records:
        c = r["config"]
        key = (
            c["track"],
            *(labels[f][r["cell_id"]] for f in [*ATTACKED[1:], "repair"]),
            c["budget"],
        )
        t = r.get("reported_t")
        if t is not None and t not in out.setdefault(key, []):
            out[key].append(t)
    return out


def _group_parts(where: Group) -> list[str]:
    parts = [where[k] for k in ATTACKED if where[k] != "-"]
    if "repair" in where:
        parts.append(where["repair"])
    return parts


def _group_title(where: Group) -> str:
    return " · ".join(_group_parts(where))


TITLE_WIDTH = 72
"""Characters per line of a path figure's title, which shares the width with the legend."""


def _title_lines(parts: list[str]) -> str:
    """PARTS joined by " · ", broken into lines of at most TITLE_WIDTH characters between
    parts (a longer part stands on its own line)."""
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + 3 + len(part) <= TITLE_WIDTH:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return "\n".join(lines)


def _unique(name: str, taken: Mapping[str, object]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}-{n}", n + 1
    return candidate
