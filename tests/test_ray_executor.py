"""The Ray executor on a local cluster that declares logical GPUs (one cluster for the
whole test run): the records of a serial run, fractional stages sharing a GPU, a killed
worker retried, and requests no node can satisfy refused before anything runs."""

from dataclasses import replace

import pytest
import torch

from mcbench.errors import ConfigError
from mcbench.run.runner import run_benchmark
from mcbench.run.store import Store
from tests.executor_cases import (
    computed,
    run_with_a_kill,
    scores,
    spec_for,
)

ray = pytest.importorskip("ray")

CPU = torch.device("cpu")


@pytest.fixture(scope="session")
def cluster():
    if not ray.is_initialized():
        ray.init(num_cpus=2, num_gpus=4, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def executor(path, results, cache, device="cpu", **options):
    from mcbench.run.executors.ray_cluster import RayExecutor

    return RayExecutor(replace(spec_for(path, results, cache), device=device), **options)


def test_ray_gives_the_serial_records(cluster, matrix, tmp_path):
    path, bench, cache, reference = matrix
    results = tmp_path / "results"
    ray_executor = executor(path, results, cache, gpus_per_stage=0)
    summary = run_benchmark(bench, Store(results), CPU, None, cache, executor=ray_executor)
    assert scores(results) == reference
    assert len(computed(summary, "endpoint")) == 4
    assert len(summary.failed) == 2 and len(summary.ran) == 3


def test_fractional_stages_share_a_gpu_at_the_same_time(cluster, matrix, tmp_path):
    path, bench, cache, reference = matrix
    results = tmp_path / "results"
    ray_executor = executor(path, results, cache, device="auto", workers_per_gpu=2)
    assert ray_executor.gpus == 0.5
    summary = run_benchmark(bench, Store(results), CPU, None, cache, executor=ray_executor)
    assert scores(results) == reference
    ran = [o for o in summary.stages.values() if o.get("computed")]
    overlapping = [
        (a, b)
        for i, a in enumerate(ran)
        for b in ran[i + 1 :]
        if a["started"] < b["finished"] and b["started"] < a["finished"]
    ]
    assert overlapping, "no two stages ran at once"
    # Ray packs fractional requests on one GPU before it uses the next
    assert any(a["visible_devices"] == b["visible_devices"] for a, b in overlapping)


def test_a_killed_ray_worker_is_retried(cluster, long_endpoints, tmp_path):
    path, bench, cache, reference = long_endpoints
    results = tmp_path / "results"
    key = bench.cells[0].endpoint_key("A")
    summary, killed = run_with_a_kill(
        bench, results, cache, executor(path, results, cache, gpus_per_stage=0), key
    )
    assert len(killed) == 1
    assert not summary.failed and scores(results) == reference


@pytest.mark.parametrize(
    "options, message",
    [
        ({"gpus_per_stage": 5}, "at most 1"),
        ({"gpus_per_stage": 1, "cpus_per_stage": 3}, "no node of the Ray cluster has 3 CPUs"),
    ],
)
def test_a_request_no_node_can_satisfy_is_refused_at_once(cluster, tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        executor(tmp_path / "b.yaml", tmp_path / "r", tmp_path / "c", **options)
