"""The record schema: written in one place (schema 3), read through one reader that
still reads the published schema-1 records and refuses any other schema by name."""

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from mcbench.bench.load import load_benchmark
from mcbench.cli import cli
from mcbench.errors import ConfigError
from mcbench.results.record_reader import from_json, load_records, read_record
from mcbench.results.records import SCHEMA
from mcbench.run.record import base_record, failed_record, finished_record

LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"

EVASION_AND_INJECTION = """\
version: 1
tracks:
  injection-repair:
    datasets: [{name: synthetic, num_classes: 4, image_size: 16, train_per_class: 32, test_per_class: 20}]
    architectures: [{name: convnet, widths: [8, 16]}]
    attacks: [{name: gda, targets: 2}]
    repairs: [{name: path, epochs: 1}]
    connections: [bezier]
    budgets: [20]
    seeds: [0]
    metrics: [clean_accuracy, loss, adversarial_loss, input_hessian_eig]
    split: {defender_pool: 40}
    train: {epochs: 1}
"""


def minimal(**changes):
    return {"schema": 1, "cell_id": "c", "status": "ok", "config": {"attack": None}, **changes}


@pytest.mark.parametrize("schema", [4, 0, "2"])
def test_an_unknown_schema_is_refused_naming_the_file(tmp_path, schema):
    (tmp_path / "records").mkdir()
    file = tmp_path / "records" / "c.json"
    file.write_text(json.dumps(minimal(schema=schema)))
    with pytest.raises(ConfigError) as e:
        load_records(tmp_path)
    assert str(file) in str(e.value) and "reads record schemas 1, 2, 3" in str(e.value)
    result = CliRunner().invoke(cli, ["leaderboard", str(tmp_path)])
    assert result.exit_code == 2 and f"record schema {schema!r}" in result.output


def test_a_record_without_a_schema_is_refused():
    record = minimal()
    del record["schema"]
    with pytest.raises(ConfigError, match="no schema field"):
        from_json(record, "x.json")


def test_every_published_record_reads_with_the_values_of_schema_1():
    """The published records of schema 1: the reader fills what schema 2 added with the
    values mcbench then gave its built-in plugins, read off the raw JSON here."""
    files = sorted(LEADERBOARDS.glob("*/records/*.json"))
    old = [f for f in files if json.loads(f.read_text())["schema"] == 1]
    assert len(old) >= 59  # the tables as first published; later rows are schema 2
    for file in files:
        assert read_record(file)["schema"] in (1, 2)
    for file in old:
        raw = json.loads(file.read_text())
        assert "attack_info" not in raw
        record = read_record(file)
        for key, info in record["metric_info"].items():
            name, percent = raw["metric_info"][key]["name"], raw["metric_info"][key]["percent"]
            expected = "right" if name == "input_hessian_eig" else "top" if percent else "bottom"
            assert info["plot_axis"] == expected, (file, key)
            correlated = ["input_hessian_eig"] if name == "adversarial_loss" else []
            assert info["correlate_with"] == correlated
        attack = raw["config"]["attack"]
        if attack is None:
            assert record["attack_info"] is None
        else:
            assert record["attack_info"]["name"] == attack["name"]
            figures = record["attack_info"]["report_figures"]
            if "tamper" in raw:  # every figure a weight attack of schema 1 could show
                assert {"targets_flipped", "steps", "raise", "flips"} <= set(figures)
            else:
                assert figures == []


def test_the_record_written_is_schema_3_and_says_what_each_plugin_declares(registry, tmp_path):
    from mcbench_plugins.attacks.gda import GradientDescentAttack
    from mcbench_plugins.metrics.adversarial_loss import AdversarialLoss

    file = tmp_path / "bench.yaml"
    file.write_text(EVASION_AND_INJECTION)
    [cell] = load_benchmark(file, registry).cells
    base = base_record(cell, torch.device("cpu"))
    record = finished_record(base, {"path": [], "reported_t": 0.5}, seconds=2.5)
    again = from_json(json.loads(json.dumps(record)), "written.json")
    assert again["schema"] == SCHEMA == 3 and again["status"] == "ok" and again["seconds"] == 2.5
    info = again["metric_info"]
    assert info["clean_accuracy"]["plot_axis"] == "top"  # a percentage, nothing declared
    assert info["loss"]["plot_axis"] == "bottom"
    assert info["input_hessian_eig"]["plot_axis"] == "right"
    assert info["adversarial_loss"]["correlate_with"] == list(AdversarialLoss.correlate_with)
    assert again["attack_info"] == {
        "name": "gda",
        "report_figures": list(GradientDescentAttack.report_figures),
    }
    assert {"targets_flipped", "steps"} <= set(again["attack_info"]["report_figures"])

    try:
        raise RuntimeError("out of memory")
    except RuntimeError as e:
        failed = failed_record(base, e, seconds=1.0)
    assert failed["status"] == "failed" and failed["error"]["type"] == "RuntimeError"
    assert failed["error"]["message"] == "out of memory"
    assert "raise RuntimeError" in failed["error"]["traceback"]
