"""A benchmark's cells as one graph of stages: a stage shared by many cells is one node,
computed once, and its edges are the stages whose results it reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from mcbench.bench.cells import Cell
from mcbench.cell import plan
from mcbench.cell.plan import StageRef
from mcbench.cell.stages import STAGE_DEFS
from mcbench.run.store import Store

KIND_ORDER = tuple(STAGE_DEFS)


def is_stored(store: Store, ref: StageRef) -> bool:
    """Whether the stage's result is in the store (for the evaluation: an ok record)."""
    stores = ref.definition.stores
    if stores == "record":
        record = store.load_record(ref.key)
        return bool(record and record.get("status") == "ok")
    if stores == "json":
        return store.has_json(ref.stage, ref.key)
    return store.has_tensors(ref.stage, ref.key)


@dataclass
class Node:
    ref: StageRef
    cell_id: str
    """The cell that computes it: the first, in the file's order, that needs it."""
    cells: list[str] = field(default_factory=list)
    """Every cell to run that needs it."""
    stored: bool = False
    """Its result was in the store when the graph was built."""

    @property
    def name(self) -> str:
        return self.ref.node


@dataclass
class StageGraph:
    nodes: dict[str, Node]
    """Every stage of the cells to run, each after the stages it reads."""
    cells: dict[str, Cell]
    """The cells to run, by id, in the file's order."""
    done_cells: list[str]
    """The cells whose ok record was already stored."""

    def to_compute(self) -> list[Node]:
        return [n for n in self.nodes.values() if not n.stored]

    def needs(self, node: Node) -> list[str]:
        """The nodes that must be stored before ``node`` runs."""
        return [i for i in node.ref.inputs if i in self.nodes and not self.nodes[i].stored]

    def downstream(self, name: str) -> list[str]:
        """Every node that reads ``name``, directly or through other nodes."""
        found: list[str] = []
        frontier = {name}
        for node in self.nodes.values():  # in dependency order, so one pass suffices
            if frontier & set(node.ref.inputs):
                frontier.add(node.name)
                found.append(node.name)
        return found

    def reused(self, cell_id: str) -> list[str]:
        """The labels of the cell's endpoint, tamper and repair stages that it does not
        compute itself: stored before the run, or computed by another cell."""
        return [
            node.ref.label
            for node in self._cell_nodes(cell_id)
            if node.ref.definition.reusable and (node.stored or node.cell_id != cell_id)
        ]

    def _cell_nodes(self, cell_id: str) -> list[Node]:
        return [self.nodes[s.node] for s in plan.cell_stages(self.cells[cell_id])]

    def kinds(self) -> dict[str, dict[str, float]]:
        """Per kind of stage: unique stages, how many are stored, and how many cells share
        one on average and at most."""
        summary = {}
        for kind in KIND_ORDER:
            nodes = [n for n in self.nodes.values() if n.ref.stage == kind]
            if not nodes:
                continue
            shares = [len(n.cells) for n in nodes]
            summary[kind] = {
                "stages": len(nodes),
                "stored": sum(n.stored for n in nodes),
                "cells_per_stage": sum(shares) / len(shares),
                "max_cells_per_stage": max(shares),
            }
        return summary

    def count_to_compute(self) -> Counter:
        return Counter(n.ref.stage for n in self.to_compute())


def build_graph(cells: Iterable[Cell], store: Store) -> StageGraph:
    """The graph of the cells without an ok record in ``store``."""
    nodes: dict[str, Node] = {}
    to_run: dict[str, Cell] = {}
    done: list[str] = []
    for cell in cells:
        if cell.cell_id in to_run or cell.cell_id in done:
            continue
        if is_stored(store, plan.evaluate(cell)):
            done.append(cell.cell_id)
            continue
        to_run[cell.cell_id] = cell
        for ref in plan.cell_stages(cell):
            if ref.node not in nodes:
                nodes[ref.node] = Node(ref, cell.cell_id, stored=is_stored(store, ref))
            nodes[ref.node].cells.append(cell.cell_id)
    return StageGraph(nodes, to_run, done)
