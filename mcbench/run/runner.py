"""Runs the cells of a benchmark as one graph of stages on an executor: every cell ends
as a record, ok or failed, and a failed stage fails only the cells that need it. Input
errors (data that cannot be read, artifacts of another copy of the data) stop the run
before any stage computes."""

from __future__ import annotations

import logging
import tarfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import torch

from mcbench.bench.load import Benchmark
from mcbench.cell import plan
from mcbench.cell.models import ProgressFactory
from mcbench.errors import ConfigError
from mcbench.results.records import RecordError
from mcbench.run.book import RunBook
from mcbench.run.cache import StageCache, data_copy
from mcbench.run.data_cache import DatasetCache
from mcbench.run.execute import RunSpec
from mcbench.run.executors import Executor
from mcbench.run.executors.choose import ExecutorOptions, make_executor
from mcbench.run.graph import StageGraph, build_graph, is_stored
from mcbench.run.monitor import Monitor
from mcbench.run.record import base_record, failed_record
from mcbench.run.runlog import RunLog
from mcbench.run.store import Store

log = logging.getLogger("mcbench")


@dataclass
class RunSummary:
    ran: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    stages: dict[str, dict] = field(default_factory=dict)
    """Node -> the outcome of each stage this run computed, reused or failed."""


def stage_status(store: Store, cell) -> dict[str, bool]:
    """Which of the cell's stages are already in the store, by their labels."""
    return {stage.label: is_stored(store, stage) for stage in plan.cell_stages(cell)}


DATA_ERRORS = (OSError, ValueError, RuntimeError, EOFError, tarfile.TarError, zipfile.BadZipFile)
"""What a dataset plugin raises for data that is missing or unreadable (torchvision raises
RuntimeError for a broken copy; a truncated archive, tarfile's and gzip's errors)."""


def load_data_first(graph: StageGraph, store: Store, datasets: DatasetCache, file: str) -> None:
    """Before any stage runs: load every dataset that a cell still to run needs, and check
    that the artifacts it would reuse were computed from the same copies. Missing or
    unreadable data, or another copy, is an input error (ConfigError), not a failure of
    every cell."""
    for cell in graph.cells.values():
        try:
            data = datasets.load(cell.dataset)  # kept: a serial run reuses it
        except DATA_ERRORS as e:
            raise ConfigError(
                f"dataset {cell.dataset.name!r} cannot be loaded: {e}",
                file=file,
                key=f"tracks.{cell.track}.datasets",
            ) from None
        cache = StageCache(store, data_copy(data))
        for stage in plan.cell_stages(cell):
            cache.check(stage.stage, stage.key)


def run_benchmark(
    benchmark: Benchmark,
    store: Store,
    device: torch.device,
    data_root: Path | None,
    cache_dir: Path,
    progress: ProgressFactory | None = None,
    executor: Executor | None = None,
    monitor: bool = False,
    threads: int | None = None,
    plan_info: dict | None = None,
) -> RunSummary:
    """Run the cells of ``benchmark`` without an ok record in ``store``. ``executor``
    (``mcbench.run.executors.choose.make_executor``) defaults to a serial one in this
    process, computing on ``device`` with ``threads`` torch threads and reporting training
    epochs to ``progress`` (else to the run book's monitor)."""
    if executor is None:
        spec = RunSpec(str(store.root), str(cache_dir), str(data_root) if data_root else None,
                       str(device), threads)  # fmt: skip
        executor = make_executor(ExecutorOptions(), spec, benchmark, progress=progress)
    # a serial executor computes in this process: the run reads data through its cache
    datasets = getattr(executor, "datasets", None) or DatasetCache(data_root, cache_dir)
    graph = build_graph(benchmark.cells, store)
    if graph.to_compute():
        executor.start()  # workers start while the data is read
    try:
        load_data_first(graph, store, datasets, benchmark.file)
        book = RunBook(graph, Monitor(graph.count_to_compute()) if monitor else None)
        runlog = RunLog(store.root, _plan(benchmark, graph, executor, plan_info or {}))
        summary = RunSummary(reused=list(graph.done_cells))
        for cell_id in graph.done_cells:
            log.info("reused %s [%s]", _label(benchmark, cell_id), cell_id)
        try:
            executor.execute(graph, book)
        finally:
            if book.monitor:
                book.monitor.close()
            _record_failures(graph, book, store, device)
    finally:
        executor.close()
    for cell_id, cell in graph.cells.items():
        outcome = book.outcomes.get(plan.evaluate(cell).node)
        if cell_id in book.failed_cells():
            summary.failed.append(cell_id)
        elif outcome and outcome["ok"] and outcome["computed"]:
            summary.ran.append(cell_id)
        elif outcome and outcome["ok"]:
            summary.reused.append(cell_id)
    summary.stages = book.outcomes
    runlog.finish(
        len(summary.ran), len(summary.reused), len(summary.failed), _timings(book, datasets)
    )
    return summary


def _timings(book: RunBook, datasets: DatasetCache) -> dict:
    """Where the run's time went: reading data here, and each stage's seconds in the
    worker that ran it (a worker's own data reading included)."""
    return {
        "data_load_s": datasets.seconds,
        "stages": {
            node: {
                "seconds": outcome.get("seconds"),
                "computed": outcome.get("computed", False),
                "ok": outcome["ok"],
            }
            for node, outcome in book.outcomes.items()
        },
    }


def _record_failures(graph: StageGraph, book: RunBook, store: Store, device) -> None:
    """A failed record for every cell that needed a stage that failed."""
    for cell_id, outcome in book.failed_cells().items():
        cell = graph.cells[cell_id]
        error = cast(RecordError, dict(outcome["error"]))  # as the worker reported it
        error["message"] = f"{error['message']} (in stage {outcome['stage']})"
        store.save_record(
            failed_record(base_record(cell, torch.device(device)), error, outcome["seconds"])
        )


def _label(benchmark: Benchmark, cell_id: str) -> str:
    return next(c.label() for c in benchmark.cells if c.cell_id == cell_id)


def _plan(benchmark: Benchmark, graph: StageGraph, executor: Executor, info: dict) -> dict:
    return {
        "file": benchmark.file,
        "executor": executor.name,
        "workers": executor.workers,
        **info,
        "cells": {c.cell_id: c.label() for c in benchmark.cells},
        "stages": {
            name: {
                "stage": n.ref.stage,
                "label": n.ref.label,
                "cells": n.cells,
                "stored": n.stored,
            }
            for name, n in graph.nodes.items()
        },
    }
