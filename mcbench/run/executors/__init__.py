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

    def execute(self, graph: StageGraph, book: RunBook) -> None:
        """Run every stage of ``graph`` still to compute, each after its inputs, reporting
        to ``book``; a failed stage fails only the stages that read it."""
        ...
