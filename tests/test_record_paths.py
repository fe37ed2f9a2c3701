"""Identifiers read from records that become parts of paths: a cell id names the record's
file and, in `leaderboard verify`, the benchmark file and the re-run's record written under
--results; a stage key names an artifact. The reader refuses any that could name a path out
of its folder, and where mcbench names files after them they must be exactly what it writes
(``content_hash``: 16 lowercase hex digits)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mcbench.cli import cli
from mcbench.errors import ConfigError
from mcbench.hashing import content_hash
from mcbench.results.record_reader import from_json, load_records, read_record, written_id
from mcbench.results.records import NAME, WRITTEN_ID

LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"
PUBLISHED = sorted(LEADERBOARDS.glob("*/records/*.json"))
ESCAPES = ["../../x", "../x", "..", ".", "/tmp/x", "a/b", "a\\b", "", ".hidden", "x\n", "x\x00"]


def record(**changes) -> dict:
    raw = json.loads(PUBLISHED[0].read_text(encoding="utf-8"))
    return {**copy.deepcopy(raw), **changes}


def folder_with(tmp_path: Path, file_name: str, data: dict) -> tuple[Path, Path]:
    (tmp_path / "pub" / "records").mkdir(parents=True)
    file = tmp_path / "pub" / "records" / file_name
    file.write_text(json.dumps(data), encoding="utf-8")
    return tmp_path / "pub", file


def test_every_published_identifier_has_the_shape_mcbench_writes():
    assert PUBLISHED
    for file in PUBLISHED:
        raw = json.loads(file.read_text(encoding="utf-8"))
        assert WRITTEN_ID.fullmatch(raw["cell_id"]) and file.stem == raw["cell_id"]
        assert all(WRITTEN_ID.fullmatch(key) for key in raw["keys"].values()), file
        read_record(file, need="rerun")  # the strictest reading


@pytest.mark.parametrize("value", [{}, {"a": [1, 2]}, "x", 0, [None, 1.5]])
def test_content_hash_makes_written_identifiers(value):
    assert WRITTEN_ID.fullmatch(content_hash(value))
    assert written_id(content_hash(value)) == content_hash(value)


@pytest.mark.parametrize("cell_id", ESCAPES + [7, None, ["a"], "x" * 65])
@pytest.mark.parametrize("need", ["record", "tables", "rerun"])
def test_a_cell_id_that_is_no_file_name_is_refused(cell_id, need):
    with pytest.raises(ConfigError) as e:
        from_json(record(cell_id=cell_id), "r.json", need=need)
    assert str(e.value).startswith("r.json: cell_id: ")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("key", ESCAPES + [3, None])
def test_a_stage_key_that_is_no_file_name_is_refused(key):
    data = record()
    data["keys"]["repair"] = key
    with pytest.raises(ConfigError, match="keys.repair"):
        from_json(data, "r.json", need="tables")


@pytest.mark.parametrize("name", ["a0", "c-ok", "p0.1", "linear-500-0", "F_1"])
def test_hand_made_names_read_for_the_tables(name):
    """Tests and examples name records a0 or linear-500-0: safe, so they read; only what
    names the files of a re-run needs the written shape."""
    assert NAME.fullmatch(name)
    assert from_json(record(cell_id=name), "r.json", need="tables")["cell_id"] == name
    with pytest.raises(ConfigError, match="16 lowercase hex digits"):
        from_json(record(cell_id=name), "r.json", need="rerun")


@pytest.mark.parametrize("cell_id", ["0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0"])
def test_a_rerun_needs_exactly_sixteen_lowercase_hex_digits(cell_id):
    with pytest.raises(ConfigError, match="cell_id"):
        from_json(record(cell_id=cell_id), "r.json", need="rerun")
    with pytest.raises(ConfigError, match="16 lowercase hex digits"):
        written_id(cell_id)


def test_a_record_under_another_name_is_refused(tmp_path):
    data = record()
    folder, file = folder_with(tmp_path, "0000000000000000.json", data)
    with pytest.raises(ConfigError) as e:
        load_records(folder)
    assert str(file) in str(e.value) and f"{data['cell_id']}.json" in str(e.value)


def nothing_written_beside(tmp_path: Path, inputs: set[Path]) -> None:
    found = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert found == inputs, found - inputs


@pytest.mark.parametrize("cell_id", ["../../x", "../escaped", "/tmp/mcbench-escaped", "a0"])
def test_verify_refuses_a_cell_id_before_writing_anything(tmp_path, cell_id):
    """`leaderboard verify` names the benchmark file it writes after the cell id: one that
    is not a written id is refused (naming the file) before anything is written."""
    folder, file = folder_with(tmp_path, "0123456789abcdef.json", record(cell_id=cell_id))
    result = CliRunner().invoke(
        cli,
        ["leaderboard", "verify", str(folder), "0", "--results", str(tmp_path / "r")],
    )
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert str(file) in line and "cell_id" in line
    nothing_written_beside(tmp_path, {file})
    assert not Path("/tmp/mcbench-escaped.yaml").exists()


def test_verify_refuses_a_stage_key_that_escapes(tmp_path):
    data = record()
    data["keys"]["repair"] = "../../repair"
    folder, file = folder_with(tmp_path, f"{data['cell_id']}.json", data)
    result = CliRunner().invoke(
        cli,
        ["leaderboard", "verify", str(folder), data["cell_id"], "--results", str(tmp_path / "r")],
    )
    assert result.exit_code == 2, result.output
    assert str(file) in result.stderr and "keys.repair" in result.stderr
    nothing_written_beside(tmp_path, {file})


@pytest.mark.parametrize("command", [["leaderboard"], ["plot"]])
def test_the_tables_and_figures_refuse_an_escaping_cell_id_too(tmp_path, command):
    folder, file = folder_with(tmp_path, "x.json", record(cell_id="../x"))
    result = CliRunner().invoke(cli, [*command, str(folder)])
    assert result.exit_code == 2, result.output
    assert str(file) in result.stderr and "cell_id" in result.stderr
