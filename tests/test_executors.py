"""The executors: worker processes give the same records as a serial run, a stage shared
by many cells runs once, failures stay with the cells that need them, and a worker killed
in the middle of a stage is replaced and the stage resumed."""

import json

import pytest

from mcbench.cell import plan
from mcbench.errors import ConfigError
from mcbench.run.execute import BenchmarkSource, RunSpec
from mcbench.run.executors.local import LocalExecutor, local_slots
from mcbench.run.runner import run_benchmark
from mcbench.run.store import Store
from tests.executor_cases import (
    CPU,
    computed,
    run_with_a_kill,
    scores,
    spec_for,
)


def test_the_graph_has_each_shared_stage_once(matrix):
    from mcbench.run.graph import build_graph

    path, bench, cache, _ = matrix
    graph = build_graph(list(bench.cells), Store(path.parent / "empty"))
    kinds = graph.kinds()
    # backdoor: 4 cells (2 connections x 2 budgets) share 2 endpoints; injection: 2 more
    assert kinds["endpoint"]["stages"] == 4 and kinds["endpoint"]["max_cells_per_stage"] == 4
    assert kinds["tamper"]["stages"] == 2
    assert kinds["repair"]["stages"] == 5 and kinds["evaluate"]["stages"] == 5
    every = [s.node for c in bench.cells for s in plan.cell_stages(c)]
    assert len(graph.nodes) == len(set(every)) < len(every)


def test_local_workers_give_the_serial_records_and_share_endpoints(matrix, tmp_path):
    path, bench, cache, reference = matrix
    results = tmp_path / "results"
    executor = LocalExecutor(spec_for(path, results, cache), local_slots(2, threads=1, gpus=[]))
    summary = run_benchmark(bench, Store(results), CPU, None, cache, executor=executor)
    assert scores(results) == reference
    assert len(computed(summary, "endpoint")) == 4  # each shared endpoint trained once
    workers = {o["worker"] for o in summary.stages.values() if o.get("computed")}
    assert workers == {"cpu0", "cpu1"}
    failed = [o for o in summary.stages.values() if not o["ok"]]
    assert {o["label"] for o in failed} == {"repair"} and len(summary.failed) == 2


def test_each_gpu_worker_sees_its_own_device(matrix, tmp_path):
    """Logical GPU names on a machine without CUDA: the workers are pinned to them (and
    compute on the CPU, as torch sees no GPU)."""
    path, bench, cache, reference = matrix
    results = tmp_path / "results"
    slots = local_slots(gpus=["0", "1"], workers_per_gpu=1, threads=1)
    assert [s.visible_devices for s in slots] == ["0", "1"] and not slots[0].memory_fraction
    executor = LocalExecutor(spec_for(path, results, cache), slots)
    summary = run_benchmark(bench, Store(results), CPU, None, cache, executor=executor)
    seen = {o["worker"]: o["visible_devices"] for o in summary.stages.values() if "worker" in o}
    assert seen == {"gpu0": "0", "gpu1": "1"}
    assert scores(results) == reference
    packed = local_slots(gpus=["3"], workers_per_gpu=4, threads=1)
    assert [s.visible_devices for s in packed] == ["3"] * 4
    assert packed[0].memory_fraction == pytest.approx(0.95 / 4)


def test_a_killed_worker_is_replaced_and_its_stage_resumed(long_endpoints, tmp_path, caplog):
    path, bench, cache, reference = long_endpoints
    results = tmp_path / "results"
    key = bench.cells[0].endpoint_key("A")
    executor = LocalExecutor(spec_for(path, results, cache), local_slots(2, threads=1, gpus=[]))
    with caplog.at_level("INFO", logger="mcbench"):
        summary, killed = run_with_a_kill(bench, results, cache, executor, key)
    assert len(killed) == 1
    assert any("died" in r.message and "retry 1 of 2" in r.message for r in caplog.records)
    assert not summary.failed and scores(results) == reference
    assert not list((results / "locks").rglob("*.lock"))  # the dead worker's lock was broken


def test_a_worker_that_keeps_dying_fails_its_cells_only(long_endpoints, tmp_path):
    path, bench, cache, _ = long_endpoints
    results = tmp_path / "results"
    key = bench.cells[0].endpoint_key("A")
    executor = LocalExecutor(
        spec_for(path, results, cache), local_slots(2, threads=1, gpus=[]), retries=0
    )
    summary, killed = run_with_a_kill(bench, results, cache, executor, key)
    assert len(killed) == 1 and summary.failed == [bench.cells[0].cell_id]
    record = json.loads((results / "records" / f"{bench.cells[0].cell_id}.json").read_text())
    assert record["status"] == "failed" and record["error"]["type"] == "WorkerDied"


def test_worker_devices_and_counts_are_checked(tmp_path):
    from mcbench.run.executors.choose import local_executor

    spec = RunSpec(str(tmp_path), str(tmp_path), device="cpu", source=BenchmarkSource("x"))
    with pytest.raises(ConfigError, match="no GPU"):
        local_executor(spec, None, 2, None, 2)
    with pytest.raises(ConfigError, match="expected one of auto, cpu, cuda"):
        local_executor(RunSpec(str(tmp_path), str(tmp_path), device="cuda:1",
                               source=BenchmarkSource("x")), None, 1, None, 2)  # fmt: skip
    assert [s.threads for s in local_slots(4, gpus=[], cores=8)] == [2] * 4
