"""Stages as Ray tasks (``pip install "mcbench[ray]"``): each asks for its share of a GPU
(fractional for small stages) and CPUs, and receives the outcomes of the stages it reads
as task arguments, so Ray orders them. Tasks carry keys, never tensors: every node reads
the benchmark file, the datasets and the results store from a filesystem they all see.

A stage whose worker dies (killed, out of memory, node lost) is retried by Ray up to
``retries`` times and resumes from its last epoch checkpoint in the store; a stage that
raises is not retried (its outcome says why). A request no node can satisfy is refused
before anything is submitted: Ray would otherwise leave it pending for ever."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import replace
from typing import Any

from mcbench.errors import ConfigError
from mcbench.run.book import RunBook
from mcbench.run.execute import Job, RunSpec, StageRunner
from mcbench.run.graph import Node, StageGraph

log = logging.getLogger("mcbench")

_RUNNERS: dict[RunSpec, StageRunner] = {}
"""One runner per worker process and run: the benchmark and datasets loaded once."""


def ray_stage(
    spec: RunSpec, job: Job, memory_fraction: float | None, events, *inputs: dict
) -> dict:
    """The body of every Ray task: run ``job`` unless a stage it reads failed, telling
    ``events`` (a Ray queue) when it starts and at every epoch."""
    failed = [i["node"] for i in inputs if not i["ok"]]
    if failed:
        return {"node": job.ref.node, "ok": False, "skipped": True, "needs": failed}
    worker = f"ray-{socket.gethostname()}-{os.getpid()}"
    if spec not in _RUNNERS:
        import torch

        if memory_fraction and torch.cuda.is_available():
            torch.cuda.set_per_process_memory_fraction(memory_fraction)
        _RUNNERS[spec] = StageRunner(spec, worker=worker)
    runner = _RUNNERS[spec]

    def send(event: tuple) -> None:
        # Not Queue.put_nowait: it waits for the queue's actor, and Ray lends the CPU of a
        # waiting task to another one, so more stages would run at once than asked for.
        events.actor.put_nowait.remote(event)

    def progress(description: str, total: int):
        def on_epoch(epoch: int, loss: float) -> None:
            send(("epoch", worker, description, epoch, total, float(loss)))

        return on_epoch

    runner.progress = progress
    send(("started", worker, str(runner.device), job.ref.node))
    return runner.run(job)


def _ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(
            '--executor ray needs Ray: pip install "mcbench[ray]"'
        ) from None  # fmt: skip
    return ray


class RayExecutor:
    name = "ray"

    def __init__(
        self,
        spec: RunSpec,
        address: str | None = None,
        workers_per_gpu: int = 1,
        gpus_per_stage: float | None = None,
        cpus_per_stage: float | None = None,
        retries: int = 2,
    ):
        self.ray = _ray()
        self.spec, self.address, self.retries = spec, address, retries
        if not self.ray.is_initialized():
            self.ray.init(address=address, include_dashboard=False, log_to_driver=False)
        nodes = [n["Resources"] for n in self.ray.nodes() if n.get("Alive")]
        self.largest = {r: max((n.get(r, 0.0) for n in nodes), default=0.0) for r in ("GPU", "CPU")}
        total_gpus = sum(n.get("GPU", 0.0) for n in nodes)
        if gpus_per_stage is None:
            gpus_per_stage = 1 / workers_per_gpu if total_gpus and spec.device != "cpu" else 0.0
        self.gpus, self.cpus = gpus_per_stage, 1.0 if cpus_per_stage is None else cpus_per_stage
        self._check_feasible()
        total_cpus = sum(n.get("CPU", 0.0) for n in nodes)
        slots = [total_cpus / self.cpus if self.cpus else float("inf")]
        if self.gpus:
            slots.append(total_gpus / self.gpus)
        self.workers = max(1, int(min(slots)))
        threads = spec.threads or max(1, int(self.cpus))
        self.spec = replace(spec, threads=threads)

    def _check_feasible(self) -> None:
        if self.gpus > 1:
            raise ConfigError(
                f"--gpus-per-stage {self.gpus:g}: a stage computes on one GPU; ask for at most 1"
            )
        for resource, amount, option in (
            ("GPU", self.gpus, "--gpus-per-stage"),
            ("CPU", self.cpus, "--cpus-per-stage"),
        ):
            if amount > self.largest[resource]:
                raise ConfigError(
                    f"{option} {amount:g}: no node of the Ray cluster has {amount:g} "
                    f"{resource}s (the largest has {self.largest[resource]:g}); every stage "
                    f"would wait for ever"
                )

    def start(self) -> None:
        """Nothing more to start: the cluster was joined when the executor was made, and
        Ray starts its workers as tasks arrive."""

    def close(self) -> None:
        """Nothing to stop: the cluster outlives the run (its start-up is paid once)."""

    def execute(self, graph: StageGraph, book: RunBook) -> None:
        ray = self.ray
        task = ray.remote(ray_stage).options(
            num_cpus=self.cpus,
            num_gpus=self.gpus,
            max_retries=self.retries,
            retry_exceptions=False,
        )
        fraction = 0.95 * self.gpus if 0 < self.gpus < 1 else None
        from ray.util.queue import Queue

        events = Queue(actor_options={"num_cpus": 0})
        refs: dict[str, Any] = {}  # node name -> its task's ObjectRef
        pending: dict[Any, Node] = {}  # ObjectRef -> its node
        for node in graph.to_compute():
            deps = [refs[name] for name in graph.needs(node)]
            refs[node.name] = task.remote(self.spec, book.job(node), fraction, events, *deps)
            pending[refs[node.name]] = node
        log.info(
            "submitted %d stages to Ray (%g GPU, %g CPU each; %d at a time)",
            len(pending), self.gpus, self.cpus, self.workers,
        )  # fmt: skip
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                self._show(events, graph, book)
                for ref in ready:
                    node = pending.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        outcome = {
                            "node": node.name, "label": node.ref.label, "cell_id": node.cell_id,
                            "worker": "ray", "device": None, "host": None, "ok": False,
                            "computed": False, "seconds": 0.0,
                            "error": {
                                "type": type(e).__name__,
                                "message": f"the Ray task failed after {self.retries} retries: "
                                f"{str(e).splitlines()[0] if str(e) else ''}",
                                "traceback": str(e),
                            },
                        }  # fmt: skip
                    book.finished(outcome)
        finally:
            for ref in pending:
                ray.cancel(ref)
            events.shutdown()

    @staticmethod
    def _show(events, graph: StageGraph, book: RunBook) -> None:
        """What the tasks said since the last look: stages started, epochs done."""
        for event in events.get_nowait_batch(events.qsize()):
            if event[0] == "started":
                _, worker, device, name = event
                book.started(book.job(graph.nodes[name]), worker, device)
            else:
                book.epoch(*event[1:])
