"""Controlled runs of the path repair at small bonafide budgets: what costs clean accuracy.

    python experiments/path_repair_budgets.py --profile cpu --data-root ../shared/data \
        --results runs/budgets --budgets 250 500 1000 2500 --variants base bn-augmented

Takes the backdoor-repair track's Bezier path cell of the benchmark file (its endpoints are
trained into --results, or reused from there), then for every budget fits the curve once
per variant that changes the fit, and scores each variant's points t along it on the
evaluation set. One factor changes per variant; everything else is the file's.

For each (variant, budget) it prints the endpoints' clean accuracy (as trained), the best
interior t, the one with the highest clean accuracy among those whose attack success is
at most --asr (10%), and how many points of clean accuracy it pays. Results go to
--out as JSON as well."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import fields, replace
from pathlib import Path

import torch

ANCHORED = {"passes": 4, "augment": True, "anchored": True}
"""BatchNorm statistics over 4 augmented passes, anchored to the endpoints'."""

VARIANTS = {
    # name: (changes to the path repair's parameters, BatchNorm recalibration: passes,
    # augmented or not, anchored to the endpoints' statistics or not)
    "base": ({}, {"passes": 1, "augment": False}),
    "bn-augmented": ({}, {"passes": 4, "augment": True}),
    "bn-4-passes": ({}, {"passes": 4, "augment": False}),
    "epochs-x2.5": ({"epochs": 100}, {"passes": 1, "augment": False}),
    "lr-0.05": ({"lr": 0.05}, {"passes": 1, "augment": False}),
    "cosine": ({"schedule": "cosine"}, {"passes": 1, "augment": False}),
    "no-augment": ({"augment": False}, {"passes": 1, "augment": False}),
    "batch-32": ({"batch_size": 32}, {"passes": 1, "augment": False}),
    "distill-0.5": ({"distill": 0.5}, {"passes": 1, "augment": False}),
    "distill-0.9": ({"distill": 0.9}, {"passes": 1, "augment": False}),
    "distill-0.9+bn-augmented": ({"distill": 0.9}, {"passes": 4, "augment": True}),
    "distill-0.9+lr-0.05": ({"distill": 0.9, "lr": 0.05}, {"passes": 1, "augment": False}),
    "lr-0.05+bn-augmented": ({"lr": 0.05}, {"passes": 4, "augment": True}),
    "cutout-16+bn-augmented": ({"cutout": 16}, {"passes": 4, "augment": True}),
    "cutout-24+bn-augmented": ({"cutout": 24}, {"passes": 4, "augment": True}),
    "cutout-32+bn-augmented": ({"cutout": 32}, {"passes": 4, "augment": True}),
    "bn-anchored": ({}, ANCHORED),
    "cutout-24+bn-anchored": ({"cutout": 24}, ANCHORED),
    "epochs-x2.5+bn-anchored": ({"epochs": 100}, ANCHORED),
    "cutout-24+epochs-x2.5+bn-anchored": ({"cutout": 24, "epochs": 100}, ANCHORED),
    "cutout-24+cosine+bn-anchored": ({"cutout": 24, "schedule": "cosine"}, ANCHORED),
    "cutout-24+batch-32+bn-anchored": ({"cutout": 24, "batch_size": 32}, ANCHORED),
    "lr-0.05+no-augment+bn-augmented": (
        {"lr": 0.05, "augment": False},
        {"passes": 4, "augment": True},
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", default="benchmarks.yaml")
    parser.add_argument("--profile", default="cpu", help='"": none')
    parser.add_argument("--track", default="backdoor-repair")
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--results", type=Path, default=Path("runs/path-repair-budgets"))
    parser.add_argument("--budgets", type=int, nargs="+", default=[250, 500, 1000, 2500])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--grid", type=int, default=11)
    parser.add_argument("--asr", type=float, default=0.10)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--fit-seed",
        type=int,
        help="fit the curves with another seed (batch order, t, crops, cutout), the "
        "endpoints and the bonafide images unchanged: how much of a difference is noise",
    )
    args = parser.parse_args()

    from mcbench.bench.load import load_benchmark
    from mcbench.cell import plan
    from mcbench.cell.data import cell_data
    from mcbench.cell.models import model_from
    from mcbench.cell.points import Recalibration, evaluate_points
    from mcbench.cell.scoring import Scorer
    from mcbench.cell.split import bonafide_subset
    from mcbench.cell.stages.repair import repair_context
    from mcbench.protocol.seeds import derived_seed
    from mcbench.registry import load_registry
    from mcbench.run.data_cache import DatasetCache
    from mcbench.run.execute import compute_stage
    from mcbench.run.store import Store
    from mcbench.vocabulary import ROLES
    from mcbench_plugins.repairs.path import PathRepair

    profile = args.profile or None
    bench = load_benchmark(args.file, load_registry(), profile=profile, tracks=(args.track,))
    cell = next(
        c
        for c in bench.cells
        if c.repair.name == "path" and c.connection and c.connection.name == "bezier"
    )
    device = torch.device("cpu")
    data = DatasetCache(args.data_root, args.results / "cache").load(cell.dataset)
    store = Store(args.results)
    endpoints = tuple(
        compute_stage(plan.endpoint(cell, r), cell, data, store, device).tensors for r in ROLES
    )
    parts = cell_data(cell, data)
    scorer = Scorer.of(cell)
    trained = {
        r: scorer.score(model_from(cell, data, device, s), parts.scoring, device)
        for r, s in zip(ROLES, endpoints)
    }
    reference = sum(trained[r]["clean_accuracy"] for r in ROLES) / 2
    print(f"endpoints as trained: clean {reference:.3f}, "
          f"ASR {[round(trained[r]['attack_success_rate'], 3) for r in ROLES]}")  # fmt: skip
    grid = [round(i / (args.grid - 1), 10) for i in range(args.grid)]
    base_params = {
        f.name: getattr(cell.repair.instance, f.name) for f in fields(cell.repair.instance)
    }
    rows = []
    for budget in args.budgets:
        bonafide = bonafide_subset(
            parts.split.defender_pool, budget, derived_seed("bonafide", cell.seed)
        )
        fitted: dict[str, dict] = {}
        for variant in args.variants:
            changes, recal = VARIANTS[variant]
            changes = dict(changes)
            augment = changes.pop("augment", cell.train.augment)
            params = {**base_params, **changes}
            fit_key = json.dumps([params, augment], sort_keys=True, default=str)
            repair = PathRepair(**params)
            ctx = replace(repair_context(cell, endpoints, data, bonafide, device), augment=augment)
            if args.fit_seed is not None:
                ctx = replace(ctx, seed=derived_seed("repair", cell.seed, args.fit_seed))
            started = time.perf_counter()
            if fit_key not in fitted:
                fitted[fit_key] = repair.fit(ctx)
            fit_s = time.perf_counter() - started
            path = repair.path(ctx, fitted[fit_key], grid)

            recalibration = Recalibration(
                enabled=True,
                passes=recal["passes"],
                augment_seed=derived_seed("recalibrate", cell.seed) if recal["augment"] else None,
                anchored=bool(recal.get("anchored")),
                batch_size=cell.evaluate.batch_size,
                precision=cell.compute.precision,
            )
            scored, _ = evaluate_points(
                path, ctx.endpoints, scorer, parts.scoring, recalibration, bonafide, device
            )
            along = [{k: v for k, v in p.items() if k != "notes"} for p in scored]
            interior = [p for p in along if 0 < p["t"] < 1 and p["attack_success_rate"] <= args.asr]
            best = max(interior, key=lambda p: p["clean_accuracy"], default=None)
            row = {
                "variant": variant,
                "budget": budget,
                "fit_seed": args.fit_seed,
                "endpoints_clean": reference,
                "t0_clean": along[0]["clean_accuracy"],
                "best": best,
                "drop_points": None if best is None else 100 * (reference - best["clean_accuracy"]),
                "fit_s": fit_s,
                "path": along,
            }
            rows.append(row)
            shown = (
                f"no interior t with ASR <= {args.asr:.0%}"
                if best is None
                else f"t={best['t']:g} clean {best['clean_accuracy']:.3f} "
                f"ASR {best['attack_success_rate']:.3f} (-{row['drop_points']:.1f} points)"
            )
            print(f"n={budget:<5} {variant:<14} t=0 clean {row['t0_clean']:.3f}  {shown}  "
                  f"[fit {fit_s:.0f}s]", flush=True)  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps({"trained": trained, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
