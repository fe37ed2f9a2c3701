"""What a run knows about its stages while they run, whatever the executor: which are
done, which failed and why, which cannot run because an input failed; and the log lines
that say which worker ran which stage, on which device, for how long."""

from __future__ import annotations

import logging

from mcbench.cell import plan
from mcbench.run.execute import Job
from mcbench.run.graph import Node, StageGraph
from mcbench.run.monitor import Monitor

log = logging.getLogger("mcbench")


class RunBook:
    def __init__(self, graph: StageGraph, monitor: Monitor | None = None):
        self.graph = graph
        self.monitor = monitor
        self.outcomes: dict[str, dict] = {}
        self.failures: dict[str, dict] = {}
        """Node -> the outcome of the stage that raised (or whose worker died)."""
        self.skipped: dict[str, str] = {}
        """Node -> the failed node that it needed."""

    def job(self, node: Node) -> Job:
        reused = self.graph.reused(node.cell_id) if node.ref.stage == plan.EVALUATE else []
        return Job(node.ref, node.cell_id, tuple(reused))

    def started(self, job: Job, worker: str, device: str) -> None:
        if self.monitor:
            self.monitor.started(worker, device, self._describe(job.ref.node))

    def epoch(self, worker: str, label: str, epoch: int, total: int, loss: float) -> None:
        if self.monitor:
            self.monitor.epoch(worker, label, epoch, total, loss)

    def progress(self, worker: str):
        """A ProgressFactory that shows a stage's epochs as ``worker``'s."""
        return lambda label, total: (
            lambda epoch, loss: self.epoch(worker, label, epoch, total, loss)
        )

    def finished(self, outcome: dict) -> list[str]:
        """Book a stage's outcome; returns the nodes that will not run because of it."""
        name = outcome["node"]
        self.outcomes[name] = outcome
        if self.monitor:
            self.monitor.finished(self.graph.nodes[name].ref.stage, outcome.get("worker"))
        if outcome.get("skipped"):  # an executor that runs the stage to learn its input failed
            return []
        where = f"{outcome.get('worker')} ({outcome.get('device')}, {outcome.get('host')})"
        if outcome["ok"]:
            verb = "ran" if outcome["computed"] else "reused (computed by another process)"
            log.info("%s %s %s in %.1fs", where, verb, self._describe(name), outcome["seconds"])
            return []
        self.failures[name] = outcome
        error = outcome["error"]
        log.error(
            "%s FAILED %s: %s: %s", where, self._describe(name), error["type"], error["message"]
        )
        lost = [d for d in self.graph.downstream(name) if d not in self.skipped]
        for d in lost:
            self.skipped[d] = name
        return lost

    def _describe(self, name: str) -> str:
        node = self.graph.nodes[name]
        cell = self.graph.cells[node.cell_id]
        return f"{node.ref.label} [{node.ref.key[:12]}] of {cell.label()}"

    def failed_cells(self) -> dict[str, dict]:
        """Cell id -> the outcome of the first failed stage it needed."""
        failed: dict[str, dict] = {}
        for name, outcome in self.failures.items():
            for cell_id in self.graph.nodes[name].cells:
                failed.setdefault(cell_id, {**outcome, "stage": self.graph.nodes[name].ref.label})
        return failed
