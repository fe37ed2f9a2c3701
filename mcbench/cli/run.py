"""`mcbench validate` and `mcbench run`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from mcbench.cli.common import (
    data_options,
    default_cache_dir,
    load,
    profile_option,
    start_computing,
    track_option,
)
from mcbench.cli.leaderboard import print_leaderboard


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@profile_option
@track_option
def validate(file, profile, tracks):
    """Check FILE (names, parameters, values) without running anything."""
    bench = load(file, profile, tracks)
    click.echo(f"{file}: ok, {len(bench.cells)} cells")


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@profile_option
@track_option
@click.option(
    "--results",
    default="results",
    show_default=True,
    type=click.Path(file_okay=False),
    help="where artifacts and records are stored",
)
@data_options
@click.option("--dry-run", is_flag=True, help="print the cells and what is cached; run nothing")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "csv", "html"]),
    default="md",
    show_default=True,
    help="format of the leaderboard printed at the end",
)
def run(file, profile, tracks, results, data_root, cache_dir, device, dry_run, fmt):
    """Run the benchmark matrix in FILE and print its leaderboard."""
    from mcbench.run.store import Store

    bench = load(file, profile, tracks)
    store = Store(results)
    if dry_run:
        from mcbench.run.runner import stage_status

        for cell in bench.cells:
            status = stage_status(store, cell)
            marks = "  ".join(
                f"{stage}:{'cached' if done else 'to run'}" for stage, done in status.items()
            )
            click.echo(f"{cell.cell_id}  {cell.label()}\n    {marks}")
        click.echo(f"{len(bench.cells)} cells")
        return
    torch_device = start_computing(results, device)
    from mcbench.run.progress import progress_factory
    from mcbench.run.runner import run_benchmark

    log = logging.getLogger("mcbench")
    log.info("%s: %d cells on %s, results in %s", file, len(bench.cells), torch_device, results)
    from tqdm.auto import tqdm

    with tqdm(total=len(bench.cells), desc="cells", unit="cell", position=0) as bar:
        summary = run_benchmark(
            bench,
            store,
            torch_device,
            Path(data_root) if data_root else None,
            Path(cache_dir) if cache_dir else default_cache_dir(),
            progress_factory(),
            cell_bar=lambda: bar.update(1),
        )
    log.info(
        "ran %d, reused %d, failed %d", len(summary.ran), len(summary.reused), len(summary.failed)
    )
    print_leaderboard(results, fmt, cell_ids=[c.cell_id for c in bench.cells])
    if summary.failed:
        click.echo(
            f"{len(summary.failed)} cell(s) failed; see their records and "
            f"{Path(results) / 'mcbench.log'}",
            err=True,
        )
        sys.exit(1)
