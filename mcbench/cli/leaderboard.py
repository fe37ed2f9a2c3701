"""`mcbench leaderboard`: show, compare, verify, site and replay."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from mcbench.cli.common import (
    Folder,
    data_options,
    default_cache_dir,
    fail,
    load,
    start_computing,
)
from mcbench.errors import ConfigError


def warn_skipped(error) -> None:
    """One warning line for a record left out (ERROR, a ConfigError, names its file)."""
    click.echo(f"warning: {error}; record left out", err=True)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


skip_invalid_option = click.option(
    "--skip-invalid",
    is_flag=True,
    help="leave out each record that cannot be read (one warning line each) instead of "
    "stopping at the first with exit code 2",
)


def print_leaderboard(results, fmt, cell_ids=None, along_path=True, table=None, skip=False):
    """The tables of the records under RESULTS (of CELL_IDS alone, when given: the cells a
    run just finished, whose tables a damaged record of another cell must not stop; such a
    record is left out with a warning, as with SKIP)."""
    from mcbench.results.format import render
    from mcbench.results.leaderboard import TITLES, build_tables, tables_to_print
    from mcbench.results.record_reader import load_records, settled
    from mcbench.results.records import metric_info

    skip = skip or cell_ids is not None
    records, failed = load_records(results, invalid=warn_skipped if skip else None)
    if cell_ids is not None:
        wanted = set(cell_ids)
        records = [r for r in records if r["cell_id"] in wanted]
        failed = [r for r in failed if r["cell_id"] in wanted]
    with settled():
        tables = build_tables(records)
        info = metric_info(records)
        try:
            names = tables_to_print(tables, fmt, table, along_path)
        except ConfigError as e:
            raise ConfigError(e.message, file=str(results)) from None
        if fmt == "json":
            from mcbench.results.tables_json import tables_document

            click.echo(json.dumps(tables_document(tables, names, info, failed), indent=1))
            return
        for name in names:
            if fmt == "md":
                click.echo(f"\n## {TITLES[name]}\n")
            click.echo(render(tables[name], info, fmt))
    echo_failed(failed)


def echo_failed(failed: list) -> None:
    """One line on stderr per failed record: its cell and its error."""
    for r in failed:
        error = r.get("error") or {}
        click.echo(
            f"failed: {r.get('label', r['cell_id'])} [{r['cell_id']}]: "
            f"{error.get('type', '?')}: {error.get('message', '')}",
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
    published row, build the HTML page, replay the t rule at other tolerances.
    `mcbench leaderboard RESULTS` is short for `mcbench leaderboard show RESULTS`."""


@leaderboard.command("show")
@click.argument("results", type=Folder("a results folder"))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "csv", "html", "json"]),
    default="md",
    show_default=True,
    help="json: every table's rows, unformatted, with each metric's info and the failed cells",
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
@skip_invalid_option
def leaderboard_show(results, fmt, along_path, table, skip_invalid):
    """Build leaderboard tables from the records under RESULTS."""
    print_leaderboard(results, fmt, along_path=along_path, table=table, skip=skip_invalid)


@leaderboard.command("compare")
@click.argument("results", type=Folder("a results folder"))
@click.argument("published", type=Folder("a published leaderboard folder"))
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
@skip_invalid_option
def leaderboard_compare(results, published, by, skip_mismatched, fmt, skip_invalid):
    """Rank your rows in RESULTS among the published rows in PUBLISHED (a folder of
    leaderboards/), after checking that both follow the same protocol: dataset, endpoints'
    training, attack settings, budget, data split and t rule. Each metric shows its value
    and, in parentheses, its rank in the protocol group (1 = best)."""
    from tabulate import tabulate

    from mcbench.results.compare import Mismatched, compare, ranking_tables, refuse_mismatches
    from mcbench.results.record_reader import load_records, settled
    from mcbench.results.records import metric_info

    invalid = warn_skipped if skip_invalid else None
    yours, _ = load_records(results, invalid=invalid)
    theirs, _ = load_records(published, invalid=invalid)
    for folder, rows in ((published, theirs), (results, yours)):
        if not rows:
            fail(
                f"{folder}: no successful record to compare (expected some under {folder}/records)"
            )
    try:
        with settled():
            result = compare(yours, theirs)
    except ValueError as e:
        fail(str(e))
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    try:
        left_out = refuse_mismatches(result, published, len(yours), skip_mismatched)
    except Mismatched as e:
        click.echo(e.listing, err=True)
        fail(str(e))
    if left_out:
        click.echo(left_out, err=True)
    if not result.metrics:
        fail(
            f"nothing to rank: no metric with a direction is scored at the reported t by "
            f"both your rows in {results} and the published rows of their protocol in "
            f"{published}"
        )
    try:
        tables = ranking_tables(result, by or result.metrics[0], metric_info(yours + theirs))
    except ValueError as e:
        fail(str(e))
    for heading, table in tables:
        if fmt == "csv":
            click.echo(table.assign(group=heading).to_csv(index=False), nl=False)
            continue
        click.echo(f"\n## {heading}\n")
        click.echo(tabulate(table, headers="keys", tablefmt="github", showindex=False))


@leaderboard.command("verify")
@click.argument("published", type=Folder("a published leaderboard folder"))
@click.argument("rows", nargs=-1, required=True)
@click.option(
    "--results",
    default="verify-results",
    show_default=True,
    type=Folder("a results folder"),
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
@click.option("--all", "every", is_flag=True, help="verify every record a query matches")
@data_options
def leaderboard_verify(
    published, rows, results, points, relative, every, data_root, cache_dir, device
):
    """Re-run published rows from their recorded configuration and check that every number
    (each t on the path, the endpoints' scores) reproduces within the tolerance. ROWS are
    cell ids (or their first characters, the names of the files in PUBLISHED/records) or
    words of the records' labels, each a whole word, e.g. "bezier n=2500"; a row that
    matches several records is refused unless --all. Exit code 1 when a value does not
    reproduce."""
    from mcbench.results.record_reader import load_records
    from mcbench.results.verify import Tolerance, select_rows, verify_rows

    records, _ = load_records(published, need="rerun")
    chosen = select_rows(records, list(rows), every)
    tolerance = Tolerance(points=points, relative=relative)
    rerun = _rerun(results, start_computing(results, device), data_root, cache_dir)
    verdicts = []
    for verdict in verify_rows(chosen, rerun, tolerance):
        click.echo("\n".join(verdict.lines()))
        verdicts.append(verdict.reproduces)
    sys.exit(0 if all(verdicts) else 1)


def _rerun(results, torch_device, data_root, cache_dir):
    """A function running a published record's cell afresh under RESULTS (or reusing the
    re-run already there) and returning the re-run's record."""
    from mcbench.results.record_reader import from_json, written_id
    from mcbench.results.verify import check_same_cell, write_benchmark
    from mcbench.run.progress import progress_factory
    from mcbench.run.runner import run_benchmark
    from mcbench.run.store import Store

    store = Store(results)

    def rerun(record):
        cell_id = written_id(record["cell_id"])  # it names files under RESULTS
        file = write_benchmark(record, Path(results) / "benchmarks" / f"{cell_id}.yaml")
        bench = load(file, None, ())
        check_same_cell(bench.cells[0], record, str(file))
        again = store.load_record(cell_id)
        if isinstance(again, dict) and again.get("status") == "ok":
            provenance = again.get("provenance") or {}
            click.echo(
                f"{record.get('label', cell_id)}: reusing the re-run already in {results} "
                f"({provenance.get('date')}, {provenance.get('device')})"
            )
        else:
            data = Path(data_root) if data_root else None
            cache = Path(cache_dir) if cache_dir else default_cache_dir()
            run_benchmark(bench, store, torch_device, data, cache, progress_factory())
            again = store.load_record(cell_id)
        return from_json(again, str(store.record_path(cell_id)), need="rerun")

    return rerun


@leaderboard.command("site")
@click.argument("published", type=Folder("a folder of leaderboards"), default="leaderboards")
@click.option(
    "--out",
    "-o",
    default="site",
    show_default=True,
    type=Folder("a folder for the page"),
    help="folder the page (index.html) and its images are written to",
)
@skip_invalid_option
def leaderboard_site(published, out, skip_invalid):
    """Build a static HTML page of every published table under PUBLISHED. Only regular
    files inside a table's folder are read and copied: a symbolic link out of it, or a
    FIFO, a device or a socket, is left out with a warning."""
    from mcbench.results.site import build_site

    invalid = warn_skipped if skip_invalid else None
    page = build_site(Path(published), Path(out), invalid=invalid, warn=warn)
    click.echo(f"wrote {page}")


def fraction(text: str) -> float | None:
    """TEXT as a number in [0, 1], or None."""
    try:
        number = float(text)
    except ValueError:
        return None
    return number if 0.0 <= number <= 1.0 else None


class Fraction(click.ParamType):
    """A number in [0, 1]."""

    name = "FRACTION"

    def convert(self, value, param, ctx):
        number = value if isinstance(value, float) else fraction(str(value))
        if number is None:
            self.fail(f"expected a fraction in [0, 1], got {value!r}", param, ctx)
        return number


class Fractions(click.ParamType):
    """Numbers in [0, 1], separated by commas."""

    name = "FRACTION[,...]"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        return tuple(Fraction().convert(text, param, ctx) for text in str(value).split(","))


@leaderboard.command("replay")
@click.argument("results", type=Folder("a results folder"))
@click.option(
    "--tolerances",
    type=Fractions(),
    default="0.02,0.03,0.05",
    show_default=True,
    help="the tolerances to replay the bonafide rule at, separated by commas",
)
@click.option(
    "--asr",
    type=Fraction(),
    default=0.10,
    show_default=True,
    help="the attack success rate at most of the best t with the trigger in view",
)
def leaderboard_replay(results, tolerances, asr):
    """Replay the bonafide t rule on the records under RESULTS at other tolerances: which
    t it would choose, and that point's scores; nothing is recomputed. The last column is
    the best interior t with attack success at most --asr, which only someone who knows
    the trigger can pick: choosing a tolerance by it is a sensitivity analysis, not a rule."""
    from mcbench.results.record_reader import load_records
    from mcbench.results.replay import replay_rows, replay_table

    records, _ = load_records(results)
    rows = replay_rows(records, tolerances, asr)
    if not rows:
        fail(f"{results}: no record whose t was chosen by the bonafide rule")
    click.echo(replay_table(rows, tolerances, asr))
