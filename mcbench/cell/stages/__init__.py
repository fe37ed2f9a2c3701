"""The stages of a cell, declared once: each stage kind's definition says which stages of
it a cell has, the content key each is stored under, the stages whose results it reads (by
name), the function that computes it, what it stores and whether a record lists it as
reused. The plan, the runner, the executors, ``mcbench status`` and the record's keys are
all derived from ``STAGE_DEFS``.

Adding a stage kind: its name in ``mcbench.vocabulary.STAGES``, its key in
``mcbench.bench.cells``, its compute function in a module here, and one ``StageDef``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from mcbench.bench.cells import Cell
from mcbench.cell.stage_id import ENDPOINT, ENDPOINT_EVAL, EVALUATE, REPAIR, TAMPER, StageId
from mcbench.cell.stages.call import Inputs, StageCall
from mcbench.cell.stages.endpoint import train_endpoint
from mcbench.cell.stages.endpoint_eval import score_endpoint
from mcbench.cell.stages.evaluate import evaluate_cell
from mcbench.cell.stages.repair import fit_repair
from mcbench.cell.stages.tamper import tamper_endpoint
from mcbench.vocabulary import STAGES

Stored = Literal["tensors", "json", "record"]
"""What a stage stores: tensors with their JSON meta, JSON alone (``meta["result"]``), or
the cell's record."""
InputIds = dict[str, StageId | tuple[StageId, ...]]


@dataclass(frozen=True)
class StageDef:
    name: str
    stores: Stored
    reusable: bool
    """A record names its key under ``keys`` and, when the cell did not compute it itself,
    its label under ``reused``."""
    ids: Callable[[Cell], list[StageId]]
    """The stages of this kind that a cell has, in the order they run."""
    key: Callable[[Cell, StageId], str]
    inputs: Callable[[Cell, StageId], InputIds]
    """The stages it reads, by the names its compute function reads them under."""
    compute: Callable[[StageCall, Inputs], Any]
    """(call, inputs) -> (tensors, meta) for ``tensors``, the result for ``json``, and
    what the cell adds to its record for ``record``."""


def attacked(cell: Cell, role: str) -> StageId:
    """The model the repair starts from: tampered, or as trained."""
    return StageId(TAMPER if cell.attack_stage == "tamper" else ENDPOINT, role)


def _tampers(cell: Cell) -> bool:
    return cell.attack_stage == "tamper"


def _endpoint_evals(cell: Cell) -> list[StageId]:
    untampered = [StageId(ENDPOINT_EVAL, r, True) for r in cell.roles] if _tampers(cell) else []
    return [*untampered, *(StageId(ENDPOINT_EVAL, r) for r in cell.roles)]


def _scored(cell: Cell, id: StageId) -> StageId:
    return StageId(ENDPOINT, id.role) if id.untampered else attacked(cell, id.role or "")


def _evaluate_inputs(cell: Cell, id: StageId) -> InputIds:
    roles = cell.roles
    inputs: InputIds = {
        "repair": StageId(REPAIR),
        "trained": tuple(StageId(ENDPOINT, r) for r in roles),
        "scores": tuple(StageId(ENDPOINT_EVAL, r) for r in roles),
    }
    if _tampers(cell):
        inputs["tampered"] = tuple(StageId(TAMPER, r) for r in roles)
        inputs["untampered_scores"] = tuple(StageId(ENDPOINT_EVAL, r, True) for r in roles)
    return inputs


STAGE_DEFS: dict[str, StageDef] = {
    ENDPOINT: StageDef(
        ENDPOINT,
        stores="tensors",
        reusable=True,
        ids=lambda cell: [StageId(ENDPOINT, r) for r in cell.roles],
        key=lambda cell, id: cell.endpoint_key(id.endpoint),
        inputs=lambda cell, id: {},
        compute=train_endpoint,
    ),
    TAMPER: StageDef(
        TAMPER,
        stores="tensors",
        reusable=True,
        ids=lambda cell: [StageId(TAMPER, r) for r in cell.roles] if _tampers(cell) else [],
        key=lambda cell, id: cell.tamper_key(id.endpoint),
        inputs=lambda cell, id: {"trained": StageId(ENDPOINT, id.role)},
        compute=tamper_endpoint,
    ),
    ENDPOINT_EVAL: StageDef(
        ENDPOINT_EVAL,
        stores="json",
        reusable=False,
        ids=_endpoint_evals,
        key=lambda cell, id: cell.endpoint_eval_key(id.endpoint, id.untampered),
        inputs=lambda cell, id: {"model": _scored(cell, id)},
        compute=score_endpoint,
    ),
    REPAIR: StageDef(
        REPAIR,
        stores="tensors",
        reusable=True,
        ids=lambda cell: [StageId(REPAIR)],
        key=lambda cell, id: cell.repair_key(),
        inputs=lambda cell, id: {"endpoints": tuple(attacked(cell, r) for r in cell.roles)},
        compute=fit_repair,
    ),
    EVALUATE: StageDef(
        EVALUATE,
        stores="record",
        reusable=False,
        ids=lambda cell: [StageId(EVALUATE)],
        key=lambda cell, id: cell.cell_id,
        inputs=_evaluate_inputs,
        compute=evaluate_cell,
    ),
}
assert tuple(STAGE_DEFS) == STAGES, "one definition per stage kind, in the order they run"
