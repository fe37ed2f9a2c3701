"""The stage table: every stage kind is declared once, each stage reads exactly what its
definition declares, and the plan, the record's keys and the storage checks follow the
definitions."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from mcbench.bench.load import load_benchmark
from mcbench.cell import plan
from mcbench.cell.stage_id import StageId
from mcbench.cell.stages import STAGE_DEFS
from mcbench.run.cache import MissingInput
from mcbench.run.data_cache import DatasetCache
from mcbench.run.execute import compute_stage
from mcbench.run.graph import is_stored
from mcbench.run.runner import run_benchmark
from mcbench.run.store import Store
from mcbench.vocabulary import STAGES
from tests.conftest import TINY

CPU = torch.device("cpu")
TAMPERED = (
    TINY.replace(
        "attacks: [{name: badnets, target: 0, poison_rate: 0.1, patch_size: 3}]",
        "attacks: [{name: sba, targets: 2}]",
    )
    .replace("clean_accuracy, attack_success_rate, loss", "clean_accuracy, injection_success")
    .replace("connections: [linear, bezier]", "connections: [linear]")
)


def test_one_definition_per_stage_kind_in_the_order_they_run():
    assert tuple(STAGE_DEFS) == STAGES
    assert {d.name for d in STAGE_DEFS.values()} == set(STAGES)
    assert all(d.stores in ("tensors", "json", "record") for d in STAGE_DEFS.values())


def test_labels_record_keys_and_timing_keys_derive_from_the_stage_id():
    assert StageId("endpoint", "A").label == "endpoint A"
    assert StageId("endpoint", "A").record_key == "endpoint_A"
    assert StageId("tamper", "B").timing_key == "tamper_B_s"
    assert StageId("repair").timing_key == "repair_s"
    assert StageId("endpoint-eval", "A", True).label == "endpoint-eval A untampered"


@pytest.fixture(scope="module")
def ran(tmp_path_factory, registry):
    folder = tmp_path_factory.mktemp("stage-table")
    (folder / "bench.yaml").write_text(TAMPERED)
    bench = load_benchmark(folder / "bench.yaml", registry)
    results = folder / "results"
    summary = run_benchmark(bench, Store(results), CPU, None, results / "cache")
    assert not summary.failed
    [cell] = bench.cells
    data = DatasetCache(None, results / "cache").load(cell.dataset)
    return cell, data, results


def test_the_record_names_the_key_of_every_reusable_stage(ran):
    cell, _, results = ran
    record = json.loads((results / "records" / f"{cell.cell_id}.json").read_text())
    reusable = [r for r in plan.cell_stages(cell) if r.definition.reusable]
    assert record["keys"] == {r.id.record_key: r.key for r in reusable}
    assert set(record["keys"]) == {"endpoint_A", "endpoint_B", "tamper_A", "tamper_B", "repair"}
    assert all(is_stored(Store(results), r) for r in plan.cell_stages(cell))


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_computes_from_its_declared_inputs_alone(ran, tmp_path, stage):
    """A fresh store holding only the declared inputs of one stage of the cell computes
    it, to the same result as the full run stored."""
    cell, data, results = ran
    full = Store(results)
    for ref in (r for r in plan.cell_stages(cell) if r.stage == stage):
        fresh = Store(tmp_path / ref.label.replace(" ", "-"))
        for node in ref.inputs:
            kind, key = node.split("/")
            for path in (full.artifacts / kind).glob(f"{key}.*"):
                target = fresh.artifacts / kind / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
        made = compute_stage(ref, cell, data, fresh, CPU)
        assert not made.cached
        if ref.definition.stores == "tensors":
            stored = full.load_tensors(ref.stage, ref.key)
            assert made.tensors.keys() == stored.keys()
            assert all(torch.equal(made.tensors[k], stored[k]) for k in stored)
        elif ref.definition.stores == "json":
            assert made.meta["result"] == full.load_json(ref.stage, ref.key)["result"]
        else:
            record = full.load_record(ref.key)
            assert made.meta["path"] == record["path"]
            assert made.meta["endpoints"] == record["endpoints"]
            assert made.meta["tamper"] == record["tamper"]


def test_a_stage_whose_input_is_missing_is_refused_not_computed_behind_the_plan(ran, tmp_path):
    cell, data, _ = ran
    with pytest.raises(MissingInput, match="the tamper stage"):
        compute_stage(plan.repair(cell), cell, data, Store(tmp_path / "empty"), CPU)
    assert not list((tmp_path / "empty").rglob("*.safetensors"))
