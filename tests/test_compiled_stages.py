"""--compile reaches what it says: the endpoints and the repairs whose class declares that it
compiles train through torch.compile; the curve and surface fits do not, and neither their
keys nor the record claim it."""

import pytest
import torch

from mcbench.bench.load import load_benchmark
from mcbench.cell.models import build_model
from mcbench.cell.stages.repair import repair_context
from mcbench.hashing import content_hash
from mcbench.run.data_cache import DatasetCache
from mcbench.run.record import base_record
from tests.conftest import TINY

CPU = torch.device("cpu")
REPAIRS = "    repairs: [{name: path, epochs: 1, batch_size: 32}, {name: finetune, epochs: 1}]\n"
BENCH = TINY.replace("    repairs: [{name: path, epochs: 2, batch_size: 32}]\n", REPAIRS).replace(
    "connections: [linear, bezier]", "connections: [bezier]"
)


def cells(registry, write_yaml, **compute):
    found = load_benchmark(write_yaml(BENCH), registry, device_type="cpu", compute=compute).cells
    return {cell.repair.name: cell for cell in found}


def test_the_curve_fit_keys_no_compilation_and_the_single_model_repairs_do(registry, write_yaml):
    plain = cells(registry, write_yaml)
    compiled = cells(registry, write_yaml, compile=True)
    bf16 = cells(registry, write_yaml, precision="bf16", compile=True)
    # the curve fit computes as without compile; it differs only in its compiled endpoints
    path = compiled["path"].repair_identity()
    assert "compute" not in path
    assert path == {**plain["path"].repair_identity(), "endpoints": path["endpoints"]}
    assert path["endpoints"] != plain["path"].repair_identity()["endpoints"]
    assert bf16["path"].repair_identity()["compute"] == {"precision": "bf16", "compile": False}
    # the endpoints and a compiled repair keep the keys they always had under compile
    compute = {"precision": "fp32", "compile": True}
    assert compiled["finetune"].repair_identity()["compute"] == compute
    assert compiled["finetune"].endpoint_identity("A")["compute"] == compute
    finetune = compiled["finetune"]
    endpoints = [finetune.attacked_key(role) for role in finetune.roles]
    expected = {**plain["finetune"].repair_identity(), "endpoints": endpoints, "compute": compute}
    assert finetune.repair_key() == content_hash(expected)


def test_the_record_names_the_stages_compiled(registry, write_yaml):
    compiled = cells(registry, write_yaml, compile=True)
    assert base_record(compiled["path"], CPU)["compiled"] == ["endpoint"]
    assert base_record(compiled["finetune"], CPU)["compiled"] == ["endpoint", "repair"]
    for cell in cells(registry, write_yaml).values():
        assert "compiled" not in base_record(cell, CPU)


@pytest.mark.parametrize("repair, compiles", [("path", False), ("finetune", True)])
def test_only_a_repair_that_compiles_trains_through_torch_compile(
    registry, write_yaml, tmp_path, monkeypatch, repair, compiles
):
    cell = cells(registry, write_yaml, compile=True)[repair]
    data = DatasetCache(None, tmp_path / "cache").load(cell.dataset)
    endpoints = tuple(build_model(cell, data, CPU).state_dict() for _ in cell.roles)
    bonafide = data.test.subset(torch.arange(32))
    ctx = repair_context(cell, endpoints, data, bonafide, CPU)
    assert ctx.compile is compiles and ctx.fit_options().compile is compiles
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model: compiled.append(model) or model)
    cell.repair.instance.fit(ctx)
    assert bool(compiled) is compiles
