"""A cell's stages as a graph, derived from ``mcbench.cell.stages.STAGE_DEFS``: each
stage's id, content key and the nodes of the stages whose results it reads. Cells that
share a key share that stage's result."""

from __future__ import annotations

from dataclasses import dataclass

from mcbench.bench.cells import Cell
from mcbench.cell.stage_id import ENDPOINT, ENDPOINT_EVAL, EVALUATE, REPAIR, TAMPER, StageId
from mcbench.cell.stages import STAGE_DEFS, StageDef
from mcbench.cell.stages import attacked as attacked_id

__all__ = ["ENDPOINT", "ENDPOINT_EVAL", "EVALUATE", "REPAIR", "TAMPER", "StageId", "StageRef"]


@dataclass(frozen=True)
class StageRef:
    id: StageId
    key: str
    inputs: tuple[str, ...]
    """The nodes (``stage/key``) of the stages this one reads."""

    @property
    def stage(self) -> str:
        return self.id.stage

    @property
    def role(self) -> str | None:
        return self.id.role

    @property
    def untampered(self) -> bool:
        return self.id.untampered

    @property
    def label(self) -> str:
        """How progress and logs name it, e.g. "endpoint A"."""
        return self.id.label

    @property
    def definition(self) -> StageDef:
        return STAGE_DEFS[self.id.stage]

    @property
    def node(self) -> str:
        """Its name in a graph of stages: keys are unique within a stage, not across."""
        return f"{self.stage}/{self.key}"


NamedRefs = dict[str, StageRef | tuple[StageRef, ...]]


def input_refs(cell: Cell, id: StageId) -> NamedRefs:
    """The stages that stage ``id`` of ``cell`` reads, by the names it reads them under."""
    named: NamedRefs = {}
    for name, value in STAGE_DEFS[id.stage].inputs(cell, id).items():
        named[name] = (
            tuple(ref(cell, i) for i in value) if isinstance(value, tuple) else ref(cell, value)
        )
    return named


def ref(cell: Cell, id: StageId) -> StageRef:
    """Stage ``id`` of ``cell``, with its key and the nodes of its inputs."""
    definition = STAGE_DEFS[id.stage]
    nodes: list[str] = []
    for value in definition.inputs(cell, id).values():
        for i in value if isinstance(value, tuple) else (value,):
            node = f"{i.stage}/{STAGE_DEFS[i.stage].key(cell, i)}"
            if node not in nodes:
                nodes.append(node)
    return StageRef(id, definition.key(cell, id), tuple(nodes))


def cell_stages(cell: Cell) -> list[StageRef]:
    """Every stage of a cell, each after the stages it reads, ending with the evaluation."""
    return [ref(cell, id) for d in STAGE_DEFS.values() for id in d.ids(cell)]


def endpoint(cell: Cell, role: str) -> StageRef:
    return ref(cell, StageId(ENDPOINT, role))


def tamper(cell: Cell, role: str) -> StageRef:
    return ref(cell, StageId(TAMPER, role))


def attacked(cell: Cell, role: str) -> StageRef:
    """The model the repair starts from: tampered, or as trained."""
    return ref(cell, attacked_id(cell, role))


def endpoint_eval(cell: Cell, role: str, untampered: bool = False) -> StageRef:
    """The scores of an endpoint: as trained (``untampered``) or as the repair gets it."""
    return ref(cell, StageId(ENDPOINT_EVAL, role, untampered))


def repair(cell: Cell) -> StageRef:
    return ref(cell, StageId(REPAIR))


def evaluate(cell: Cell) -> StageRef:
    """Scoring along the repair's path; its result is the cell's record."""
    return ref(cell, StageId(EVALUATE))
