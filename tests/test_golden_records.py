"""Every number a run records, recomputed bit for bit: a small synthetic benchmark over
every track, stage kind and repair (tests/golden/bench.yaml) runs from nothing, and its
records, less timings and the machine's provenance, must equal those committed in
tests/golden/records.json. The stage keys are compared too, so caches stay valid.

After a change that is meant to alter recorded numbers, rewrite the file with
``MCBENCH_WRITE_GOLDEN=1 python -m pytest tests/test_golden_records.py`` and say why in
the commit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from mcbench.bench.load import load_benchmark
from mcbench.run.runner import run_benchmark
from mcbench.run.store import Store

GOLDEN = Path(__file__).parent / "golden"
VOLATILE = {"seconds", "seconds_per_step", "timings", "provenance", "reused"}
"""Record fields that depend on the machine, the clock or what a store held before."""


def comparable(value):
    """VALUE without the fields that differ from run to run (timings at any depth)."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


@pytest.fixture(scope="module")
def records(tmp_path_factory, registry):
    results = tmp_path_factory.mktemp("golden") / "results"
    bench = load_benchmark(GOLDEN / "bench.yaml", registry)
    torch.set_num_threads(1)  # bit-identical figures need the same reduction order
    try:
        summary = run_benchmark(bench, Store(results), torch.device("cpu"), None, results / "cache")
    finally:
        torch.set_num_threads(os.cpu_count() or 1)
    assert not summary.failed
    found = {}
    for cell in bench.cells:
        record = json.loads((results / "records" / f"{cell.cell_id}.json").read_text())
        found[cell.label()] = comparable(record)
    return found


def test_every_recorded_number_and_stage_key_is_as_committed(records):
    path = GOLDEN / "records.json"
    if os.environ.get("MCBENCH_WRITE_GOLDEN"):
        path.write_text(json.dumps(records, indent=1, sort_keys=True) + "\n")
    committed = json.loads(path.read_text())
    assert sorted(records) == sorted(committed)
    for label, record in records.items():
        expected = committed[label]
        for field in sorted(set(record) | set(expected)):
            assert record.get(field) == expected.get(field), f"{label}: {field}"


def test_the_golden_benchmark_covers_every_stage_kind_and_repair(records):
    repairs = {r["config"]["repair"]["name"] for r in records.values()}
    assert {"path", "finetune", "fineprune", "scratch", "noisy", "surface"} <= repairs
    assert any("tamper" in r for r in records.values())
    assert any("surface" in r for r in records.values())
    assert any(r.get("t_rule", {}).get("rule") == "bonafide" for r in records.values())
