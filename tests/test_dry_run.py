"""`mcbench run --dry-run`: the unique stages of the matrix and how many cells share them,
what is cached, and the compute left estimated from the records' timings."""

import json
import re
import statistics

import pytest
from click.testing import CliRunner

from mcbench.bench.load import load_benchmark
from mcbench.cli import cli
from mcbench.run.estimate import estimate, rates
from mcbench.run.graph import build_graph
from mcbench.run.store import Store
from tests.conftest import TINY


def dry_run(path, results):
    out = CliRunner().invoke(cli, ["run", str(path), "--results", str(results), "--dry-run"])
    assert out.exit_code == 0, out.output
    return out.output


def row(output: str, kind: str) -> list[str]:
    line = next(li for li in output.splitlines() if li.startswith(kind + " "))
    return line.split()


def test_dry_run_counts_unique_stages_and_estimates_from_records(write_yaml, tmp_path, registry):
    path = write_yaml(TINY.replace("budgets: [40]", "budgets: [40, 50]"))
    results = tmp_path / "results"
    before = dry_run(path, results)
    # 4 cells (2 connections x 2 budgets) share their 2 endpoints; nothing is cached
    assert row(before, "endpoint") == ["endpoint", "2", "4.0", "(max", "4)", "0", "2"]
    assert row(before, "repair")[1] == "4" and row(before, "evaluate")[1] == "4"
    assert "no estimate" in before

    args = ["run", str(path), "--results", str(results), "--cache-dir", str(tmp_path / "c")]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert "nothing left to compute" in dry_run(path, results)

    more = write_yaml(TINY.replace("budgets: [40]", "budgets: [40, 50, 60]"), "more.yaml")
    after = dry_run(more, results)
    assert row(after, "endpoint")[-2:] == ["2", "0"]  # cached, none to compute
    assert row(after, "repair")[-2:] == ["0", "2"]  # of the cells still to run
    found = re.search(r"estimated compute left on (.+): \d+m \d+s for (\d+) of (\d+) stages", after)
    assert found and found.group(2) == found.group(3) == "4"  # 2 repairs, 2 evaluations

    # the estimate: the records' median rates times the work left
    records = [json.loads(p.read_text()) for p in (results / "records").glob("*.json")]
    assert rates(results / "records")["__records__"] == len(records) == 4
    by = lambda key, **match: [  # noqa: E731
        r["timings"][key]
        for r in records
        if all((r["config"][k] or {}).get("name") == v for k, v in match.items())
    ]
    expected = (
        statistics.median(by("repair_s", connection="linear"))  # 2 epochs at its rate
        + statistics.median(by("repair_s", connection="bezier"))
        + 2 * statistics.median(by("evaluate_s"))
    )
    device = records[0]["provenance"]["device"]
    assert found.group(1) == device
    graph = build_graph(list(load_benchmark(more, registry).cells), Store(results))
    assert estimate(graph, results, device).seconds == pytest.approx(expected, rel=1e-9)
    assert estimate(graph, results, "another device").timed == 0
