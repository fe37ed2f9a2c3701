"""`mcbench validate` and `mcbench run`."""

from __future__ import annotations

import logging
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import click

from mcbench.cli.common import (
    F,
    Folder,
    blocked_plugins,
    compute_options,
    compute_overrides,
    data_options,
    default_cache_dir,
    load,
    profile_option,
    start_computing,
    track_option,
)
from mcbench.cli.leaderboard import print_leaderboard
from mcbench.cli.run_tables import print_run_tables


@click.command()
@click.argument("file", type=click.Path())
@profile_option
@track_option
def validate(file: str, profile: str | None, tracks: tuple[str, ...]) -> None:
    """Check FILE (names, parameters, values) without running anything."""
    bench = load(file, profile, tracks)
    click.echo(f"{file}: ok, {len(bench.cells)} cells")


def executor_options(command: F) -> F:
    """How the stages are spread over processes, GPUs and machines."""
    for option in reversed(
        [
            click.option(
                "--executor",
                type=click.Choice(["auto", "serial", "local", "ray"]),
                default="auto",
                show_default=True,
                help="serial: this process; local: worker processes on this machine; ray: a "
                "Ray cluster; auto: local with one worker per GPU when there are several",
            ),
            click.option(
                "--workers",
                type=click.IntRange(min=1),
                default=None,
                help="local executor on the CPU: worker processes, the cores shared between "
                "them [default: one per core]",
            ),
            click.option(
                "--workers-per-gpu",
                type=click.IntRange(min=1),
                default=1,
                show_default=True,
                help="stages packed on one GPU at a time, each held to its share of the "
                "GPU's memory (local), or each asking for 1/K of a GPU (ray)",
            ),
            click.option(
                "--threads-per-stage",
                type=click.IntRange(min=1),
                default=None,
                help="torch CPU threads of each stage [default: the cores divided between "
                "the workers]; CPU results are bit-identical for equal values",
            ),
            click.option(
                "--retries",
                type=click.IntRange(min=0),
                default=2,
                show_default=True,
                help="times a stage whose worker died (killed, out of memory, node lost) "
                "is run again, from its last epoch checkpoint",
            ),
            click.option(
                "--address",
                default=None,
                help="ray: the cluster to join ('auto': the one started with `ray start` "
                "on this node) [default: start a local one]",
            ),
            click.option(
                "--gpus-per-stage",
                type=click.FloatRange(min=0),
                default=None,
                help="ray: GPUs each stage asks for [default: 1/--workers-per-gpu when the "
                "cluster has GPUs, else 0]",
            ),
            click.option(
                "--cpus-per-stage",
                type=click.FloatRange(min=0),
                default=None,
                help="ray: CPUs each stage asks for [default: 1]",
            ),
        ]
    ):
        command = option(command)
    return command


@click.command()
@click.argument("file", type=click.Path())
@profile_option
@track_option
@click.option(
    "--results",
    default="results",
    show_default=True,
    type=Folder("a results folder"),
    help="where artifacts and records are stored",
)
@data_options
@compute_options
@executor_options
@click.option(
    "--dry-run",
    is_flag=True,
    help="print the cells, the unique stages they share, what is cached and an estimate of "
    "the compute left; run nothing",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "csv", "html"]),
    default="md",
    show_default=True,
    help="md: per track a compact table (every table in full under RESULTS/tables); "
    "csv, html: the whole leaderboard in that format",
)
def run(
    file: str,
    profile: str | None,
    tracks: tuple[str, ...],
    results: str,
    data_root: str | None,
    cache_dir: str | None,
    device: str,
    precision: str | None,
    compile_: bool | None,
    dry_run: bool,
    fmt: str,
    **scale: Any,
) -> None:
    """Run the benchmark matrix in FILE and print its leaderboard."""
    from mcbench.run.store import Store

    compute = compute_overrides(precision, compile_)
    bench = load(file, profile, tracks, compute, device)
    store = Store(results)
    if dry_run:
        from mcbench.cli.dry_run import print_dry_run

        print_dry_run(bench, store, device, scale)
        return
    torch_device = start_computing(results, device)
    from mcbench.run.execute import BenchmarkSource, RunSpec
    from mcbench.run.executors.choose import ExecutorOptions, choose, make_executor
    from mcbench.run.runner import run_benchmark

    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    name = choose(scale["executor"], device, scale["workers"], scale["workers_per_gpu"])
    spec = RunSpec(  # absolute paths: workers may start in another directory or on another node
        results=str(Path(results).resolve()),
        cache_dir=str(cache.resolve()),
        data_root=str(Path(data_root).resolve()) if data_root else None,
        device=device if name != "serial" else str(torch_device),
        threads=scale["threads_per_stage"],
        source=BenchmarkSource(
            str(Path(file).resolve()),
            profile,
            tuple(tracks),
            blocked_plugins(click.get_current_context()),
            tuple(compute.items()),
            torch_device.type,
        ),
    )
    options = ExecutorOptions(**{f.name: scale[f.name] for f in fields(ExecutorOptions)})
    options = replace(options, executor=name)
    executor = make_executor(options, spec, bench)
    log = logging.getLogger("mcbench")
    log.info(
        "%s: %d cells, %s executor (%d worker%s), results in %s",
        file, len(bench.cells), executor.name, executor.workers,
        "" if executor.workers == 1 else "s", results,
    )  # fmt: skip
    summary = run_benchmark(
        bench,
        store,
        torch_device,
        Path(data_root) if data_root else None,
        cache,
        progress=None,
        executor=executor,
        monitor=True,
        threads=scale["threads_per_stage"],
        plan_info={"profile": profile, "tracks": list(tracks), "compute": compute},
    )
    log.info(
        "ran %d, reused %d, failed %d", len(summary.ran), len(summary.reused), len(summary.failed)
    )
    if fmt == "md":
        print_run_tables(results, [c.cell_id for c in bench.cells])
    else:
        print_leaderboard(results, fmt, cell_ids=[c.cell_id for c in bench.cells])
    if summary.failed:
        click.echo(
            f"{len(summary.failed)} cell(s) failed; see their records and "
            f"{Path(results) / 'mcbench.log'}",
            err=True,
        )
        sys.exit(1)
