"""What `mcbench run --dry-run` prints: each cell's stages and whether they are cached,
the unique stages per kind and how many cells share them, and an estimate of the compute
left from the timings of earlier records on the same device."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from tabulate import tabulate

if TYPE_CHECKING:
    from mcbench.bench.load import Benchmark
    from mcbench.run.store import Store


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def print_dry_run(bench: Benchmark, store: Store, device: str, scale: dict[str, Any]) -> None:
    import torch

    from mcbench.run.device import resolve_device
    from mcbench.run.estimate import estimate
    from mcbench.run.executors.choose import choose, threads_per_stage
    from mcbench.run.graph import build_graph
    from mcbench.run.provenance import device_name
    from mcbench.run.runner import stage_status

    for cell in bench.cells:
        status = stage_status(store, cell)
        marks = "  ".join(
            f"{stage}:{'cached' if done else 'to run'}" for stage, done in status.items()
        )
        click.echo(f"{cell.cell_id}  {cell.label()}\n    {marks}")
    graph = build_graph(list(bench.cells), store)
    rows = [
        [
            kind,
            info["stages"],
            f"{info['cells_per_stage']:.1f} (max {info['max_cells_per_stage']})",
            info["stored"],
            info["stages"] - info["stored"],
        ]
        for kind, info in graph.kinds().items()
    ]
    click.echo(
        f"\n{len(bench.cells)} cells: {len(graph.done_cells)} with a record, "
        f"{len(graph.cells)} to run" + (", whose stages are:" if graph.cells else "")
    )
    if rows:
        click.echo(
            tabulate(
                rows,
                headers=["stage", "unique", "cells per stage", "cached", "to compute"],
                tablefmt="simple",
            )
        )
    try:
        torch_device = resolve_device(device)
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    executor = choose(scale["executor"], device, scale["workers"], scale["workers_per_gpu"])
    if torch_device.type == "cpu":  # the device's name, as records give it, counts threads
        torch.set_num_threads(
            threads_per_stage(executor, device, scale["workers"], scale["threads_per_stage"])
        )
    name = device_name(torch_device)
    found = estimate(graph, store.root, name)
    left = len(graph.to_compute())
    if not left:
        click.echo("nothing left to compute")
    elif found.timed:
        untimed = ", ".join(f"{n} {kind}" for kind, n in found.untimed.items())
        click.echo(
            f"estimated compute left on {name}: {duration(found.seconds)} for {found.timed} "
            f"of {left} stages (rates from {found.records} records in {store.root})"
            + (f"; no timing yet for {untimed}" if untimed else "")
        )
    else:
        click.echo(
            f"no estimate: no record in {store.root} timed the same work on {name} "
            f"({found.records} records read)"
        )
