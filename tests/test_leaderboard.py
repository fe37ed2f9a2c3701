"""Leaderboards from records alone: statistics checked by hand, no torch import."""

import json
import statistics
import subprocess
import sys

import pytest
from click.testing import CliRunner

from mcbench.cli import cli
from mcbench.leaderboard import build_tables, load_records, render


def record(cell_id, seed, connection, acc_mid, asr_mid, budget=500, depth=20, status="ok"):
    spec = lambda name, **params: {"name": name, "params": params, "version": "x"}
    return {
        "schema": 1, "cell_id": cell_id, "status": status, "label": cell_id,
        "config": {"track": "backdoor-repair", "dataset": spec("cifar10"),
                   "architecture": spec("preresnet", depth=depth),
                   "attack": spec("badnets", target=0), "repair": spec("path"),
                   "connection": spec(connection), "budget": budget, "seed": seed,
                   "metrics": [spec("clean_accuracy"), spec("attack_success_rate")]},
        "metric_info": {"clean_accuracy": {"percent": True},
                        "attack_success_rate": {"percent": True}},
        "reported_t": 0.5,
        "path": [{"t": 0.0, "clean_accuracy": 0.9, "attack_success_rate": 0.95},
                 {"t": 0.5, "clean_accuracy": acc_mid, "attack_success_rate": asr_mid},
                 {"t": 1.0, "clean_accuracy": 0.91, "attack_success_rate": 0.97}],
        "endpoints": {"A": {"clean_accuracy": 0.92, "attack_success_rate": 0.96 + seed / 100},
                      "B": {"clean_accuracy": 0.90, "attack_success_rate": 0.98}},
        "error": None if status == "ok" else {"type": "X", "message": "boom", "traceback": ""},
    }


@pytest.fixture
def results(tmp_path):
    rows = [record("a0", 0, "bezier", 0.85, 0.05), record("a1", 1, "bezier", 0.87, 0.03),
            record("a2", 2, "bezier", 0.80, 0.10), record("b0", 0, "linear", 0.40, 0.20),
            record("c0", 0, "bezier", 0.88, 0.02, depth=110),
            record("f0", 0, "bezier", 0.0, 0.0, status="failed")]
    (tmp_path / "records").mkdir()
    for r in rows:
        (tmp_path / "records" / f"{r['cell_id']}.json").write_text(json.dumps(r))
    return tmp_path


def test_summary_is_mean_and_std_over_seeds(results):
    ok, failed = load_records(results)
    assert len(ok) == 5 and [r["cell_id"] for r in failed] == ["f0"]
    summary = build_tables(ok)["summary"]
    row = summary[(summary.connection == "bezier") & (summary.architecture == "preresnet(depth=20)")]
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
    code = ("import sys; from mcbench.cli import cli\n"
            f"cli(['leaderboard', {str(results)!r}], standalone_mode=False)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "| bezier" in done.stdout
