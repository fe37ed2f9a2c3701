"""The stages of a cell as a graph: each stage's name, content key and the keys of the
stages whose results it reads. Cells that share a key share that stage's result."""

from __future__ import annotations

from dataclasses import dataclass

from mcbench.bench.cells import Cell
from mcbench.vocabulary import STAGES

ENDPOINT, TAMPER, ENDPOINT_EVAL, REPAIR, EVALUATE = STAGES


@dataclass(frozen=True)
class StageRef:
    stage: str
    key: str
    inputs: tuple[str, ...]
    """The nodes (``stage/key``) of the stages this one reads."""
    label: str
    """How progress and logs name it, e.g. "endpoint A"."""
    role: str | None = None
    """The endpoint it belongs to, for endpoint, tamper and endpoint-eval stages."""
    untampered: bool = False
    """For endpoint-eval: the scores of the endpoint as trained, before a weight attack."""

    @property
    def node(self) -> str:
        """Its name in a graph of stages: keys are unique within a stage, not across."""
        return f"{self.stage}/{self.key}"


def endpoint(cell: Cell, role: str) -> StageRef:
    return StageRef(ENDPOINT, cell.endpoint_key(role), (), f"endpoint {role}", role)


def tamper(cell: Cell, role: str) -> StageRef:
    return StageRef(
        TAMPER, cell.tamper_key(role), (endpoint(cell, role).node,), f"tamper {role}", role
    )


def attacked(cell: Cell, role: str) -> StageRef:
    """The model the repair starts from: tampered, or as trained."""
    return tamper(cell, role) if cell.attack_stage == "tamper" else endpoint(cell, role)


def endpoint_eval(cell: Cell, role: str, untampered: bool = False) -> StageRef:
    """The scores of an endpoint: as trained (``untampered``) or as the repair gets it."""
    scored = endpoint(cell, role) if untampered else attacked(cell, role)
    return StageRef(
        ENDPOINT_EVAL,
        cell.endpoint_eval_key(role, untampered),
        (scored.node,),
        f"endpoint-eval {role}{' untampered' if untampered else ''}",
        role,
        untampered,
    )


def repair(cell: Cell) -> StageRef:
    return StageRef(
        REPAIR, cell.repair_key(), tuple(attacked(cell, r).node for r in cell.roles), "repair"
    )


def evaluate(cell: Cell) -> StageRef:
    """Scoring along the repair's path; its result is the cell's record, which also holds
    the endpoints' scores."""
    scores = [s.node for s in _endpoint_evals(cell)]
    inputs = (repair(cell).node, *(attacked(cell, r).node for r in cell.roles), *scores)
    return StageRef(EVALUATE, cell.cell_id, inputs, "evaluate")


def _endpoint_evals(cell: Cell) -> list[StageRef]:
    untampered = (
        [endpoint_eval(cell, r, untampered=True) for r in cell.roles]
        if cell.attack_stage == "tamper"
        else []
    )
    return [*untampered, *(endpoint_eval(cell, r) for r in cell.roles)]


def cell_stages(cell: Cell) -> list[StageRef]:
    """Every stage of a cell, each after the stages it reads, ending with the evaluation."""
    stages = [endpoint(cell, r) for r in cell.roles]
    if cell.attack_stage == "tamper":
        stages += [tamper(cell, r) for r in cell.roles]
    return [*stages, *_endpoint_evals(cell), repair(cell), evaluate(cell)]
