"""What the executor tests share: a small matrix with its serial records, a cell with
endpoints long enough to be killed mid-training, and the helpers that compare records
and kill workers."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from mcbench.bench.load import load_benchmark
from mcbench.run.execute import BenchmarkSource, RunSpec
from mcbench.run.locks import lock_path, read_lock
from mcbench.run.runner import run_benchmark
from mcbench.run.store import Store
from tests.conftest import TINY

CPU = torch.device("cpu")
SCORES = ("path", "endpoints", "reported_t", "sizes", "untampered", "injection", "status")

# Two tracks: a poisoning attack (two cells sharing their endpoints) and a weight attack
# (tamper and untampered stages): five cells, two of which fail (budget 61).
MATRIX = (
    TINY.replace("budgets: [40]", "budgets: [40, 61]")
    + """\
  injection-repair:
    datasets: [{name: synthetic, num_classes: 4, image_size: 16, train_per_class: 64, test_per_class: 40}]
    architectures: [{name: convnet, widths: [8, 16]}]
    attacks: [{name: sba, targets: 2}]
    repairs: [{name: path, epochs: 1, batch_size: 32}]
    connections: [linear]
    budgets: [40]
    seeds: [0]
    metrics: [clean_accuracy]
    split: {defender_pool: 60}
    train: {epochs: 2, batch_size: 32, lr: 0.05}
    evaluate: {grid: 2}
"""
)


def scores(results: Path) -> dict:
    """Each record's numbers (what must not depend on the executor)."""
    found = {}
    for path in (results / "records").glob("*.json"):
        record = json.loads(path.read_text())
        kept = {k: record.get(k) for k in SCORES}
        if record.get("tamper"):
            kept["tamper"] = {
                role: {k: v for k, v in report.items() if "seconds" not in k}
                for role, report in record["tamper"].items()
            }
        if record["status"] == "failed":
            kept["error"] = record["error"]["message"]
        found[path.stem] = kept
    return found


def spec_for(path: Path, results: Path, cache: Path) -> RunSpec:
    return RunSpec(
        str(results), str(cache), device="cpu", threads=1, source=BenchmarkSource(str(path))
    )


@pytest.fixture(scope="session")
def matrix(tmp_path_factory, registry):
    """The matrix and its records from a serial run with one thread per stage."""
    root = tmp_path_factory.mktemp("matrix")
    path = root / "bench.yaml"
    path.write_text(MATRIX)
    bench = load_benchmark(path, registry)
    serial = root / "serial"
    summary = run_benchmark(bench, Store(serial), CPU, None, root / "cache", threads=1)
    assert len(summary.failed) == 2 and len(summary.ran) == 3
    return path, bench, root / "cache", scores(serial)


def computed(summary, stage: str) -> list[str]:
    return [
        name
        for name, outcome in summary.stages.items()
        if name.startswith(f"{stage}/") and outcome["ok"] and outcome["computed"]
    ]


def kill_when_training(results: Path, key: str, stop: threading.Event) -> list[int]:
    """SIGKILL the process that holds endpoint ``key``'s lock once it has stored an epoch
    checkpoint; returns the pids it killed."""
    killed = []
    partial = results / "artifacts" / "endpoint" / f"{key}.partial.pt"
    lock = lock_path(results, "endpoint", key)
    while not stop.is_set() and not killed:
        info = read_lock(lock) if partial.exists() else None
        if info and info.get("pid"):
            os.kill(info["pid"], signal.SIGKILL)
            killed.append(info["pid"])
        time.sleep(0.01)
    return killed


def run_with_a_kill(bench, results, cache, executor, key):
    stop, killed = threading.Event(), []
    watcher = threading.Thread(
        target=lambda: killed.extend(kill_when_training(results, key, stop)), daemon=True
    )
    watcher.start()
    try:
        summary = run_benchmark(bench, Store(results), CPU, None, cache, executor=executor)
    finally:
        stop.set()
        watcher.join()
    return summary, killed


@pytest.fixture(scope="session")
def long_endpoints(tmp_path_factory, registry):
    """One cell whose endpoints train long enough to be killed after a checkpoint."""
    root = tmp_path_factory.mktemp("long")
    path = root / "bench.yaml"
    path.write_text(
        TINY.replace("connections: [linear, bezier]", "connections: [linear]").replace(
            "train: {epochs: 2,", "train: {epochs: 6,"
        )
    )
    bench = load_benchmark(path, registry)
    reference = root / "reference"
    run_benchmark(bench, Store(reference), CPU, None, root / "cache", threads=1)
    return path, bench, root / "cache", scores(reference)
