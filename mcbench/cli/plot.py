"""`mcbench plot`."""

from __future__ import annotations

from pathlib import Path

import click

from mcbench.cli.common import fail


@click.command()
@click.argument("results", type=click.Path(file_okay=False))
@click.option(
    "--out",
    "-o",
    default=None,
    type=click.Path(file_okay=False),
    help="where the figures go [default: RESULTS/plots]",
)
def plot(results, out):
    """Draw each path's metrics along t (per connection, with the single-model baselines
    as reference lines) and each metric against the bonafide budget, as PNG and SVG."""
    from mcbench.results.plots import write_plots

    try:
        written = write_plots(results, Path(out) if out else Path(results) / "plots")
    except ValueError as e:
        fail(str(e))
    for path in written:
        click.echo(str(path))
