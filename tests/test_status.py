"""`mcbench status` on results folders built by hand: record counts, a run's cells and
state, stage locks, the JSON form, input errors, and no torch import."""

import json
import socket
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from mcbench.cli import cli
from mcbench.run import runlog
from mcbench.run.locks import StageLock, lock_path

KEY = "cd" * 32
STALE_KEY = "ef" * 32
CELLS = {"c-ok": "bezier seed=0", "c-failed": "bezier seed=1", "c-new": "linear seed=0"}
STAGES = {
    f"endpoint/{'a' * 64}": {
        "stage": "endpoint",
        "label": "A",
        "cells": list(CELLS),
        "stored": True,
    },
    f"endpoint/{'b' * 64}": {
        "stage": "endpoint",
        "label": "B",
        "cells": list(CELLS),
        "stored": False,
    },
    f"path/{'c' * 64}": {"stage": "path", "label": "p", "cells": ["c-ok"], "stored": False},
}
PLAN = {
    "file": "bench.yaml",
    "profile": "quick",
    "tracks": ["backdoor-repair"],
    "executor": "local",
    "workers": 2,
    "cells": CELLS,
    "stages": STAGES,
}


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    out = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def write_record(results, cell_id, status):
    record = {
        "schema": 2,
        "cell_id": cell_id,
        "status": status,
        "config": {},
        "label": CELLS.get(cell_id, cell_id),
    }
    if status == "failed":
        record["error"] = {"type": "RuntimeError", "message": "boom", "traceback": ""}
    path = results / "records" / f"{cell_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def write_run(results, run_id, started, **fields):
    """A run file as RunLog writes it, with the fields a test needs set by hand."""
    data = {
        "schema": runlog.SCHEMA,
        "run_id": run_id,
        "host": socket.gethostname(),
        "pid": dead_pid(),
        "started": started,
        "finished": None,
        "outcome": None,
        **PLAN,
        **fields,
    }
    path = results / "runs" / f"{run_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def status(*args):
    return CliRunner().invoke(cli, ["status", *map(str, args)])


def status_json(*args):
    result = status(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def results(tmp_path):
    write_record(tmp_path, "c-ok", "ok")
    write_record(tmp_path, "c-failed", "failed")
    write_record(tmp_path, "other", "ok")  # a record of a cell outside the run
    return tmp_path


def test_running_run_counts_its_cells(results):
    log = runlog.RunLog(results, PLAN)  # this process: its pid is alive
    report = status_json(results)
    run = report["run"]
    assert report["records"] == {"ok": 2, "failed": 1, "unreadable": 0, "unreadable_files": []}
    assert run["run_id"] == log.run_id
    assert run["state"] == "running"
    assert run["cells"] == {"total": 3, "done": 1, "failed": 1, "to_run": 1}
    assert run["failed_cells"] == [{"cell_id": "c-failed", "label": "bezier seed=1"}]
    assert run["to_run_cells"] == [{"cell_id": "c-new", "label": "linear seed=0"}]
    assert run["stages"] == {
        "endpoint": {"count": 2, "stored": 1},
        "path": {"count": 1, "stored": 0},
    }

    text = status(results)
    assert text.exit_code == 0, text.output
    assert "records: 2 ok, 1 failed" in text.stdout
    assert f"run {log.run_id}: running (pid " in text.stdout
    assert "cells: 3: 1 done, 1 failed, 1 to run" in text.stdout
    assert "failed: bezier seed=1 [c-failed]" in text.stdout
    assert "endpoint 2 (1 stored), path 1 (0 stored)" in text.stdout
    assert all(len(line) <= 100 for line in text.stdout.splitlines())


def test_finished_run_shows_its_outcome(results):
    log = runlog.RunLog(results, PLAN)
    log.finish(ran=1, reused=0, failed=1)
    report = status_json(results)
    assert report["run"]["state"] == "finished"
    assert report["run"]["outcome"] == {"ran": 1, "reused": 0, "failed": 1}
    assert report["run"]["cells"]["to_run"] == 1
    text = status(results).stdout
    assert f"run {log.run_id}: finished (ran 1, reused 0, failed 1)" in text
    assert ", finished after 0s" in text


def test_run_whose_process_is_gone_is_stopped(results):
    write_run(results, "20240101T000000Z-dead0000", started=time.time() - 30)
    report = status_json(results)
    assert report["run"]["state"] == "stopped"
    assert "stopped (killed or crashed" in status(results).stdout


def test_run_on_another_host_is_unknown(results):
    write_run(results, "20240101T000000Z-far00000", started=time.time(), host="elsewhere.invalid")
    assert status_json(results)["run"]["state"] == "unknown"
    assert "unknown (another host: elsewhere.invalid)" in status(results).stdout


def test_latest_run_by_default_and_run_picks_another(results):
    write_run(results, "20240101T000000Z-old00000", started=100.0, finished=200.0, cells={})
    write_run(results, "20240102T000000Z-new00000", started=300.0)
    report = status_json(results)
    assert report["run"]["run_id"] == "20240102T000000Z-new00000"
    assert report["runs"] == 2
    older = status_json(results, "--run", "20240101T000000Z-old00000")["run"]
    assert older["state"] == "finished"
    assert older["cells"] == {"total": 0, "done": 0, "failed": 0, "to_run": 0}


def test_unknown_run_is_an_error_listing_the_runs(results):
    write_run(results, "20240101T000000Z-only0000", started=100.0)
    result = status(results, "--run", "nope")
    assert result.exit_code == 2
    assert "'nope'" in result.stderr
    assert "20240101T000000Z-only0000" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_live_lock_listed_and_stale_lock_counted(results):
    stale = lock_path(results, "path", STALE_KEY)
    stale.parent.mkdir(parents=True)
    stale.write_text(
        json.dumps(
            {
                "owner": "gone",
                "host": socket.gethostname(),
                "pid": dead_pid(),
                "stage": "path",
                "key": STALE_KEY,
                "label": "old path",
                "worker": "w1",
                "started": time.time() - 500,
            }
        )
    )
    lock = StageLock(results, "endpoint", KEY, label="train A seed=0", worker="w0")
    assert lock.try_acquire()
    try:
        report = status_json(results)
        text = status(results).stdout
    finally:
        lock.release()
    assert report["stale_locks"] == 1
    [held] = report["locks"]
    assert held["label"] == "train A seed=0"
    assert held["key"] == KEY and held["worker"] == "w0" and held["stage"] == "endpoint"
    assert "locks: 1 held" in text
    [line] = [line for line in text.splitlines() if "train A seed=0" in line]
    assert line.split()[0] == "endpoint"
    assert KEY[:12] in line and KEY[:13] not in line
    assert "w0" in line and f"pid {held['pid']}" in line
    assert "1 stale lock left by dead processes: the next run will break it" in text
    assert "old path" not in text


def test_without_run_files_only_records_and_locks(results):
    report = status_json(results)
    assert report["schema"] == 1
    assert report["run"] is None
    assert report["records"]["ok"] == 2 and report["records"]["failed"] == 1
    assert report["locks"] == [] and report["stale_locks"] == 0
    text = status(results).stdout
    assert "run: none recorded" in text
    assert "locks: 0 held" in text


def test_empty_folder(tmp_path):
    report = status_json(tmp_path)
    assert report["records"] == {"ok": 0, "failed": 0, "unreadable": 0, "unreadable_files": []}
    assert report["run"] is None


def test_garbage_record_is_counted_unreadable(results):
    (results / "records" / "c-new.json").write_text("{not json")
    (results / "records" / "list.json").write_text("[1, 2]")
    (results / "records" / "bytes.json").write_bytes(b"\xff\xfe\x00")
    write_run(results, "20240101T000000Z-dead0000", started=time.time())
    report = status_json(results)
    assert report["records"]["ok"] == 2 and report["records"]["failed"] == 1
    assert report["records"]["unreadable"] == 3
    named = sorted(u["file"].rsplit("/", 1)[-1] for u in report["records"]["unreadable_files"])
    assert named == ["bytes.json", "c-new.json", "list.json"]
    assert report["run"]["cells"]["to_run"] == 1
    result = status(results)
    assert result.exit_code == 0, result.output
    assert "records: 2 ok, 1 failed, 3 unreadable" in result.stdout
    assert "c-new.json" in result.stdout
    assert "Traceback" not in result.output


def test_missing_folder_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "no-such-results"
    result = status(missing)
    assert result.exit_code == 2
    assert str(missing) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_file_instead_of_folder_is_an_error(tmp_path):
    file = tmp_path / "results.txt"
    file.write_text("")
    result = status(file)
    assert result.exit_code == 2
    assert str(file) in result.stderr


def test_unreadable_run_files_are_left_out(results):
    runlog.RunLog(results, PLAN)
    write_run(results, "20240101T000000Z-dead0000", started=50.0)
    (results / "runs" / "broken.json").write_text("{")
    (results / "runs" / "future.json").write_text(json.dumps({"schema": 99}))
    runs = runlog.read_runs(results)
    assert [r["started"] for r in runs][0] == 50.0 and len(runs) == 2


def test_status_imports_no_torch(results):
    write_run(results, "20240101T000000Z-dead0000", started=time.time())
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from mcbench.cli import cli\n"
        f"r = CliRunner().invoke(cli, ['status', {str(results)!r}, '--format', 'json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert not any(m.startswith('mcbench_plugins') for m in sys.modules), 'plugins'\n"
        "print(r.stdout)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["run"]["cells"]["total"] == 3
