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
    # fp32 rates say nothing of bf16 work: every stage of a bf16 run is left untimed
    bf16 = load_benchmark(more, registry, compute={"precision": "bf16"}).cells
    bf16_estimate = estimate(build_graph(list(bf16), Store(results)), results, device)
    assert bf16_estimate.timed == 0 and sum(bf16_estimate.untimed.values()) > 0


def test_every_endpoint_a_record_timed_counts_a_surfaces_third_too():
    from mcbench.run.estimate import _measured

    timings = {"endpoint_A_s": 1.0, "endpoint_B_s": 2.0, "endpoint_C_s": 3.0, "repair_s": 4.0}
    found = _measured({"timings": {**timings, "endpoints_s": 6.0}, "reused": ["endpoint B"]})
    assert sorted(found) == [("endpoint", 1.0), ("endpoint", 3.0), ("repair", 4.0)]
    # a record older than per-endpoint timings: its two endpoints' mean
    old = _measured({"timings": {"endpoints_s": 6.0, "evaluate_s": 5.0}, "reused": []})
    assert sorted(old) == [("endpoint", 3.0), ("endpoint", 3.0), ("evaluate", 5.0)]
