"""Which executor a run gets, built here alone: ``auto`` is ``local`` with one worker per
visible GPU when there are several (or when several workers are asked for), ``serial``
otherwise."""

from __future__ import annotations

from dataclasses import dataclass

from mcbench.bench.load import Benchmark
from mcbench.cell.models import ProgressFactory
from mcbench.errors import ConfigError
from mcbench.run.data_cache import DatasetCache
from mcbench.run.execute import RunSpec, StageRunner
from mcbench.run.executors import Executor
from mcbench.run.executors.local import LocalExecutor, local_slots, visible_gpus
from mcbench.run.executors.serial import SerialExecutor

EXECUTORS = ("auto", "serial", "local", "ray")
WORKER_DEVICES = ("auto", "cpu", "cuda")


def choose(name: str, device: str, workers: int | None, workers_per_gpu: int = 1) -> str:
    if name != "auto":
        return name
    gpus = visible_gpus() if device != "cpu" else []
    several = len(gpus) > 1 or workers_per_gpu > 1 or (workers or 1) > 1
    return "local" if several else "serial"


def threads_per_stage(name: str, device: str, workers: int | None, threads: int | None) -> int:
    """The torch threads each stage of such a run computes with on the CPU."""
    import os

    import torch

    if threads:
        return threads
    if name == "local" and not (visible_gpus() if device != "cpu" else []):
        cores = os.cpu_count() or 1
        return max(1, cores // (workers or cores))
    return torch.get_num_threads()


def check_worker_device(device: str, executor: str) -> None:
    if device not in WORKER_DEVICES:
        raise ConfigError(
            f"--device {device}: with --executor {executor} every worker computes on the "
            f"device it is given; expected one of {', '.join(WORKER_DEVICES)} (choose GPUs "
            f"with CUDA_VISIBLE_DEVICES)"
        )


def local_executor(
    spec: RunSpec,
    workers: int | None,
    workers_per_gpu: int,
    threads: int | None,
    retries: int,
) -> LocalExecutor:
    check_worker_device(spec.device, "local")
    gpus = [] if spec.device == "cpu" else visible_gpus()
    if spec.device == "cuda" and not gpus:
        raise ConfigError("--device cuda: CUDA is not available on this machine")
    if workers_per_gpu > 1 and not gpus:
        raise ConfigError(
            f"--workers-per-gpu {workers_per_gpu}: this machine has no GPU; use --workers N "
            f"for CPU workers"
        )
    if workers and gpus:
        raise ConfigError(
            f"--workers {workers}: with GPUs the local executor runs --workers-per-gpu "
            f"workers on each of the {len(gpus)} visible GPUs"
        )
    slots = local_slots(workers, workers_per_gpu, gpus, threads=threads)
    return LocalExecutor(spec, slots, retries)


@dataclass(frozen=True)
class ExecutorOptions:
    """How the stages of a run are spread over processes, GPUs and machines (the command
    line's executor options)."""

    executor: str = "serial"
    workers: int | None = None
    workers_per_gpu: int = 1
    threads_per_stage: int | None = None
    retries: int = 2
    address: str | None = None
    gpus_per_stage: float | None = None
    cpus_per_stage: float | None = None


def make_executor(
    options: ExecutorOptions,
    spec: RunSpec,
    benchmark: Benchmark,
    datasets: DatasetCache | None = None,
    progress: ProgressFactory | None = None,
) -> Executor:
    """The executor ``options`` name (``auto`` resolved for ``spec.device``). Serial and
    local workers compute the cells of ``benchmark`` as parsed here; Ray's tasks, which may
    run on other machines, read it from ``spec.source``. A serial executor reads data
    through ``datasets`` when given (the run's own cache) and reports its training epochs to
    ``progress`` (None: to the run book's monitor)."""
    name = choose(options.executor, spec.device, options.workers, options.workers_per_gpu)
    if name == "serial":
        runner = StageRunner(spec, benchmark, progress=progress)
        if datasets is not None:
            runner.datasets = datasets
        return SerialExecutor(runner)
    if name == "local":
        executor = local_executor(
            spec, options.workers, options.workers_per_gpu, options.threads_per_stage,
            options.retries,
        )  # fmt: skip
        executor.benchmark = benchmark
        return executor
    if name != "ray":
        raise ConfigError(f"--executor {name}: expected one of {', '.join(EXECUTORS)}")
    from mcbench.run.executors.ray_cluster import RayExecutor

    check_worker_device(spec.device, "ray")
    return RayExecutor(
        spec,
        address=options.address,
        workers_per_gpu=options.workers_per_gpu,
        gpus_per_stage=options.gpus_per_stage,
        cpus_per_stage=options.cpus_per_stage,
        retries=options.retries,
    )
