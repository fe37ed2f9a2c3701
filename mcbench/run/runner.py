"""Runs the cells of a benchmark: every cell ends as a record, ok or failed, and a failed
cell never stops the others. Input errors (data that cannot be read, artifacts of another
copy of the data) stop the run before any cell computes."""

from __future__ import annotations

import logging
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mcbench.bench.cells import Cell
from mcbench.bench.load import Benchmark
from mcbench.errors import ConfigError
from mcbench.run import plan
from mcbench.run.cache import DataCopyMismatch, StageCache, data_copy
from mcbench.run.cell import run_cell
from mcbench.run.datasets import DatasetCache
from mcbench.run.record import base_record, failed_record, finished_record
from mcbench.run.stages import ProgressFactory
from mcbench.run.store import Store

log = logging.getLogger("mcbench")


@dataclass
class RunSummary:
    ran: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def stage_status(store: Store, cell: Cell) -> dict[str, bool]:
    """Which of the cell's stages are already in the store, by their labels."""
    status = {}
    for stage in plan.cell_stages(cell):
        if stage.stage == plan.EVALUATE:
            record = store.load_record(cell.cell_id)
            status[stage.label] = bool(record and record["status"] == "ok")
        elif stage.stage == plan.ENDPOINT_EVAL:
            status[stage.label] = store.has_json(stage.stage, stage.key)
        else:
            status[stage.label] = store.has_tensors(stage.stage, stage.key)
    return status


def to_run(benchmark: Benchmark, store: Store) -> list[Cell]:
    """The cells without an ok record."""
    done = [store.load_record(c.cell_id) for c in benchmark.cells]
    return [c for c, r in zip(benchmark.cells, done) if not (r and r["status"] == "ok")]


DATA_ERRORS = (OSError, ValueError, RuntimeError, EOFError, tarfile.TarError, zipfile.BadZipFile)
"""What a dataset plugin raises for data that is missing or unreadable (torchvision raises
RuntimeError for a broken copy; a truncated archive, tarfile's and gzip's errors)."""


def load_data_first(benchmark: Benchmark, store: Store, datasets: DatasetCache) -> None:
    """Before any cell runs: load every dataset that a cell still to run needs, and check
    that the artifacts it would reuse were computed from the same copies. Missing or
    unreadable data, or another copy, is an input error (ConfigError), not a failure of
    every cell."""
    for cell in to_run(benchmark, store):
        try:
            data = datasets.load(cell.dataset)  # kept: the cells reuse it
        except DATA_ERRORS as e:
            raise ConfigError(
                f"dataset {cell.dataset.name!r} cannot be loaded: {e}",
                file=benchmark.file,
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
    progress: ProgressFactory,
    cell_bar=None,
) -> RunSummary:
    datasets = DatasetCache(data_root, cache_dir)
    load_data_first(benchmark, store, datasets)
    summary = RunSummary()
    for cell in benchmark.cells:
        existing = store.load_record(cell.cell_id)
        if existing and existing["status"] == "ok":
            log.info("reused %s [%s]", cell.label(), cell.cell_id)
            summary.reused.append(cell.cell_id)
        else:
            log.info("running %s [%s]", cell.label(), cell.cell_id)
            base = base_record(cell, device)
            started = time.perf_counter()
            try:
                data = datasets.load(cell.dataset)
                results = run_cell(cell, data, store, device, progress)
                record = finished_record(base, results, time.perf_counter() - started)
                summary.ran.append(cell.cell_id)
                log.info(
                    "done %s in %.1fs (reused: %s)",
                    cell.label(),
                    record["seconds"],
                    ", ".join(record["reused"]) or "nothing",
                )
            except DataCopyMismatch:
                raise
            except Exception as e:  # recorded, and the matrix goes on
                record = failed_record(base, e, time.perf_counter() - started)
                summary.failed.append(cell.cell_id)
                log.error("FAILED %s: %s: %s", cell.label(), type(e).__name__, e)
            store.save_record(record)
        if cell_bar is not None:
            cell_bar()
    return summary
