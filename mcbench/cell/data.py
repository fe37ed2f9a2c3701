"""The data a cell's stages read: its division of the test set, the weight attack's
targets, what every model of the cell is scored on, and the defender's bonafide budget."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mcbench.bench.cells import Cell
from mcbench.cell.split import (
    Bonafide,
    Scoring,
    TestSplit,
    bonafide_subset,
    holdout_split,
    remove_targets,
    split_test_set,
)
from mcbench.kinds import Injection
from mcbench.kinds.data import Dataset, ImageSet
from mcbench.protocol.seeds import derived_seed


def split_for(cell: Cell, data: Dataset) -> TestSplit:
    return split_test_set(
        data.test, cell.split.defender_pool, cell.split.eval_size, cell.split.seed
    )


def choose_injection(cell: Cell, evaluation: ImageSet, num_classes: int) -> Injection | None:
    """The injection's targets, drawn from the evaluation images: the same for both
    endpoints."""
    assert cell.attack is not None  # only a cell with a weight attack injects
    generator = torch.Generator().manual_seed(derived_seed("targets", cell.seed))
    return cell.attack.instance.choose_injection(evaluation, num_classes, generator)


def injection_for(cell: Cell, split: TestSplit, data: Dataset) -> Injection | None:
    """The targets of a weight attack, drawn from the evaluation images (None for a cell
    without one)."""
    if cell.attack_stage != "tamper":
        return None
    return choose_injection(cell, split.evaluation, data.num_classes)


def scoring_for(cell: Cell, data: Dataset, split: TestSplit) -> Scoring:
    """What every model of the cell is scored on."""
    attack = cell.attack.instance if cell.attack else None
    if attack is not None:
        attack.check_dataset(data.num_classes, data.channels, data.image_size)
    injection = injection_for(cell, split, data)
    triggered = (
        attack.triggered(split.evaluation, data.num_classes)
        if attack is not None and cell.attack_stage == "poison"
        else None
    )
    return Scoring(
        clean=remove_targets(split.evaluation, injection),
        triggered=triggered,
        injection=injection,
        num_classes=data.num_classes,
    )


def bonafide_for(cell: Cell, split: TestSplit) -> Bonafide:
    """The cell's budget, drawn from the defender's pool, and the part of it held out."""
    budget = bonafide_subset(split.defender_pool, cell.budget, derived_seed("bonafide", cell.seed))
    if cell.holdout is None:
        return Bonafide(budget, None)
    _, held = cell.evaluate.holdout_sizes(len(budget))
    fit, held_out = holdout_split(budget, held, derived_seed("holdout", cell.seed))
    return Bonafide(fit, held_out)


@dataclass(frozen=True)
class CellData:
    """The parts of the data a cell's stages read."""

    split: TestSplit
    bonafide: Bonafide
    injection: Injection | None
    scoring: Scoring


def cell_data(cell: Cell, data: Dataset) -> CellData:
    split = split_for(cell, data)
    scoring = scoring_for(cell, data, split)
    return CellData(split, bonafide_for(cell, split), scoring.injection, scoring)
