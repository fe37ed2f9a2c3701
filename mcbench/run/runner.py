"""Runs the cells of a benchmark: every cell ends as a record, ok or failed, and a failed
cell never stops the others."""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mcbench.bench.cells import Cell
from mcbench.bench.load import Benchmark
from mcbench.errors import ConfigError
from mcbench.run.record import base_record
from mcbench.run.stages import ProgressFactory, Workspace
from mcbench.run.store import Store
from mcbench.vocabulary import ROLES

log = logging.getLogger("mcbench")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    return device


@dataclass
class RunSummary:
    ran: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def stage_status(store: Store, cell: Cell) -> dict[str, bool]:
    """Which of the cell's stages are already in the store."""
    status = {f"endpoint {r}": store.has_tensors("endpoint", cell.endpoint_key(r)) for r in ROLES}
    if cell.attack_stage == "tamper":
        status.update(
            {f"tamper {r}": store.has_tensors("tamper", cell.tamper_key(r)) for r in ROLES}
        )
    status["repair"] = store.has_tensors("repair", cell.repair_key())
    record = store.load_record(cell.cell_id)
    status["evaluate"] = bool(record and record["status"] == "ok")
    return status


def load_data_first(benchmark: Benchmark, store: Store, workspace: Workspace) -> None:
    """Load every dataset that a cell still to run needs, before any cell runs: missing
    or unreadable data is an input error (ConfigError), not a failure of every cell."""
    for cell in benchmark.cells:
        record = store.load_record(cell.cell_id)
        if record and record["status"] == "ok":
            continue
        try:
            workspace.dataset(cell.dataset)  # memoised: the cells reuse it
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"dataset {cell.dataset.name!r} cannot be loaded: {e}",
                file=benchmark.file,
                key=f"tracks.{cell.track}.datasets",
            ) from None


def run_benchmark(
    benchmark: Benchmark,
    store: Store,
    device: torch.device,
    data_root: Path | None,
    cache_dir: Path,
    progress: ProgressFactory,
    cell_bar=None,
) -> RunSummary:
    workspace = Workspace(store, device, data_root, cache_dir, progress)
    load_data_first(benchmark, store, workspace)
    summary = RunSummary()
    for cell in benchmark.cells:
        existing = store.load_record(cell.cell_id)
        if existing and existing["status"] == "ok":
            log.info("reused %s [%s]", cell.label(), cell.cell_id)
            summary.reused.append(cell.cell_id)
        else:
            log.info("running %s [%s]", cell.label(), cell.cell_id)
            record = base_record(cell, device)
            started = time.perf_counter()
            try:
                record.update(workspace.run_cell(cell), status="ok")
                summary.ran.append(cell.cell_id)
                log.info(
                    "done %s in %.1fs (reused: %s)",
                    cell.label(),
                    time.perf_counter() - started,
                    ", ".join(record["reused"]) or "nothing",
                )
            except Exception as e:  # recorded, and the matrix goes on
                record.update(
                    status="failed",
                    error={
                        "type": type(e).__name__,
                        "message": str(e),
                        "traceback": traceback.format_exc(),
                    },
                )
                summary.failed.append(cell.cell_id)
                log.error("FAILED %s: %s: %s", cell.label(), type(e).__name__, e)
            record["seconds"] = time.perf_counter() - started
            store.save_record(record)
        if cell_bar is not None:
            cell_bar()
    return summary
