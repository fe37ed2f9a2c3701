"""Runs one stage in whatever process an executor chose: the worker side of every executor.

A job names its stage and the cell that computes it; a worker loads the benchmark, the
datasets and the stage's inputs itself (from the file and the results store), so jobs
carry keys, never tensors. A stage is computed under its lock (``mcbench.run.locks``): a
stage another process is computing is waited for and then reused."""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

import torch

from mcbench.bench.cells import Cell
from mcbench.bench.load import Benchmark
from mcbench.cell import plan
from mcbench.cell.models import ProgressFactory, quiet
from mcbench.cell.plan import StageRef
from mcbench.cell.stages import STAGE_DEFS
from mcbench.cell.stages.call import Artifact, StageCall
from mcbench.kinds.data import Dataset
from mcbench.results.records import CellResults
from mcbench.run.cache import StageCache, data_copy
from mcbench.run.data_cache import DatasetCache
from mcbench.run.device import resolve_device
from mcbench.run.graph import is_stored
from mcbench.run.locks import StageLock, acquire_or_wait
from mcbench.run.record import base_record, finished_record
from mcbench.run.store import Store

log = logging.getLogger("mcbench")


@dataclass(frozen=True)
class BenchmarkSource:
    """Where a worker reads the benchmark from: the file (a path every worker sees), the
    profile and tracks chosen, and the plugins left out."""

    file: str
    profile: str | None = None
    tracks: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()
    compute: tuple[tuple[str, object], ...] = ()
    """The command line's compute settings (--precision, --compile), as (key, value)."""
    device_type: str | None = None
    """The device type ``precision: auto`` was resolved for where the run was planned."""

    def load(self) -> Benchmark:
        from mcbench.bench.load import load_benchmark
        from mcbench.registry import load_registry

        registry = load_registry(blocked=self.blocked)
        return load_benchmark(
            self.file,
            registry,
            profile=self.profile,
            tracks=self.tracks,
            compute=dict(self.compute),
            device_type=self.device_type,
        )


@dataclass(frozen=True)
class RunSpec:
    """What every worker of a run needs; small and picklable."""

    results: str
    cache_dir: str
    data_root: str | None = None
    device: str = "auto"
    threads: int | None = None
    """torch's intra-op threads per stage; None leaves torch's default."""
    source: BenchmarkSource | None = None


@dataclass(frozen=True)
class Job:
    ref: StageRef
    cell_id: str
    """The cell that computes the stage (any cell that has it computes the same result)."""
    reused: tuple[str, ...] = ()
    """For an evaluation: the cell's stages it did not compute itself (for its record)."""


class StageRunner:
    """Runs jobs in this process: the benchmark and its datasets are loaded once (the
    benchmark from its file unless it is given). ``progress`` reports training epochs (None:
    nothing, unless the executor hands it the run book's)."""

    def __init__(
        self,
        spec: RunSpec,
        benchmark: Benchmark | None = None,
        worker: str = "main",
        progress: ProgressFactory | None = None,
    ):
        if spec.threads:
            torch.set_num_threads(spec.threads)
        self.spec, self.worker, self.progress = spec, worker, progress
        self.store = Store(spec.results)
        self.datasets = DatasetCache(
            Path(spec.data_root) if spec.data_root else None, Path(spec.cache_dir)
        )
        self.device = resolve_device(spec.device)
        self._benchmark = benchmark
        self._cells: dict[str, Cell] | None = None

    def load(self) -> None:
        """Read the benchmark (from its file unless it was given) and index its cells."""
        if self._cells is None:
            if self._benchmark is None:
                assert self.spec.source is not None, "no benchmark given, and no file to read"
                self._benchmark = self.spec.source.load()
            self._cells = {c.cell_id: c for c in self._benchmark.cells}

    def cell(self, cell_id: str) -> Cell:
        self.load()
        cells = self._cells
        assert cells is not None
        if cell_id not in cells:
            where = self.spec.source.file if self.spec.source else "the benchmark given"
            raise RuntimeError(
                f"cell {cell_id} is not in {where} as this worker reads it: "
                f"the file changed while the run was going on"
            )
        return cells[cell_id]

    def run(self, job: Job) -> dict:
        """The job's outcome: never raises for a stage that fails (the outcome says why);
        BaseException (a kill, Ctrl-C) goes through."""
        ref = job.ref
        outcome = {
            "node": ref.node,
            "label": ref.label,
            "cell_id": job.cell_id,
            "worker": self.worker,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "device": str(self.device),
            "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "started": time.time(),
        }
        started = time.perf_counter()
        try:
            cell = self.cell(job.cell_id)
            data = self.datasets.load(cell.dataset)
            lock = StageLock(
                self.store.root, ref.stage, ref.key, label=ref.label, worker=self.worker
            )
            waited: list[dict | None] = []
            computes = acquire_or_wait(
                lock, lambda: is_stored(self.store, ref), on_wait=waited.append
            )
            if computes:
                try:
                    compute(job, cell, data, self.store, self.device, self.progress or quiet)
                finally:
                    lock.release()
            outcome.update(ok=True, computed=computes, waited=bool(waited))
        except Exception as e:
            outcome.update(ok=False, computed=False, error=error_of(e))
        outcome["seconds"] = time.perf_counter() - started
        outcome["finished"] = time.time()
        return outcome


def error_of(e: BaseException) -> dict:
    return {
        "type": type(e).__name__,
        "message": str(e),
        "traceback": "".join(traceback.format_exception(e)),
    }


def compute(
    job: Job,
    cell: Cell,
    data: Dataset,
    store: Store,
    device: torch.device,
    progress: ProgressFactory,
) -> None:
    """Compute the job's stage and store it; its inputs must be stored already."""
    compute_stage(job.ref, cell, data, store, device, progress, job.reused)


def compute_stage(
    ref: StageRef,
    cell: Cell,
    data: Dataset,
    store: Store,
    device: torch.device,
    progress: ProgressFactory = quiet,
    reused: tuple[str, ...] = (),
) -> Artifact:
    """Stage ``ref`` of ``cell`` from the store, or computed from its stored inputs and
    stored (MissingInput if an input is not stored). ``reused``, for an evaluation: the
    labels of the cell's stages it did not compute itself."""
    definition = STAGE_DEFS[ref.stage]
    copy = data_copy(data)
    cache = StageCache(store, copy)
    if definition.stores == "record":
        found = store.load_record(ref.key)
        if found and found.get("status") == "ok":
            return Artifact(None, found, True)
    elif is_stored(store, ref):
        return cache.load_stage(ref)
    inputs = StageCache(store, copy, compute=False).load_inputs(plan.input_refs(cell, ref.id))
    call = StageCall(cell, data, device, ref.id, progress)
    if definition.stores == "tensors":
        return cache.tensors(
            ref.stage,
            ref.key,
            ref.inputs,
            lambda checkpoint: definition.compute(replace(call, checkpoint=checkpoint), inputs),
        )
    if definition.stores == "json":
        return cache.json(ref.stage, ref.key, ref.inputs, lambda: definition.compute(call, inputs))
    base = base_record(cell, device)
    results = {**definition.compute(call, inputs), "reused": list(reused)}
    seconds = own_seconds(cell, results["timings"], reused)
    # the evaluate stage's compute returns what the cell adds to its record
    record = finished_record(base, cast(CellResults, results), seconds)
    store.save_record(record)
    return Artifact(None, record, False)


def own_seconds(cell: Cell, timings: dict[str, float], reused: tuple[str, ...]) -> float:
    """The compute seconds a cell's record counts as its own: its evaluation's, and those
    of its reusable stages that it computed itself."""
    return timings["evaluate_s"] + sum(
        timings.get(ref.id.timing_key, 0.0)
        for ref in plan.cell_stages(cell)
        if ref.definition.reusable and ref.label not in reused
    )
