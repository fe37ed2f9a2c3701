"""Executors run a graph of stages: ``serial`` in this process, ``local`` in worker
processes on this machine (one per GPU, or several sharing the cores), ``ray`` as tasks on
a Ray cluster. Each calls ``RunBook.started``/``finished`` for the stages it runs; every
one is built by ``mcbench.run.executors.choose.make_executor``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mcbench.run.book import RunBook
    from mcbench.run.graph import StageGraph


class Executor(Protocol):
    name: str
    """How run logs and records name it: serial, local or ray."""
    workers: int
    """The stages it runs at once."""

    def start(self) -> None:
        """Start what its stages will run on (worker processes), so that it starts while
        the run sets itself up; ``execute`` starts it too if it was not."""
        ...

    def execute(self, graph: StageGraph, book: RunBook) -> None:
        """Run every stage of ``graph`` still to compute, each after its inputs, reporting
        to ``book``; a failed stage fails only the stages that read it."""
        ...

    def close(self) -> None:
        """Stop what ``start`` started (also after a run that failed before executing)."""
        ...
