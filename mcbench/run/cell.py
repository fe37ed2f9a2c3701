"""One cell as a composition of its stages: endpoints -> (tamper) -> repair -> scores
along the path. Returns what the cell adds to its record."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from mcbench.bench.cells import Cell
from mcbench.kinds import Injection
from mcbench.kinds.data import Dataset, ImageSet
from mcbench.run import stages
from mcbench.run.cache import StageCache, data_copy
from mcbench.run.seeds import derived_seed
from mcbench.run.split import Scoring, TestSplit, bonafide_subset, remove_targets, split_test_set
from mcbench.run.stages import ProgressFactory
from mcbench.run.store import Store
from mcbench.vocabulary import ROLES


@dataclass(frozen=True)
class CellData:
    """The parts of the data a cell's stages read."""

    split: TestSplit
    bonafide: ImageSet
    injection: Injection | None
    scoring: Scoring


def cell_data(cell: Cell, data: Dataset) -> CellData:
    attack = cell.attack.instance if cell.attack else None
    if attack is not None:
        attack.check_dataset(data.num_classes, data.channels, data.image_size)
    split = split_test_set(
        data.test, cell.split.defender_pool, cell.split.eval_size, cell.split.seed
    )
    bonafide = bonafide_subset(
        split.defender_pool, cell.budget, derived_seed("bonafide", cell.seed)
    )
    injection = (
        stages.choose_injection(cell, split.evaluation, data.num_classes)
        if cell.attack_stage == "tamper"
        else None
    )
    triggered = (
        attack.triggered(split.evaluation, data.num_classes)
        if cell.attack_stage == "poison"
        else None
    )
    scoring = Scoring(
        clean=remove_targets(split.evaluation, injection),
        triggered=triggered,
        injection=injection,
        num_classes=data.num_classes,
    )
    return CellData(split, bonafide, injection, scoring)


def run_cell(
    cell: Cell, data: Dataset, store: Store, device: torch.device, progress: ProgressFactory
) -> dict:
    cache = StageCache(store, data_copy(data))
    parts = cell_data(cell, data)
    timings: dict[str, float] = {}
    reused: list[str] = []
    extra: dict = {}

    started = time.perf_counter()
    trained = {r: stages.train_endpoint(cell, r, data, device, cache, progress) for r in ROLES}
    reused += [f"endpoint {r}" for r in ROLES if trained[r].cached]
    timings["endpoints_s"] = time.perf_counter() - started
    endpoints = {r: trained[r].tensors for r in ROLES}

    if parts.injection is not None:
        extra["injection"] = {
            "index": parts.injection.index.tolist(),
            "labels": parts.injection.labels.tolist(),
            "true_labels": parts.injection.images.labels.tolist(),
        }
    if cell.attack_stage == "tamper":
        extra["untampered"] = {
            r: stages.score_endpoint(
                cell, r, endpoints[r], data, parts.scoring, device, cache, untampered=True
            )
            for r in ROLES
        }
        started = time.perf_counter()
        tampered = {
            r: stages.tamper_endpoint(cell, r, endpoints[r], data, parts.injection, device, cache)
            for r in ROLES
        }
        extra["tamper"] = {r: tampered[r].meta["report"] for r in ROLES}
        reused += [f"tamper {r}" for r in ROLES if tampered[r].cached]
        timings["tamper_s"] = time.perf_counter() - started
        endpoints = {r: tampered[r].tensors for r in ROLES}
    endpoint_scores = {
        r: stages.score_endpoint(cell, r, endpoints[r], data, parts.scoring, device, cache)
        for r in ROLES
    }
    pair = (endpoints[ROLES[0]], endpoints[ROLES[1]])

    started = time.perf_counter()
    repaired = stages.repair(cell, pair, data, parts.bonafide, device, cache, progress)
    if repaired.cached:
        reused.append("repair")
    timings["repair_s"] = time.perf_counter() - started

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
