"""Heat maps of the metrics over a surface repair's grid of (u, v), from the records'
``surface`` field. Records only, like every figure."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.tri import Triangulation

from mcbench.results.format import NO_INFO, scale
from mcbench.results.labels import plugin_labels
from mcbench.results.leaderboard import values_of
from mcbench.results.plot_names import plot_name
from mcbench.results.records import Record, metric_info

CORNER_NAMES = "ABCD"
SHOWN_FIRST = ("clean_accuracy", "attack_success_rate", "injection_success")


def has_surface(record: Record) -> bool:
    surface = record.get("surface")
    return record.get("status") == "ok" and bool(surface and surface.get("points"))


def surface_metrics(record: Record) -> list[str]:
    """The metrics with a number at every grid point, the best-known first."""
    points = record["surface"]["points"]
    names = [
        m
        for m in points[0]
        if m != "uv" and all(isinstance(p.get(m), (int, float)) for p in points)
    ]
    first = {m: i for i, m in enumerate(SHOWN_FIRST)}
    return sorted(names, key=lambda m: (first.get(m, len(first)), m))


def surface_figure(record: Record, metrics: list[str] | None = None) -> Figure:
    """One panel per metric: its value over the grid (interpolated between grid points),
    the corners named A, B, C(, D), the reported point starred."""
    surface = record["surface"]
    metrics = metrics or surface_metrics(record)[:3]
    info = metric_info([record])
    u = [p["uv"][0] for p in surface["points"]]
    v = [p["uv"][1] for p in surface["points"]]
    mesh = Triangulation(u, v)
    figure = Figure(figsize=(4.2 * len(metrics), 4.0), layout="constrained")
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    for axis, metric in zip(axes, metrics):
        percent = bool(info.get(metric, NO_INFO).get("percent", False))
        values = [values_of(p)[metric] * scale(percent) for p in surface["points"]]
        shading = axis.tricontourf(mesh, values, levels=16, cmap="viridis")
        axis.scatter(u, v, s=6, c="white", linewidths=0)
        for name, (cu, cv) in zip(CORNER_NAMES, surface["corners"]):
            axis.annotate(name, (cu, cv), textcoords="offset points", xytext=(4, 4),
                          fontweight="bold")  # fmt: skip
        chosen = surface.get("chosen")
        if chosen is not None:
            axis.scatter([chosen[0]], [chosen[1]], marker="*", s=160, c="red",
                         edgecolors="white", label="reported point")  # fmt: skip
        axis.set_title(metric + (" (%)" if percent else ""))
        axis.set_xlabel("u")
        axis.set_ylabel("v")
        axis.set_aspect("equal")
        figure.colorbar(shading, ax=axis, shrink=0.8)
    repair = record["config"].get("repair")
    shape = ((repair.get("params") if repair else None) or {}).get("shape")
    figure.suptitle(f"{record.get('label', '')}" + (f" ({shape} surface)" if shape else ""))
    return figure


def surface_figures(records: list[Record]) -> dict[str, Figure]:
    """One figure per surface record (each seed's surface is its own)."""
    records = [r for r in records if has_surface(r)]
    labels = plugin_labels(records) if records else {}
    figures: dict[str, Figure] = {}
    for r in records:
        config = r["config"]
        name = plot_name(
            "surface",
            config["track"],
            labels["dataset"][r["cell_id"]],
            labels["architecture"][r["cell_id"]],
            labels["attack"][r["cell_id"]],
            labels["repair"][r["cell_id"]],
            f"n{config['budget']}",
            f"seed{config['seed']}",
        )
        if name in figures:
            name = f"{name}--{r['cell_id'][:8]}"
        figures[name] = surface_figure(r)
    return figures
