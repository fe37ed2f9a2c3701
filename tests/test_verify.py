"""`mcbench leaderboard verify`: a published row re-run from its record reproduces; a
changed number, a changed plugin or an unknown row is reported."""

import json

import pytest
import torch
from click.testing import CliRunner

from mcbench.bench.load import load_benchmark
from mcbench.cli import cli
from mcbench.results.verify import Tolerance, benchmark_document, reproduction, write_benchmark
from mcbench.run.record import base_record


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A 'published' folder: the tiny synthetic benchmark run once, records and all."""
    from tests.conftest import TINY

    folder = tmp_path_factory.mktemp("published")
    bench = folder / "bench.yaml"
    bench.write_text(TINY)
    result = CliRunner().invoke(
        cli, ["run", str(bench), "--results", str(folder), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    return folder


def records_of(folder):
    return {
        json.loads(p.read_text())["label"]: json.loads(p.read_text())
        for p in (folder / "records").glob("*.json")
    }


def test_the_rebuilt_benchmark_has_exactly_the_recorded_cell(published, registry, tmp_path):
    for record in records_of(published).values():
        file = write_benchmark(record, tmp_path / f"{record['cell_id']}.yaml")
        [cell] = load_benchmark(file, registry).cells
        assert cell.cell_id == record["cell_id"]
        assert cell.config() == record["config"]


def test_a_rerun_reproduces_and_a_changed_number_does_not(published, tmp_path):
    rerun = tmp_path / "rerun"
    args = [
        "leaderboard",
        "verify",
        str(published),
        "bezier",
        "--results",
        str(rerun),
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "reproduces" in result.output and "DOES NOT" not in result.output
    # nothing was reused from the published folder: the re-run trained its own endpoints
    assert list((rerun / "artifacts" / "endpoint").glob("*.safetensors"))

    [(label, record)] = [(k, v) for k, v in records_of(published).items() if "bezier" in k]
    again = json.loads((rerun / "records" / f"{record['cell_id']}.json").read_text())
    table = reproduction(record, again, Tolerance())
    assert table.ok.all() and len(table) == 3 * 3 + 2 * 3  # 3 points x 3 metrics, 2 endpoints
    assert set(table["where"]) == {"t=0", "t=0.5", "t=1", "endpoints A", "endpoints B"}

    record["path"][1]["clean_accuracy"] += 0.05  # 5 points off: beyond the 2-point tolerance
    record["path"][1]["loss"] *= 1.04  # 4% off: within the 5% tolerance
    (published / "records" / f"{record['cell_id']}.json").write_text(json.dumps(record))
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "DOES NOT reproduce: 14/15 values" in result.output
    assert "reusing the re-run already in" in result.output


def test_tolerance_in_points_and_relative():
    tol = Tolerance(points=0.02, relative=0.05)
    assert tol.allows(0.5, 0.519, percent=True)[1] and not tol.allows(0.5, 0.521, True)[1]
    assert tol.allows(2.0, 2.099, percent=False)[1] and not tol.allows(2.0, 2.11, False)[1]


def test_a_record_from_other_plugin_settings_is_refused(published, tmp_path):
    record = next(iter(records_of(published).values()))
    # a record written by another version of the repair plugin: its cell id differs
    record["config"]["repair"]["version"] = "mcbench==9.9"
    record["cell_id"] = "0123456789abcdef"
    folder = tmp_path / "edited"
    (folder / "records").mkdir(parents=True)
    (folder / "records" / f"{record['cell_id']}.json").write_text(json.dumps(record))
    result = CliRunner().invoke(
        cli,
        [
            "leaderboard",
            "verify",
            str(folder),
            record["cell_id"],
            "--results",
            str(tmp_path / "r"),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 2
    assert "builds a different cell" in result.output and "mcbench==9.9" in result.output


def test_an_edited_configuration_is_caught_by_its_cell_id(published, tmp_path):
    record = next(iter(records_of(published).values()))
    record["config"]["budget"] = 30
    folder = tmp_path / "edited"
    (folder / "records").mkdir(parents=True)
    (folder / "records" / f"{record['cell_id']}.json").write_text(json.dumps(record))
    result = CliRunner().invoke(
        cli,
        [
            "leaderboard",
            "verify",
            str(folder),
            record["cell_id"],
            "--results",
            str(tmp_path / "r"),
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 2 and "does not belong to it" in result.output


def test_unknown_row_lists_the_records(published, tmp_path):
    result = CliRunner().invoke(
        cli,
        ["leaderboard", "verify", str(published), "polychain", "--results", str(tmp_path / "r")],
    )
    assert result.exit_code == 2 and "no record matches" in result.output
    assert "bezier" in result.output


def test_benchmark_document_names_each_plugin_with_its_parameters(published):
    record = next(iter(records_of(published).values()))
    track = benchmark_document(record)["tracks"]["backdoor-repair"]
    assert track["attacks"] == [{"name": "badnets", **record["config"]["attack"]["params"]}]
    assert track["budgets"] == [40] and track["seeds"] == [0]


def test_every_published_record_rebuilds_to_its_own_cell(registry, tmp_path):
    """Each row in leaderboards/ can be verified by this mcbench: its record rebuilds to
    exactly its cell (backdoor, weight-attack and adversarial-training cells alike)."""
    from pathlib import Path

    folders = Path(__file__).resolve().parents[1] / "leaderboards"
    records = [json.loads(p.read_text()) for p in sorted(folders.glob("*/records/*.json"))]
    assert {r["config"]["track"] for r in records} == {
        "backdoor-repair",
        "injection-repair",
        "evasion-path",
    }
    for record in records:
        file = write_benchmark(record, tmp_path / f"{record['cell_id']}.yaml")
        # on a GPU too, where precision "auto" would mean bf16: the records computed in fp32
        for device_type in ("cpu", "cuda"):
            [cell] = load_benchmark(file, registry, device_type=device_type).cells
            assert cell.cell_id == record["cell_id"], record["label"]
            # and names the same artifacts the published record names
            keys = base_record(cell, torch.device("cpu"))["keys"]
            assert keys == record["keys"], record["label"]


def copies(published, tmp_path, labels):
    """The published records in a new folder with their budgets relabelled
    ({connection: "n=..."}), and a results folder already holding their re-runs."""
    folder, rerun = tmp_path / "published", tmp_path / "rerun"
    out = {}
    for sub in (folder, rerun):
        (sub / "records").mkdir(parents=True)
    for record in records_of(published).values():
        (rerun / "records" / f"{record['cell_id']}.json").write_text(json.dumps(record))
        connection = record["config"]["connection"]["name"]
        record["label"] = record["label"].replace("n=40", labels[connection])
        (folder / "records" / f"{record['cell_id']}.json").write_text(json.dumps(record))
        out[connection] = record
    return folder, rerun, out


def verify(folder, rerun, *rows):
    args = ["leaderboard", "verify", str(folder), *rows, "--results", str(rerun)]
    return CliRunner().invoke(cli, [*args, "--device", "cpu"])


def test_a_query_matches_whole_label_tokens_not_substrings(published, tmp_path):
    folder, rerun, records = copies(published, tmp_path, {"linear": "n=500", "bezier": "n=50"})
    result = verify(folder, rerun, "n=50")
    assert result.exit_code == 0, result.output
    assert records["bezier"]["cell_id"] in result.output
    assert records["linear"]["cell_id"] not in result.output and "n=500" not in result.output


def test_an_ambiguous_query_is_refused_with_its_candidates(published, tmp_path):
    folder, rerun, records = copies(published, tmp_path, {"linear": "n=500", "bezier": "n=50"})
    result = verify(folder, rerun, "path")
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "'path' matches 2 records" in result.output
    assert all(r["cell_id"] in result.output for r in records.values())
    assert "reproduces" not in result.output
    both = verify(folder, rerun, "path", "--all")
    assert both.exit_code == 0, both.output
    assert both.output.count(": reproduces: ") == 2


def test_a_rerun_without_any_value_is_a_verdict_not_a_traceback(published, tmp_path):
    folder, rerun, records = copies(published, tmp_path, {"linear": "n=40", "bezier": "n=40"})
    cell_id = records["bezier"]["cell_id"]
    again = json.loads((rerun / "records" / f"{cell_id}.json").read_text())
    for point in again["path"]:
        point.update({k: None for k in point if k not in ("t", "notes")})
    again["endpoints"] = {}
    (rerun / "records" / f"{cell_id}.json").write_text(json.dumps(again))
    result = verify(folder, rerun, cell_id)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1
    assert "DOES NOT reproduce: 0/15 values" in result.output

    # a published record with no value at all verifies nothing: not a pass
    published_record = records["bezier"]
    published_record["path"] = [{"t": p["t"]} for p in published_record["path"]]
    published_record["endpoints"] = {}
    (folder / "records" / f"{cell_id}.json").write_text(json.dumps(published_record))
    result = verify(folder, rerun, cell_id)
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1 and "no value to compare" in result.output


def test_select_rows_matches_whole_words_and_cell_id_prefixes():
    from mcbench.errors import ConfigError
    from mcbench.results.verify import select_rows

    records = [
        {"cell_id": f"{i}{budget}aaaa", "label": f"backdoor-repair path bezier n={budget} seed=0"}
        for i, budget in enumerate((50, 250, 500, 2500))
    ]
    by_budget = {r["label"].split()[3]: r for r in records}
    assert select_rows(records, ["n=250"]) == [by_budget["n=250"]]
    assert select_rows(records, ["bezier n=50"]) == [by_budget["n=50"]]
    assert select_rows(records, ["32500"]) == [by_budget["n=2500"]]  # first characters
    assert select_rows(records, ["n=2500", "n=50"]) == [by_budget["n=50"], by_budget["n=2500"]]
    with pytest.raises(ConfigError, match="'bezier' matches 4 records"):
        select_rows(records, ["bezier"])
    assert select_rows(records, ["bezier"], every=True) == records
    for nothing in ("n=5", "", "bezier n=100"):
        with pytest.raises(ConfigError, match="no record matches"):
            select_rows(records, [nothing])
