"""The data a cell's stages read, and the evaluation stage: the cell's scores along the
repair's path, composed with what its earlier stages stored."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from mcbench.bench.cells import Cell
from mcbench.kinds import Injection
from mcbench.kinds.data import Dataset, ImageSet
from mcbench.run import stages
from mcbench.run.cache import StageCache
from mcbench.run.reported import choose_reported_t, surface_result
from mcbench.protocol.seeds import derived_seed
from mcbench.run.split import (
    Scoring,
    TestSplit,
    bonafide_subset,
    holdout_split,
    remove_targets,
    split_test_set,
)
from mcbench.run.stages import ProgressFactory


def split_for(cell: Cell, data: Dataset) -> TestSplit:
    return split_test_set(
        data.test, cell.split.defender_pool, cell.split.eval_size, cell.split.seed
    )


def injection_for(cell: Cell, split: TestSplit, data: Dataset) -> Injection | None:
    """The targets of a weight attack, drawn from the evaluation images (None for a cell
    without one)."""
    if cell.attack_stage != "tamper":
        return None
    return stages.choose_injection(cell, split.evaluation, data.num_classes)


def scoring_for(cell: Cell, data: Dataset, split: TestSplit) -> Scoring:
    """What every model of the cell is scored on."""
    attack = cell.attack.instance if cell.attack else None
    if attack is not None:
        attack.check_dataset(data.num_classes, data.channels, data.image_size)
    injection = injection_for(cell, split, data)
    triggered = (
        attack.triggered(split.evaluation, data.num_classes)
        if cell.attack_stage == "poison"
        else None
    )
    return Scoring(
        clean=remove_targets(split.evaluation, injection),
        triggered=triggered,
        injection=injection,
        num_classes=data.num_classes,
    )


@dataclass(frozen=True)
class Bonafide:
    """The defender's bonafide images: those the repair fits on (and BatchNorm statistics
    are recomputed on), and those held out to choose t by (None where the t rule holds out
    none)."""

    fit: ImageSet
    held_out: ImageSet | None

    def __len__(self) -> int:
        return len(self.fit) + (len(self.held_out) if self.held_out is not None else 0)


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


def evaluate_cell(
    cell: Cell,
    data: Dataset,
    stored: StageCache,
    device: torch.device,
    reused: list[str],
) -> dict:
    """What the cell adds to its record: the scores along the repair's path, with the
    endpoints' scores, the weight attack's reports and the data sizes read from the stages
    in ``stored``. ``reused`` names the cell's stages that it did not compute itself."""
    parts = cell_data(cell, data)
    progress: ProgressFactory = lambda label, total: lambda epoch, loss: None  # noqa: E731
    roles = cell.roles
    trained = {r: stages.train_endpoint(cell, r, data, device, stored, progress) for r in roles}
    timings = {f"endpoint_{r}_s": trained[r].meta.get("seconds", 0.0) for r in roles}
    timings["endpoints_s"] = sum(timings.values())
    endpoints = {r: trained[r].tensors for r in roles}

    extra: dict = {}
    if parts.injection is not None:
        extra["injection"] = {
            "index": parts.injection.index.tolist(),
            "labels": parts.injection.labels.tolist(),
            "true_labels": parts.injection.images.labels.tolist(),
        }
    if cell.attack_stage == "tamper":
        extra["untampered"] = {
            r: stages.score_endpoint(
                cell, r, endpoints[r], data, parts.scoring, device, stored, untampered=True
            )
            for r in roles
        }
        tampered = {
            r: stages.tamper_endpoint(cell, r, endpoints[r], data, parts.injection, device, stored)
            for r in roles
        }
        extra["tamper"] = {r: tampered[r].meta["report"] for r in roles}
        tamper_s = {f"tamper_{r}_s": tampered[r].meta["report"].get("seconds", 0.0) for r in roles}
        timings.update(tamper_s, tamper_s=sum(tamper_s.values()))
        endpoints = {r: tampered[r].tensors for r in roles}
    endpoint_scores = {
        r: stages.score_endpoint(cell, r, endpoints[r], data, parts.scoring, device, stored)
        for r in roles
    }
    attacked = tuple(endpoints[r] for r in roles)
    bonafide = parts.bonafide
    repaired = stages.repair(cell, attacked, data, bonafide.fit, device, stored, progress)
    timings["repair_s"] = repaired.meta.get("seconds", 0.0)

    started = time.perf_counter()
    along, held_out_accuracy = stages.evaluate_points(
        cell, attacked, repaired.tensors, data, bonafide.fit, parts.scoring, device,
        bonafide.held_out,
    )  # fmt: skip
    timings["evaluate_s"] = time.perf_counter() - started
    if len(roles) > 2:
        extra["surface"] = surface_result(cell, along, held_out_accuracy, bonafide)
        chosen = along[extra["surface"]["index"]]
        along, reported, rule = [{**chosen, "t": None}], None, None
    elif len(along) == 1:
        reported, rule = along[0]["t"], None
    else:
        reported, rule = choose_reported_t(cell, along, held_out_accuracy, bonafide)
    return {
        "path": along,
        "reported_t": reported,
        **({"t_rule": rule} if rule else {}),
        "endpoints": endpoint_scores,
        **extra,
        "timings": timings,
        "reused": reused,
        "data_source": data.source,
        "sizes": {
            "train": len(data.train),
            "defender_pool": len(parts.split.defender_pool),
            "bonafide": len(bonafide),
            "evaluation": len(parts.scoring.clean),
            "triggered": 0 if parts.scoring.triggered is None else len(parts.scoring.triggered),
            "targets": 0 if parts.injection is None else len(parts.injection),
        },
    }
