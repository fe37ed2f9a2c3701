"""The ``mcbench`` command. Heavy modules (torch, plugins) are imported inside the
commands that need them, so ``mcbench leaderboard`` stays light."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from pathlib import Path

import click

from mcbench.errors import ConfigError, PluginError

KINDS = ("dataset", "architecture", "attack", "connection", "repair", "metric")


def default_cache_dir() -> Path:
    if os.environ.get("MCBENCH_CACHE"):
        return Path(os.environ["MCBENCH_CACHE"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("mcbench"))


def fail(message: str, code: int = 2):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class Group(click.Group):
    """Turns user-input errors into one clear line and exit code 2, and adds the commands
    of plugins (hook mcbench_register_commands) only when a name is not a built-in, so
    built-in commands do not import every plugin."""

    _plugins_loaded = False

    def _load_plugin_commands(self):
        if not self._plugins_loaded:
            Group._plugins_loaded = True
            from mcbench.plugins import make_plugin_manager

            try:
                make_plugin_manager().hook.mcbench_register_commands(cli=self)
            except PluginError as e:
                fail(str(e))

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None:
            self._load_plugin_commands()
            command = super().get_command(ctx, name)
        return command

    def list_commands(self, ctx):
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ConfigError, PluginError, FileNotFoundError) as e:
            fail(str(e))


@click.group(cls=Group)
@click.version_option(package_name="mcbench")
def cli():
    """mcbench: mode connectivity as a robustness benchmark."""


def _registry():
    from mcbench.registry import load_registry

    return load_registry()


def _load(file, profile, tracks):
    from mcbench.config import load_benchmark

    return load_benchmark(file, _registry(), profile=profile, tracks=tuple(tracks))


profile_option = click.option("--profile", default=None,
                              help="named settings from the file's 'profiles' (e.g. quick)")
track_option = click.option("--track", "tracks", multiple=True, help="run only this track")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@profile_option
@track_option
def validate(file, profile, tracks):
    """Check FILE (names, parameters, values) without running anything."""
    bench = _load(file, profile, tracks)
    click.echo(f"{file}: ok, {len(bench.cells)} cells")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@profile_option
@track_option
@click.option("--results", default="results", show_default=True, type=click.Path(file_okay=False),
              help="where artifacts and records are stored")
@click.option("--data-root", default=None, envvar="MCBENCH_DATA", type=click.Path(),
              help="where datasets are read from [default: $MCBENCH_DATA or the cache dir]")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False),
              help="decoded datasets [default: $MCBENCH_CACHE or the user cache dir]")
@click.option("--device", default="auto", show_default=True,
              help="auto (CUDA when present, else CPU), cpu, cuda, cuda:N")
@click.option("--dry-run", is_flag=True, help="print the cells and what is cached; run nothing")
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "html"]), default="md",
              show_default=True, help="format of the leaderboard printed at the end")
def run(file, profile, tracks, results, data_root, cache_dir, device, dry_run, fmt):
    """Run the benchmark matrix in FILE and print its leaderboard."""
    from mcbench.store import Store

    bench = _load(file, profile, tracks)
    store = Store(results)
    if dry_run:
        from mcbench.runner import stage_status

        for cell in bench.cells:
            status = stage_status(store, cell)
            marks = "  ".join(f"{stage}:{'cached' if done else 'to run'}"
                              for stage, done in status.items())
            click.echo(f"{cell.cell_id}  {cell.label()}\n    {marks}")
        click.echo(f"{len(bench.cells)} cells")
        return
    from mcbench.allocator import keep_freed_memory
    from mcbench.progress import progress_factory, setup_logging

    keep_freed_memory()
    from mcbench.runner import resolve_device, run_benchmark

    try:
        torch_device = resolve_device(device)
    except ValueError as e:
        fail(str(e))
    setup_logging(Path(results) / "mcbench.log")
    log = logging.getLogger("mcbench")
    log.info("%s: %d cells on %s, results in %s", file, len(bench.cells), torch_device, results)
    from tqdm.auto import tqdm

    with tqdm(total=len(bench.cells), desc="cells", unit="cell", position=0) as bar:
        summary = run_benchmark(bench, store, torch_device,
                                Path(data_root) if data_root else None,
                                Path(cache_dir) if cache_dir else default_cache_dir(),
                                progress_factory(), cell_bar=lambda: bar.update(1))
    log.info("ran %d, reused %d, failed %d", len(summary.ran), len(summary.reused),
             len(summary.failed))
    _print_leaderboard(results, fmt, cell_ids=[c.cell_id for c in bench.cells])
    if summary.failed:
        click.echo(f"{len(summary.failed)} cell(s) failed; see their records and "
                   f"{Path(results) / 'mcbench.log'}", err=True)
        sys.exit(1)


TITLES = {
    "summary": "Leaderboard (at the reported t; endpoints: the two attacked models; "
               "untampered: the same before a weight attack)",
    "barriers": "Barriers along the path (largest shortfall from the straight interpolation "
                "of the endpoints' values; Pearson r of adversarial loss and input-Hessian "
                "eigenvalue along t)",
    "tamper": "Weight attacks on the endpoints",
    "path": "Along the path",
}


def _print_leaderboard(results, fmt, cell_ids=None, along_path=True, table=None):
    from mcbench.leaderboard import build_tables, load_records, metric_info, render

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
            raise click.UsageError(f"no {name!r} table: the records have no "
                                   f"{'weight attacks' if name == 'tamper' else 'paths'}")
        if fmt == "md":
            click.echo(f"\n## {TITLES[name]}\n")
        click.echo(render(tables[name], info, fmt))
    for r in failed:
        click.echo(f"failed: {r['label']} [{r['cell_id']}]: {r['error']['type']}: "
                   f"{r['error']['message']}", err=True)


@cli.command()
@click.argument("results", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "html"]), default="md",
              show_default=True)
@click.option("--along-path/--no-along-path", default=True, show_default=True,
              help="also print the table of every t on the path")
@click.option("--table", type=click.Choice(list(TITLES)), default=None,
              help="print only this table [default: all of them; csv: the summary]")
def leaderboard(results, fmt, along_path, table):
    """Build leaderboard tables from the records under RESULTS."""
    _print_leaderboard(results, fmt, along_path=along_path, table=table)


@cli.command()
@click.argument("kind", required=False, type=click.Choice(KINDS))
def plugins(kind):
    """List plugins: name, kind, provider, description and parameters."""
    from mcbench.params import describe, is_plugin_type, to_plain

    registry = _registry()
    for entry in registry.all(kind):
        click.echo(f"{entry.name}  [{entry.kind}]  {entry.distribution} {entry.version}")
        click.echo(f"    {entry.description}")
        for p in describe(entry.cls):
            value = p.default
            if is_plugin_type(type(value)):
                value = {"name": value.name, **to_plain(value)}
            default = "" if value is dataclasses.MISSING else f" = {value!r}"
            click.echo(f"    - {p.name}: {p.type_name}{default}" + (f"  {p.help}" if p.help else ""))


def main():
    cli()
