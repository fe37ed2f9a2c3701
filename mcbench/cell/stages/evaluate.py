"""The evaluate stage: the cell's scores along the repair's path (or over its surface), the
point it reports, and what its earlier stages stored (the endpoints' scores, the weight
attack's reports, their seconds): what the cell adds to its record."""

from __future__ import annotations

import time

from mcbench.cell.data import cell_data
from mcbench.cell.points import Recalibration, evaluate_points
from mcbench.cell.reported import choose_reported_t, surface_result
from mcbench.cell.scoring import Scorer
from mcbench.cell.stage_id import ENDPOINT, REPAIR, TAMPER, StageId
from mcbench.cell.stages.call import Inputs, StageCall, many, one
from mcbench.cell.stages.repair import repair_context, states


def evaluate_cell(call: StageCall, inputs: Inputs) -> dict:
    """The scores along the repair's path with the endpoints' scores, the weight attack's
    reports and the data sizes, from the stored ``inputs``."""
    cell, data, device = call.cell, call.data, call.device
    parts = cell_data(cell, data)
    roles = cell.roles
    trained = dict(zip(roles, many(inputs, "trained")))
    timings = {StageId(ENDPOINT, r).timing_key: trained[r].meta.get("seconds", 0.0) for r in roles}
    timings["endpoints_s"] = sum(timings.values())
    attacked = trained

    extra: dict = {}
    if parts.injection is not None:
        extra["injection"] = {
            "index": parts.injection.index.tolist(),
            "labels": parts.injection.labels.tolist(),
            "true_labels": parts.injection.images.labels.tolist(),
        }
    if cell.attack_stage == "tamper":
        untampered = many(inputs, "untampered_scores")
        extra["untampered"] = {r: a.meta["result"] for r, a in zip(roles, untampered)}
        tampered = dict(zip(roles, many(inputs, "tampered")))
        extra["tamper"] = {r: tampered[r].meta["report"] for r in roles}
        tamper_s = {
            StageId(TAMPER, r).timing_key: tampered[r].meta["report"].get("seconds", 0.0)
            for r in roles
        }
        timings.update(tamper_s, tamper_s=sum(tamper_s.values()))
        attacked = tampered
    endpoint_scores = {r: a.meta["result"] for r, a in zip(roles, many(inputs, "scores"))}
    repaired = one(inputs, "repair")
    timings[StageId(REPAIR).timing_key] = repaired.meta.get("seconds", 0.0)

    started = time.perf_counter()
    bonafide = parts.bonafide
    ctx = repair_context(cell, states(tuple(attacked.values())), data, bonafide.fit, device)
    path = cell.repair.instance.path(ctx, repaired.tensors, cell.evaluate.points)
    along, held_out_accuracy = evaluate_points(
        path,
        ctx.endpoints,
        Scorer.of(cell),
        parts.scoring,
        Recalibration.of(cell),
        bonafide.fit,
        device,
        bonafide.held_out,
    )
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
