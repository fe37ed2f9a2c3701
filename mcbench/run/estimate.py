"""How long the stages still to run will take, from the compute seconds that earlier
records in the same results folder measured for the same work on the same device.

Rates are per unit of work: an endpoint's seconds per training epoch, a repair's per
repair epoch, a tamper per stage, an evaluation per evaluation of the same repair, grid
and metrics, an endpoint's scores what one point of such a path costs. Work matches when
the architecture, dataset and device are the same (and the repair, the attack or the
metrics, where they set the cost) and so is the precision (bf16 and fp32 run at different
rates; a record without compute settings ran in fp32)."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from mcbench.bench.cells import Cell
from mcbench.cell import plan
from mcbench.cell.stage_id import StageId
from mcbench.hashing import content_hash
from mcbench.run.graph import StageGraph
from mcbench.vocabulary import CORNER_ROLES, ROLES


def _plain(identity: dict | None) -> dict | None:
    return None if identity is None else {"name": identity["name"], "params": identity["params"]}


def _signature(kind: str, config: dict, device: str) -> str:
    base = {
        "kind": kind,
        "architecture": _plain(config["architecture"]),
        "dataset": _plain(config["dataset"]),
        "device": device,
        "precision": (config.get("compute") or {}).get("precision", "fp32"),
        "compile": bool((config.get("compute") or {}).get("compile", False)),
    }
    if kind == plan.REPAIR:
        base["repair"] = config["repair"]["name"]
        base["connection"] = (config.get("connection") or {}).get("name")
    elif kind == plan.TAMPER:
        base["attack"] = _plain(config["attack"])
    elif kind in (plan.EVALUATE, plan.ENDPOINT_EVAL):
        base["metrics"] = [_plain(m) for m in config["metrics"]]
    if kind == plan.EVALUATE:  # how many points the path has
        base["repair"] = config["repair"]["name"]
        base["grid"] = config["evaluate"]["grid"]
    return content_hash(base)


def _units(kind: str, config: dict) -> float:
    if kind == plan.ENDPOINT:
        return float(config["train"]["epochs"])
    if kind == plan.REPAIR:
        return float(config["repair"]["params"].get("epochs", 1))
    return 1.0


def _measured(record: dict) -> list[tuple[str, float]]:
    """(kind, seconds) of the stages this record's cell computed itself."""
    timings, reused = record.get("timings") or {}, set(record.get("reused") or [])
    found = []
    endpoints = {r: StageId(plan.ENDPOINT, r) for r in CORNER_ROLES}
    for role in CORNER_ROLES:  # a surface's endpoints C and D too
        endpoint, tamper = endpoints[role], StageId(plan.TAMPER, role)
        if endpoint.label in reused:
            continue
        if endpoint.timing_key in timings:
            found.append((plan.ENDPOINT, timings[endpoint.timing_key]))
        elif (
            role in ROLES
            and "endpoints_s" in timings  # a record that timed both endpoints together
            and not reused & {endpoints[r].label for r in ROLES}
        ):
            found.append((plan.ENDPOINT, timings["endpoints_s"] / len(ROLES)))
        if tamper.timing_key in timings and tamper.label not in reused:
            found.append((plan.TAMPER, timings[tamper.timing_key]))
    repair = StageId(plan.REPAIR)
    if repair.timing_key in timings and repair.label not in reused:
        found.append((plan.REPAIR, timings[repair.timing_key]))
    if "evaluate_s" in timings:
        found.append((plan.EVALUATE, timings["evaluate_s"]))
    return found


@dataclass
class Estimate:
    seconds: float
    """Compute seconds of the stages that have a measured rate."""
    timed: int
    untimed: dict[str, int]
    """Stages without a matching measurement, by kind."""
    records: int


def rates(records_dir: Path) -> dict[str, float]:
    """Signature -> median seconds per unit, over the ok records in ``records_dir``."""
    seen: dict[str, list[float]] = defaultdict(list)
    count = 0
    for path in sorted(records_dir.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if record.get("status") != "ok":
                continue
            config, device = record["config"], record["provenance"]["device"]
            points = len(record.get("path") or []) or 1
            for kind, seconds in _measured(record):
                seen[_signature(kind, config, device)].append(seconds / _units(kind, config))
                if kind == plan.EVALUATE:  # an endpoint's scores: about one point
                    seen[_signature(plan.ENDPOINT_EVAL, config, device)].append(seconds / points)
            count += 1
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ZeroDivisionError):
            continue  # a record this estimate cannot read says nothing about rates
    table = {sig: statistics.median(values) for sig, values in seen.items()}
    table["__records__"] = count
    return table


def estimate(graph: StageGraph, results: Path, device: str) -> Estimate:
    table = rates(Path(results) / "records")
    total, timed = 0.0, 0
    untimed: defaultdict[str, int] = defaultdict(int)
    for node in graph.to_compute():
        cell: Cell = graph.cells[node.cell_id]
        config = cell.config()
        kind = node.ref.stage
        rate = table.get(_signature(kind, config, device))
        if rate is None:
            untimed[kind] += 1
            continue
        total += rate * _units(kind, config)
        timed += 1
    return Estimate(total, timed, dict(untimed), int(table["__records__"]))
