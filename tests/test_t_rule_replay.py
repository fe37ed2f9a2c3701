"""`mcbench leaderboard replay` on the published bonafide-rule tables: replayed at each
record's own tolerance, the rule picks the t the run reported; the best point with the
trigger in view is recomputed from the path by hand."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "mcbench", "leaderboard", "replay"]
TABLE = ROOT / "leaderboards" / "backdoor-repair-cpu-bonafide"
TABLES = [TABLE, ROOT / "leaderboards" / "backdoor-repair-cpu-anchored"]


def replay(*args: str, table: Path = TABLE) -> list[list[str]]:
    done = subprocess.run(
        [*COMMAND, str(table), *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("| ")][1:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


@pytest.mark.parametrize("table", TABLES, ids=lambda p: p.name)
def test_the_replay_at_the_records_tolerance_is_the_reported_t(table):
    records = [json.loads(p.read_text()) for p in sorted((table / "records").glob("*.json"))]
    assert records and all(r["t_rule"]["tolerance"] == 0.02 for r in records)
    differing = _differing_params([r["config"]["repair"]["params"] for r in records])
    expected = sorted(
        (
            _repair(r, differing),
            r["config"]["budget"],
            f"t={r['reported_t']:g}",
            _best(r["path"]),
        )
        for r in records
    )
    rows = replay("--tolerances", "0.02,0.5", table=table)
    assert len(rows) == len(records)
    chosen = sorted(
        (repair, int(budget), own.split(":")[0], best) for _, repair, budget, own, _, best in rows
    )
    assert chosen == expected
    assert all(row[3].endswith("*") and not row[4].endswith("*") for row in rows)


def _differing_params(params: list[dict]) -> list[str]:
    """The names of the repair parameters whose values differ among the records (a missing
    one, left out at its default, counts as "-")."""
    names = {name for p in params for name in p}
    return sorted(n for n in names if len({str(p.get(n, "-")) for p in params}) > 1)


def _repair(record: dict, differing: list[str]) -> str:
    """The row's repair label: "path", or "path(cutout=N,epochs=M)" naming the parameters
    that differ among the records."""
    if not differing:
        return "path"
    params = record["config"]["repair"]["params"]
    return "path(" + ",".join(f"{n}={params.get(n, '-')}" for n in differing) + ")"


def _best(path: list[dict]) -> str:
    """The highest clean accuracy among the interior points with attack success <= 10%."""
    best = None
    for point in path:
        if 0 < point["t"] < 1 and point["attack_success_rate"] <= 0.10:
            if best is None or point["clean_accuracy"] > best["clean_accuracy"]:
                best = point
    if best is None:
        return "none"
    return (
        f"t={best['t']:g}: {100 * best['clean_accuracy']:.1f} / "
        f"{100 * best['attack_success_rate']:.1f}"
    )


def test_bad_input_is_one_error_line_with_exit_code_2(tmp_path):
    cases = [
        ([str(tmp_path / "missing")], "no records folder"),
        ([str(ROOT / "leaderboards" / "evasion-path-cpu")], "no record whose t was chosen"),
        ([str(TABLE), "--tolerances", "0.02,-1"], "expected a fraction in [0, 1], got '-1'"),
        ([str(TABLE), "--asr", "nan"], "expected a fraction in [0, 1], got 'nan'"),
    ]
    for args, message in cases:
        done = subprocess.run([*COMMAND, *args], capture_output=True, text=True)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
        assert done.stdout == ""
