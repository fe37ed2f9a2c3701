"""`mcbench leaderboard`: show, compare, verify and site."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mcbench.cli.common import data_options, default_cache_dir, fail, load, start_computing


def print_leaderboard(results, fmt, cell_ids=None, along_path=True, table=None):
    from mcbench.results.leaderboard import TITLES, build_tables, load_records, metric_info, render

    records, failed = load_records(results)
    if cell_ids is not None:
        wanted = set(cell_ids)
        records = [r for r in records if r["cell_id"] in wanted]
        failed = [r for r in failed if r["cell_id"] in wanted]
    tables = build_tables(records)
    info = metric_info(records)
    if table is not None:
        names = [table]
    elif fmt == "csv":  # one table per CSV file: the summary unless another is asked for
        names = ["summary"]
    else:
        names = [n for n in ("summary", "barriers", "tamper") if n in tables]
        names += ["path"] if along_path else []
    for name in names:
        if name not in tables:
            raise click.UsageError(
                f"no {name!r} table: the records have no "
                f"{'weight attacks' if name == 'tamper' else 'paths'}"
            )
        if fmt == "md":
            click.echo(f"\n## {TITLES[name]}\n")
        click.echo(render(tables[name], info, fmt))
    for r in failed:
        click.echo(
            f"failed: {r['label']} [{r['cell_id']}]: {r['error']['type']}: {r['error']['message']}",
            err=True,
        )


class DefaultToShow(click.Group):
    """``mcbench leaderboard RESULTS`` is short for ``mcbench leaderboard show RESULTS``."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultToShow)
def leaderboard():
    """Leaderboard tables from records: show, compare with a published table, verify a
    published row, build the HTML page. `mcbench leaderboard RESULTS` is short for
    `mcbench leaderboard show RESULTS`."""


@leaderboard.command("show")
@click.argument("results", type=click.Path(file_okay=False))
@click.option(
    "--format", "fmt", type=click.Choice(["md", "csv", "html"]), default="md", show_default=True
)
@click.option(
    "--along-path/--no-along-path",
    default=True,
    show_default=True,
    help="also print the table of every t on the path",
)
@click.option(
    "--table",
    type=click.Choice(["summary", "barriers", "tamper", "path"]),
    default=None,
    help="print only this table [default: all of them; csv: the summary]",
)
def leaderboard_show(results, fmt, along_path, table):
    """Build leaderboard tables from the records under RESULTS."""
    print_leaderboard(results, fmt, along_path=along_path, table=table)


@leaderboard.command("compare")
@click.argument("results", type=click.Path(file_okay=False))
@click.argument("published", type=click.Path(file_okay=False))
@click.option(
    "--by",
    default=None,
    help="metric that orders the rows [default: the first metric of the records]",
)
@click.option(
    "--skip-mismatched",
    is_flag=True,
    help="compare the rows that match the published protocol and list the others "
    "(default: refuse when any row does not match)",
)
@click.option("--format", "fmt", type=click.Choice(["md", "csv"]), default="md", show_default=True)
def leaderboard_compare(results, published, by, skip_mismatched, fmt):
    """Rank your rows in RESULTS among the published rows in PUBLISHED (a folder of
    leaderboards/), after checking that both follow the same protocol: dataset, endpoints'
    training, attack settings, budget, data split and t rule. Each metric shows its value
    and, in parentheses, its rank in the protocol group (1 = best)."""
    from tabulate import tabulate

    from mcbench.results.compare import compare, ranking_tables
    from mcbench.results.leaderboard import load_records, metric_info

    yours, _ = load_records(results)
    theirs, _ = load_records(published)
    try:
        result = compare(yours, theirs)
    except ValueError as e:
        fail(str(e))
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if result.mismatches:
        listing = "\n".join(f"  {m}" for m in result.mismatches)
        if result.table.empty or not skip_mismatched:
            fail(
                f"{len(result.mismatches)} of your {len(yours)} rows do not follow the "
                f"protocol of {published}; they cannot be ranked against it:\n{listing}"
                + (
                    ""
                    if result.table.empty
                    else "\n(--skip-mismatched ranks the rows that do match)"
                )
            )
        click.echo(
            f"not compared ({len(result.mismatches)} rows, protocol differs):\n{listing}", err=True
        )
    info = metric_info(yours + theirs)
    try:
        tables = ranking_tables(result, by or result.metrics[0], info)
    except ValueError as e:
        fail(str(e))
    for heading, table in tables:
        if fmt == "csv":
            click.echo(table.assign(group=heading).to_csv(index=False), nl=False)
            continue
        click.echo(f"\n## {heading}\n")
        click.echo(tabulate(table, headers="keys", tablefmt="github", showindex=False))


@leaderboard.command("verify")
@click.argument("published", type=click.Path(file_okay=False))
@click.argument("rows", nargs=-1, required=True)
@click.option(
    "--results",
    default="verify-results",
    show_default=True,
    type=click.Path(file_okay=False),
    help="where the re-run's artifacts and records go",
)
@click.option(
    "--points",
    default=0.02,
    show_default=True,
    type=click.FloatRange(min=0),
    help="tolerance for percentage metrics, as a fraction (0.02 = 2 points)",
)
@click.option(
    "--relative",
    default=0.05,
    show_default=True,
    type=click.FloatRange(min=0),
    help="tolerance for the other metrics, relative to the published value",
)
@data_options
def leaderboard_verify(published, rows, results, points, relative, data_root, cache_dir, device):
    """Re-run published rows from their recorded configuration and check that every number
    (each t on the path, the endpoints' scores) reproduces within the tolerance. ROWS are
    cell ids (or their first characters, the names of the files in PUBLISHED/records) or
    text found in the records' labels, e.g. "bezier n=2500". Exit code 1 when a value does
    not reproduce."""
    from mcbench.results.leaderboard import load_records
    from mcbench.results.verify import Tolerance, write_benchmark

    records, _ = load_records(published)
    chosen = [
        r
        for r in records
        if any(r["cell_id"].startswith(q) or q in r.get("label", "") for q in rows)
    ]
    if not chosen:
        listing = "\n".join(f"  {r['cell_id']}  {r.get('label', '')}" for r in records)
        fail(f"{published}: no record matches {' '.join(rows)!r}; the records are:\n{listing}")
    tolerance = Tolerance(points=points, relative=relative)
    torch_device = start_computing(results, device)
    from mcbench.results.verify import check_same_cell, reproduction
    from mcbench.run.progress import progress_factory
    from mcbench.run.runner import run_benchmark
    from mcbench.run.store import Store

    store = Store(results)
    failures = 0
    for record in chosen:
        file = write_benchmark(record, Path(results) / "benchmarks" / f"{record['cell_id']}.yaml")
        bench = load(file, None, ())
        check_same_cell(bench.cells[0], record, str(file))
        again = store.load_record(record["cell_id"])
        if again and again["status"] == "ok":
            click.echo(
                f"{record['label']}: reusing the re-run already in {results} "
                f"({again['provenance']['date']}, {again['provenance']['device']})"
            )
        else:
            run_benchmark(
                bench,
                store,
                torch_device,
                Path(data_root) if data_root else None,
                Path(cache_dir) if cache_dir else default_cache_dir(),
                progress_factory(),
            )
            again = store.load_record(record["cell_id"])
        if again["status"] != "ok":
            failures += 1
            click.echo(
                f"{record['label']}: the re-run failed: {again['error']['type']}: "
                f"{again['error']['message']}"
            )
            continue
        table = reproduction(record, again, tolerance)
        bad = table[~table.ok]
        failures += bool(len(bad))
        verdict = "reproduces" if bad.empty else "DOES NOT reproduce"
        click.echo(
            f"\n{record['label']} [{record['cell_id']}]: {verdict}: "
            f"{int(table.ok.sum())}/{len(table)} values within {tolerance} "
            f"(published on {record['provenance']['device']}, "
            f"re-run on {again['provenance']['device']})"
        )
        if not bad.empty:  # every value, so the misses are seen in context
            from tabulate import tabulate

            click.echo(
                tabulate(table, headers="keys", tablefmt="github", showindex=False, floatfmt=".4g")
            )
        worst = table.loc[table.difference.idxmax()]
        click.echo(
            f"largest difference: {worst.difference:.4g} ({worst.metric} at {worst['where']})"
        )
    sys.exit(1 if failures else 0)


@leaderboard.command("site")
@click.argument("published", type=click.Path(file_okay=False), default="leaderboards")
@click.option(
    "--out",
    "-o",
    default="site",
    show_default=True,
    type=click.Path(file_okay=False),
    help="folder the page (index.html) and its images are written to",
)
def leaderboard_site(published, out):
    """Build a static HTML page of every published table under PUBLISHED."""
    from mcbench.results.site import build_site

    page = build_site(Path(published), Path(out))
    click.echo(f"wrote {page}")
