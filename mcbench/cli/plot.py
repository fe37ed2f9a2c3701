"""`mcbench plot`."""

from __future__ import annotations

from pathlib import Path

import click

from mcbench.cli.common import Folder, fail
from mcbench.cli.leaderboard import skip_invalid_option, warn_skipped


@click.command()
@click.argument("results", type=Folder("a results folder"))
@click.option(
    "--out",
    "-o",
    default=None,
    type=Folder("a folder for the figures"),
    help="where the figures go [default: RESULTS/plots]",
)
@skip_invalid_option
def plot(results: str, out: str | None, skip_invalid: bool) -> None:
    """Draw each path's metrics along t (per connection, with the single-model baselines
    as reference lines) and each metric against the bonafide budget, as PNG and SVG."""
    from mcbench.results.plots import write_plots

    invalid = warn_skipped if skip_invalid else None
    try:
        written = write_plots(
            results, Path(out) if out else Path(results) / "plots", invalid=invalid
        )
    except ValueError as e:
        fail(str(e))
    for path in written:
        click.echo(str(path))
