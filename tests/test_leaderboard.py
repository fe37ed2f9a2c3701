"""Leaderboards from records alone: statistics checked by hand, no torch import."""

import json
import math
import statistics
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mcbench.cli import cli
from mcbench.results.format import render
from mcbench.results.labels import plugin_labels
from mcbench.results.leaderboard import build_tables
from mcbench.results.record_reader import from_json, load_records


def record(cell_id, seed, connection, acc_mid, asr_mid, budget=500, depth=20, status="ok"):
    spec = lambda name, **params: {"name": name, "params": params, "version": "x"}
    return {
        "schema": 1,
        "cell_id": cell_id,
        "status": status,
        "label": cell_id,
        "config": {
            "track": "backdoor-repair",
            "dataset": spec("cifar10"),
            "architecture": spec("preresnet", depth=depth),
            "attack": spec("badnets", target=0),
            "repair": spec("path"),
            "connection": spec(connection),
            "budget": budget,
            "seed": seed,
            "metrics": [spec("clean_accuracy"), spec("attack_success_rate")],
        },
        "metric_info": {
            "clean_accuracy": {"percent": True},
            "attack_success_rate": {"percent": True},
        },
        "reported_t": 0.5,
        "path": [
            {"t": 0.0, "clean_accuracy": 0.9, "attack_success_rate": 0.95},
            {"t": 0.5, "clean_accuracy": acc_mid, "attack_success_rate": asr_mid},
            {"t": 1.0, "clean_accuracy": 0.91, "attack_success_rate": 0.97},
        ],
        "endpoints": {
            "A": {"clean_accuracy": 0.92, "attack_success_rate": 0.96 + seed / 100},
            "B": {"clean_accuracy": 0.90, "attack_success_rate": 0.98},
        },
        "error": None if status == "ok" else {"type": "X", "message": "boom", "traceback": ""},
    }


@pytest.fixture
def results(tmp_path):
    rows = [
        record("a0", 0, "bezier", 0.85, 0.05),
        record("a1", 1, "bezier", 0.87, 0.03),
        record("a2", 2, "bezier", 0.80, 0.10),
        record("b0", 0, "linear", 0.40, 0.20),
        record("c0", 0, "bezier", 0.88, 0.02, depth=110),
        record("f0", 0, "bezier", 0.0, 0.0, status="failed"),
    ]
    (tmp_path / "records").mkdir()
    for r in rows:
        (tmp_path / "records" / f"{r['cell_id']}.json").write_text(json.dumps(r))
    return tmp_path


def test_summary_is_mean_and_std_over_seeds(results):
    ok, failed = load_records(results)
    assert len(ok) == 5 and [r["cell_id"] for r in failed] == ["f0"]
    summary = build_tables(ok)["summary"]
    row = summary[
        (summary.connection == "bezier") & (summary.architecture == "preresnet(depth=20)")
    ]
    assert len(row) == 1 and int(row.seeds.iloc[0]) == 3
    accs = [0.85, 0.87, 0.80]
    assert row["clean_accuracy_mean"].iloc[0] == pytest.approx(statistics.mean(accs))
    assert row["clean_accuracy_std"].iloc[0] == pytest.approx(statistics.stdev(accs))
    ends = [statistics.mean([0.96 + s / 100, 0.98]) for s in range(3)]
    assert row["endpoints:attack_success_rate_mean"].iloc[0] == pytest.approx(statistics.mean(ends))
    # single-seed rows report a std of 0, and differing parameters are shown in the label
    assert set(summary.architecture) == {"preresnet(depth=20)", "preresnet(depth=110)"}


def test_along_path_table_has_every_t(results):
    ok, _ = load_records(results)
    path = build_tables(ok)["path"]
    rows = path[(path.connection == "linear")]
    assert list(rows.t) == [0.0, 0.5, 1.0]
    assert list(rows.clean_accuracy_mean) == pytest.approx([0.9, 0.40, 0.91])


def test_formats(results):
    ok, _ = load_records(results)
    summary = build_tables(ok)["summary"]
    md = render(summary, {"clean_accuracy": {"percent": True}}, "md")
    assert "84.0 ± 3.6" in md  # mean 0.84, stdev 0.0361 of [0.85, 0.87, 0.80]
    assert "| 88.0 " in md and "88.0 ±" not in md  # one seed: no spread to show
    csv = render(summary, {}, "csv")
    assert csv.splitlines()[0].startswith("track,dataset,architecture")
    assert "<table" in render(summary, {}, "html")


def test_cli_leaderboard_reports_failed_cells(results):
    out = CliRunner().invoke(cli, ["leaderboard", str(results)])
    assert out.exit_code == 0
    assert "failed: f0" in out.output and "| bezier" in out.output
    missing = CliRunner().invoke(cli, ["leaderboard", str(results / "nope")])
    assert missing.exit_code == 2 and "no records folder" in missing.output


def test_leaderboard_never_imports_torch(results):
    code = (
        "import sys; from mcbench.cli import cli\n"
        f"cli(['leaderboard', {str(results)!r}], standalone_mode=False)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "| bezier" in done.stdout


def test_weight_attacks_show_the_untampered_endpoints_and_one_tamper_row_per_endpoint():
    rows = []
    for cell, connection in (("i0", "bezier"), ("i1", "linear")):  # same tampered endpoints
        r = record(cell, 0, connection, 0.7, 0.1)
        r["config"]["track"] = "injection-repair"
        r["config"]["attack"] = {"name": "gda", "params": {}, "version": "x"}
        r["untampered"] = {
            "A": {"clean_accuracy": 0.80, "attack_success_rate": 0.0},
            "B": {"clean_accuracy": 0.76, "attack_success_rate": 0.0},
        }
        r["keys"] = {"tamper_A": "ka", "tamper_B": "kb"}
        r["tamper"] = {
            role: {
                "size": {"l0": 10 + i, "l2": 1.5, "linf": 0.25, "changed": ["8.weight"]},
                "targets_flipped": 1.0,
                "steps": 40 + i,
                "seconds": 0.5,
            }
            for i, role in enumerate("AB")
        }
        rows.append(from_json(r))  # a schema-1 record: gda's figures are filled in
    tables = build_tables(rows)
    summary = tables["summary"]
    assert summary["untampered:clean_accuracy_mean"].tolist() == pytest.approx([0.78, 0.78])
    tamper = tables["tamper"]
    assert tamper[["endpoint", "L0", "steps"]].values.tolist() == [["A", 10, 40], ["B", 11, 41]]
    text = render(tamper, {}, "md")
    assert "targets_flipped" in text and "| gda " in text


def test_barrier_heights_and_the_loss_eigenvalue_correlation_against_hand_figures():
    import numpy as np

    r = record("e0", 0, "bezier", 0.5, 0.1)
    r["config"]["track"] = "evasion-path"
    r["config"]["metrics"] = [
        {"name": "clean_accuracy", "params": {}},
        {"name": "adversarial_loss", "params": {}},
        {"name": "input_hessian_eig", "params": {}},
    ]
    r["metric_info"] = {
        "clean_accuracy": {"percent": True, "higher_is_better": True},
        "adversarial_loss": {"higher_is_better": False},
        "input_hessian_eig": {"higher_is_better": False},
    }
    loss, eig = [1.0, 3.0, 2.0], [10.0, 30.0, 25.0]
    r["path"] = [
        {"t": t, "clean_accuracy": a, "adversarial_loss": l, "input_hessian_eig": e}
        for t, a, l, e in zip((0.0, 0.5, 1.0), (0.9, 0.5, 0.8), loss, eig)
    ]
    table = build_tables([from_json(r)])["barriers"]
    # interpolation at t=0.5: accuracy 0.85 (path 0.5), loss 1.5 (path 3.0)
    assert table["barrier:clean_accuracy_mean"].iloc[0] == pytest.approx(0.35)
    assert table["barrier:adversarial_loss_mean"].iloc[0] == pytest.approx(1.5)
    assert table["barrier:input_hessian_eig_mean"].iloc[0] == pytest.approx(12.5)
    assert table["pearson_mean"].iloc[0] == pytest.approx(np.corrcoef(loss, eig)[0, 1])
    # a path never worse than the interpolation has no barrier
    r["path"][1].update(clean_accuracy=0.95, adversarial_loss=1.2, input_hessian_eig=12.0)
    assert build_tables([from_json(r)])["barriers"]["barrier:adversarial_loss_mean"].iloc[0] == 0.0


def test_labels_when_a_plugin_gained_a_parameter_between_records():
    """An older record of a plugin (without a parameter added since) beside a newer one:
    the parameter that tells them apart is shown, '-' where a record lacks it."""
    older, newer = record("old", 0, "bezier", 0.8, 0.1), record("new", 0, "bezier", 0.7, 0.2)
    older["config"]["repair"]["params"] = {"epochs": 40}
    newer["config"]["repair"]["params"] = {"epochs": 40, "warmup": 5}
    labels = plugin_labels([older, newer])["repair"]
    assert labels == {"old": "path(warmup=-)", "new": "path(warmup=5)"}
    summary = build_tables([older, newer])["summary"]
    assert dict(zip(summary.repair, summary.clean_accuracy_mean)) == {
        "path(warmup=-)": 0.8,
        "path(warmup=5)": 0.7,
    }


def test_a_weight_attack_shows_the_figures_it_declares():
    """Schema 2: the tamper table's figures are those in the record's attack_info."""
    r = record("w0", 0, "bezier", 0.7, 0.1)
    r.update(schema=2, keys={"tamper_A": "ka", "tamper_B": "kb"})
    r["config"]["attack"] = {"name": "my_attack", "params": {}, "version": "x"}
    r["attack_info"] = {"name": "my_attack", "report_figures": ["rounds"]}
    report = {"size": {"l0": 3, "l2": 0.5, "linf": 0.1}, "rounds": 7, "steps": 99}
    r["tamper"] = {"A": dict(report), "B": {**report, "rounds": 8}}
    tamper = build_tables([from_json(r)])["tamper"]
    assert tamper["rounds"].tolist() == [7, 8]
    assert "steps" not in tamper  # reported, not declared


def test_the_correlation_is_between_the_metrics_that_declare_it():
    """Schema 2: a metric names the metrics it is correlated with along t."""
    r = record("e0", 0, "bezier", 0.5, 0.1)
    r.update(schema=2, reported_t=0.6)
    r["config"]["metrics"] = [{"name": m, "params": {}} for m in ("sharpness", "adv", "other")]
    r["metric_info"] = {
        "sharpness": {"name": "sharpness", "correlate_with": ["adv"], "higher_is_better": False},
        "adv": {"name": "adv", "correlate_with": [], "higher_is_better": False},
        "other": {"name": "other", "correlate_with": [], "higher_is_better": False},
    }
    sharp, adv, other = [1.0, 4.0, 2.0, 0.5], [2.0, 5.0, 5.0, 1.0], [0.0, 1.0, 0.0, 1.0]
    r["path"] = [
        {"t": t, "sharpness": s, "adv": a, "other": o}
        for t, s, a, o in zip((0.0, 0.3, 0.6, 1.0), sharp, adv, other)
    ]
    barriers = build_tables([from_json(r)])["barriers"]
    # Pearson r by hand: means 1.875 and 3.25
    ds, da = [x - 1.875 for x in sharp], [x - 3.25 for x in adv]
    r_hand = sum(a * b for a, b in zip(ds, da)) / (
        sum(a * a for a in ds) ** 0.5 * sum(b * b for b in da) ** 0.5
    )
    assert barriers["pearson_mean"].iloc[0] == pytest.approx(r_hand)
    assert not [c for c in barriers.columns if "other" in c and c.startswith("pearson")]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.floats(-1e6, 1e6)),
            st.one_of(st.none(), st.floats(-1e6, 1e6)),
        ),
        max_size=12,
    )
)
@example([(0.0, 0.0), (1.0, 1.7672312779694113e-192)])  # squared deviations underflow
def test_pearson_is_what_pandas_computes(pairs):
    from mcbench.results.leaderboard import _pearson

    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    expected = pd.Series(a, dtype=float).corr(pd.Series(b, dtype=float))
    got = _pearson(a, b)
    if math.isnan(expected):  # fewer than two points, or a constant series
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected, abs=1e-6)


def test_json_tables_hold_the_records_numbers():
    import io

    published = "leaderboards/backdoor-repair-cpu"
    result = CliRunner().invoke(cli, ["leaderboard", published, "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["schema"] == 1 and document["failed"] == []
    assert set(document["tables"]) == {"summary", "barriers", "path"}
    summary = document["tables"]["summary"]
    csv = CliRunner().invoke(cli, ["leaderboard", published, "--format", "csv"]).output
    expected = pd.read_csv(io.StringIO(csv), keep_default_na=False, na_values=[""])
    assert summary["columns"] == list(expected.columns)
    assert len(summary["rows"]) == len(expected)
    for row, (_, want) in zip(summary["rows"], expected.iterrows()):
        for column in summary["columns"]:
            value, other = row[column], want[column]
            if isinstance(other, float) and math.isnan(other):
                assert value is None, column
            elif isinstance(value, float):
                assert value == pytest.approx(other, rel=1e-12), column
            else:
                assert str(value) == str(other), column
    # one number straight from a record: its clean accuracy at the reported t
    records, _ = load_records(published)
    record = next(r for r in records if r["config"]["repair"]["name"] == "path")
    point = next(p for p in record["path"] if p["t"] == record["reported_t"])
    rows = [
        r
        for r in summary["rows"]
        if r["repair"] == "path"
        and r["budget"] == record["config"]["budget"]
        and r["connection"] == record["config"]["connection"]["name"]
    ]
    assert len(rows) == 1 and rows[0]["seeds"] == 1
    assert rows[0]["clean_accuracy_mean"] == pytest.approx(point["clean_accuracy"], abs=1e-12)
    assert document["metrics"]["clean_accuracy"]["percent"] is True
