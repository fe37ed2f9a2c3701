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
from mcbench.run.seeds import derived_seed
from mcbench.run.split import Scoring, TestSplit, bonafide_subset, remove_targets, split_test_set
from mcbench.run.stages import ProgressFactory
from mcbench.vocabulary import ROLES


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


def bonafide_for(cell: Cell, split: TestSplit) -> ImageSet:
    """The defender's bonafide images: the cell's budget, drawn from its pool."""
    return bonafide_subset(split.defender_pool, cell.budget, derived_seed("bonafide", cell.seed))


@dataclass(frozen=True)
class CellData:
    """The parts of the data a cell's stages read."""

    split: TestSplit
    bonafide: ImageSet
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
    trained = {r: stages.train_endpoint(cell, r, data, device, stored, progress) for r in ROLES}
    timings = {f"endpoint_{r}_s": trained[r].meta.get("seconds", 0.0) for r in ROLES}
    timings["endpoints_s"] = sum(timings.values())
    endpoints = {r: trained[r].tensors for r in ROLES}

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
            for r in ROLES
        }
        tampered = {
            r: stages.tamper_endpoint(cell, r, endpoints[r], data, parts.injection, device, stored)
            for r in ROLES
        }
        extra["tamper"] = {r: tampered[r].meta["report"] for r in ROLES}
        tamper_s = {f"tamper_{r}_s": tampered[r].meta["report"].get("seconds", 0.0) for r in ROLES}
        timings.update(tamper_s, tamper_s=sum(tamper_s.values()))
        endpoints = {r: tampered[r].tensors for r in ROLES}
    endpoint_scores = {
        r: stages.score_endpoint(cell, r, endpoints[r], data, parts.scoring, device, stored)
        for r in ROLES
    }
    pair = (endpoints[ROLES[0]], endpoints[ROLES[1]])
    repaired = stages.repair(cell, pair, data, parts.bonafide, device, stored, progress)
    timings["repair_s"] = repaired.meta.get("seconds", 0.0)

    started = time.perf_counter()
    along = stages.evaluate_points(
        cell, pair, repaired.tensors, data, parts.bonafide, parts.scoring, device
    )
    timings["evaluate_s"] = time.perf_counter() - started
    reported = cell.evaluate.reported_point() if len(along) > 1 else along[0]["t"]
    return {
        "path": along,
        "reported_t": reported,
        "endpoints": endpoint_scores,
        **extra,
        "timings": timings,
        "reused": reused,
        "data_source": data.source,
        "sizes": {
            "train": len(data.train),
            "defender_pool": len(parts.split.defender_pool),
            "bonafide": len(parts.bonafide),
            "evaluation": len(parts.scoring.clean),
            "triggered": 0 if parts.scoring.triggered is None else len(parts.scoring.triggered),
            "targets": 0 if parts.injection is None else len(parts.injection),
        },
    }
