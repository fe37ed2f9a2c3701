"""Every stage in this process, one after another, in the file's order."""

from __future__ import annotations

from mcbench.run.book import RunBook
from mcbench.run.data_cache import DatasetCache
from mcbench.run.execute import StageRunner
from mcbench.run.graph import StageGraph


class SerialExecutor:
    name = "serial"
    workers = 1

    def __init__(self, runner: StageRunner):
        self.runner = runner

    @property
    def datasets(self) -> DatasetCache:
        """The data its stages read: a run in this process loads its data through it."""
        return self.runner.datasets

    def start(self) -> None:
        """Nothing to start: it computes in this process."""

    def close(self) -> None:
        """Nothing to stop."""

    def execute(self, graph: StageGraph, book: RunBook) -> None:
        if self.runner.progress is None:
            self.runner.progress = book.progress(self.runner.worker)
        lost: set[str] = set()
        for node in graph.to_compute():
            if node.name in lost:
                continue
            job = book.job(node)
            book.started(job, self.runner.worker, str(self.runner.device))
            lost.update(book.finished(self.runner.run(job)))
