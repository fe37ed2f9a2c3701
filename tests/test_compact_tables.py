"""What `mcbench run` prints at the end: per track a table of its own columns that fits a
120-column terminal, checked on the published records; every table in full under
RESULTS/tables."""

import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mcbench.cli.run_tables import print_run_tables
from mcbench.results.compact import WIDTH, compact_tables
from mcbench.results.leaderboard import build_tables
from mcbench.results.record_reader import load_records
from mcbench.results.records import metric_info

LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The records of the cpu profile's tables (leaderboards/*-cpu), in one results folder:
    every track, one attack setting and one seed each."""
    folder = tmp_path_factory.mktemp("published")
    (folder / "records").mkdir()
    for record in LEADERBOARDS.glob("*-cpu/records/*.json"):
        shutil.copy(record, folder / "records" / record.name)
    return folder


def _rows(markdown: str) -> list[dict]:
    lines = markdown.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [
        dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]
    ]


def test_each_track_fits_and_shows_only_its_own_columns(published):
    records, _ = load_records(published)
    tables = build_tables(records)
    compact = compact_tables(tables["summary"], metric_info(records))
    assert [c.track for c in compact] == sorted({r["config"]["track"] for r in records})
    for table in compact:
        assert max(len(line) for line in table.table.splitlines()) <= WIDTH
        rows = _rows(table.table)
        mine = [r for r in records if r["config"]["track"] == table.track]
        header = set(rows[0])
        assert not header & set(table.shared), "a shared value is also a column"
        for column in header:  # no column without a value in this track
            assert any(row[column] not in ("", "-") for row in rows), column
        other_metrics = {
            m.get("label") or m["name"]
            for r in records
            if r["config"]["track"] != table.track
            for m in r["config"]["metrics"]
        } - {m.get("label") or m["name"] for r in mine for m in r["config"]["metrics"]}
        assert not any(c.removesuffix(" %") in other_metrics for c in header)


def test_the_numbers_are_the_records(published):
    records, _ = load_records(published)
    compact = compact_tables(build_tables(records)["summary"], metric_info(records))
    backdoor = next(c for c in compact if c.track == "backdoor-repair")
    assert backdoor.shared["dataset"] == "cifar10" and backdoor.shared["seeds"] == "1"
    for record in records:
        config = record["config"]
        if config["track"] != "backdoor-repair" or config["repair"]["name"] != "path":
            continue
        point = next(p for p in record["path"] if p["t"] == record["reported_t"])
        (row,) = [
            r
            for r in _rows(backdoor.table)
            if r["connection"] == config["connection"]["name"]
            and r["budget"] == str(config["budget"])
            and r["repair"].startswith("path")
        ]
        for metric in ("clean_accuracy", "attack_success_rate"):
            assert float(row[f"{metric} %"]) == pytest.approx(100 * point[metric], abs=0.05)


def test_a_run_writes_every_table_and_prints_where(published):
    ids = [p.stem for p in (published / "records").glob("*.json")]
    result = CliRunner().invoke(click.command()(lambda: print_run_tables(str(published), ids)))
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if str(published) not in line]
    assert max(len(line) for line in lines) <= WIDTH
    for track in ("backdoor-repair", "injection-repair", "evasion-path"):
        assert f"\n## {track} (" in result.output
    assert "pearson" in result.output  # the evasion track's finding, along the path
    written = sorted(p.name for p in (published / "tables").iterdir())
    assert written == sorted(f"{n}.{f}" for n in ("summary", "path", "barriers", "tamper")
                             for f in ("md", "csv"))  # fmt: skip
    assert f"Markdown and CSV):\n  {published / 'tables'}\n" in result.output
    summary_csv = (published / "tables" / "summary.csv").read_text().splitlines()
    assert len(summary_csv) == 1 + len(build_tables(load_records(published)[0])["summary"])
    # the plots, drawn from the same records: one path figure per path group at least
    plots = sorted(p.name for p in (published / "plots").iterdir())
    assert plots and all(name.endswith(".png") for name in plots)
    assert any(name.startswith("path--evasion-path") for name in plots)
    assert f"SVG too):\n  {published / 'plots'}\n" in result.output
