"""Every published table is rebuilt, byte for byte, from the records it ships: table.md is
`mcbench leaderboard show FOLDER --format md` (summary, barriers, weight attacks, every t
along the path) and table.csv is the same with `--format csv` (the summary)."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from mcbench.cli import cli

LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"
TABLES = sorted(p for p in LEADERBOARDS.iterdir() if (p / "records").is_dir())


def test_the_published_tables_are_found():
    assert {p.name for p in TABLES} >= {
        "backdoor-repair-cpu",
        "injection-repair-cpu",
        "evasion-path-cpu",
    }


@pytest.mark.parametrize("fmt, file", [("md", "table.md"), ("csv", "table.csv")])
@pytest.mark.parametrize("folder", TABLES, ids=lambda p: p.name)
def test_a_published_table_rebuilds_byte_for_byte(folder, fmt, file):
    result = CliRunner().invoke(cli, ["leaderboard", "show", str(folder), "--format", fmt])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == (folder / file).read_bytes()
