"""The tables at the end of `mcbench run`: every table written to RESULTS/tables, per track
a compact one printed, and the plots drawn to RESULTS/plots."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mcbench.cli.leaderboard import echo_failed, warn_skipped

if TYPE_CHECKING:
    import pandas as pd

    from mcbench.results.records import Record

TABLES_DIR = "tables"
PLOTS_DIR = "plots"


def print_run_tables(results: str, cell_ids: list[str]) -> None:
    """The tables of the cells CELL_IDS (a damaged record of another cell is left out with a
    warning): each written in full as Markdown and CSV under RESULTS/tables, and per track
    its summary (and, where the track correlates metrics along the path, its barriers)
    printed with the track's own columns, narrow enough for a terminal."""
    from mcbench.results.compact import WIDTH, compact_tables
    from mcbench.results.format import render
    from mcbench.results.leaderboard import TITLES, build_tables
    from mcbench.results.record_reader import load_records, settled
    from mcbench.results.records import metric_info

    wanted = set(cell_ids)
    records, failed = load_records(results, invalid=warn_skipped)
    records = [r for r in records if r["cell_id"] in wanted]
    failed = [r for r in failed if r["cell_id"] in wanted]
    folder = Path(results) / TABLES_DIR
    with settled():
        tables = build_tables(records)
        info = metric_info(records)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, table in tables.items():
            if table.empty:
                continue
            for fmt in ("md", "csv"):
                path = folder / f"{name}.{fmt}"
                heading = f"# {TITLES[name]}\n\n" if fmt == "md" else ""
                path.write_text(heading + render(table, info, fmt), encoding="utf-8")
            written.append(name)
        barriers = {t.track: t for t in compact_tables(_correlations(tables.get("barriers")), info)}
        for summary in compact_tables(tables["summary"], info):
            shared = ", ".join(f"{k} {v}" for k, v in summary.shared.items())
            click.echo(f"\n## {summary.track}" + (f" ({shared})" if shared else "") + "\n")
            click.echo(summary.table)
            if summary.left_out:
                left_out = f"(left out to fit, in the full table: {', '.join(summary.left_out)})"
                click.echo(textwrap.fill(left_out, WIDTH, break_on_hyphens=False))
            if summary.track in barriers:
                click.echo("\nalong the path:\n")
                click.echo(barriers[summary.track].table)
    echo_failed(failed)
    if written:
        click.echo(f"\nfull tables ({', '.join(written)}; Markdown and CSV):\n  {folder}")
        if "path" in written:
            click.echo(f"every evaluated t of every path:\n  {folder / 'path.md'}")
        _write_plots(records, Path(results) / PLOTS_DIR)


def _write_plots(records: list[Record], folder: Path) -> None:
    """The figures of `mcbench plot`, as PNG; a figure that cannot be drawn costs a warning,
    never the run's results."""
    from mcbench.results.plots import write_plots

    try:
        written = write_plots(records, folder, formats=("png",))
    except Exception as e:  # the records and tables are written already
        click.echo(f"warning: the plots could not be drawn ({type(e).__name__}: {e})", err=True)
        return
    if written:
        click.echo(f"plots ({len(written)} PNG; `mcbench plot` redraws them, SVG too):\n  {folder}")


def _correlations(barriers: pd.DataFrame | None) -> pd.DataFrame | None:
    """The barrier table's rows and columns that correlate metrics along the path (the
    evasion track's finding), or None where no track does."""
    if barriers is None or barriers.empty:
        return None
    pearson = [c for c in barriers.columns if c.startswith("pearson")]
    if not pearson:
        return None
    rows = barriers[barriers[[c for c in pearson if c.endswith("_mean")]].notna().any(axis=1)]
    return rows if not rows.empty else None
