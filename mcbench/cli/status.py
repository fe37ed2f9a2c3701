"""`mcbench status`: what a results folder holds and what its latest run still has to do.

It reads files alone (records, run plans, stage locks) and imports neither torch nor plugins,
so it answers at once, also while a run is computing in the same folder."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click

from mcbench.cli.common import fail
from mcbench.errors import ConfigError
from mcbench.results.record_reader import read_record
from mcbench.run.locks import DEFAULT_STALE_S, holder_alive_here, live_locks
from mcbench.run.runlog import RUNS_DIR, read_runs
from mcbench.vocabulary import STAGES

SCHEMA = 1
WIDTH = 100
LISTED = 10
STALE_ENV = "MCBENCH_LOCK_STALE_S"


def read_statuses(results: Path) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Each record's status ("ok" or "failed") by the name of its file, which is the cell id
    the runner looks it up by; and the files that are not readable records, each with why,
    so that one bad file is reported rather than stopping the whole status."""
    statuses: dict[str, str] = {}
    unreadable: list[dict[str, Any]] = []
    for path in sorted((results / "records").glob("*.json")):
        try:
            status = read_record(path)["status"]
        except ConfigError as e:
            unreadable.append({"file": str(path), "error": e.message})
            continue
        except (OSError, ValueError) as e:
            unreadable.append({"file": str(path), "error": f"{type(e).__name__}: {e}"})
            continue
        if status not in ("ok", "failed"):
            unreadable.append({"file": str(path), "error": f"status {status!r}"})
            continue
        statuses[path.stem] = status
    return statuses, unreadable


def run_state(run: dict[str, Any]) -> tuple[str, str]:
    """(state, words): finished, running, stopped (the process is gone without finishing)
    or unknown (a pid on another host says nothing here)."""
    if run.get("finished") is not None:
        outcome = run.get("outcome") or {}
        parts = [f"{k} {outcome[k]}" for k in ("ran", "reused", "failed") if k in outcome]
        return "finished", (f"finished ({', '.join(parts)})" if parts else "finished")
    alive = holder_alive_here({"host": run.get("host"), "pid": run.get("pid")})
    if alive is None:
        return "unknown", f"unknown (another host: {run.get('host')})"
    if alive:
        return "running", f"running (pid {run['pid']})"
    return "stopped", f"stopped (killed or crashed; pid {run.get('pid')} is gone)"


def summarize_run(run: dict[str, Any], statuses: dict[str, str]) -> dict[str, Any]:
    cells = run.get("cells") or {}
    grouped: dict[str, list[dict[str, Any]]] = {"done": [], "failed": [], "to_run": []}
    for cell_id, label in cells.items():
        status = statuses.get(cell_id)
        group = "done" if status == "ok" else "failed" if status == "failed" else "to_run"
        grouped[group].append({"cell_id": cell_id, "label": label})
    stages: dict[str, dict[str, int]] = {}
    for stage in (run.get("stages") or {}).values():
        kind = stages.setdefault(str(stage.get("stage")), {"count": 0, "stored": 0})
        kind["count"] += 1
        kind["stored"] += bool(stage.get("stored"))
    state, words = run_state(run)
    fields = ("run_id", "file", "profile", "tracks", "executor", "workers", "host", "pid")
    return {
        **{k: run.get(k) for k in fields},
        "started": run.get("started"),
        "finished": run.get("finished"),
        "outcome": run.get("outcome"),
        "state": state,
        "state_text": words,
        "cells": {"total": len(cells), **{k: len(v) for k, v in grouped.items()}},
        "failed_cells": grouped["failed"],
        "to_run_cells": grouped["to_run"],
        "stages": stages,
    }


def gather(results: Path, run_id: str | None) -> dict[str, Any]:
    statuses, unreadable = read_statuses(results)
    runs = read_runs(results)
    if run_id is not None:
        chosen = [r for r in runs if r.get("run_id") == run_id]
        if not chosen:
            known = ", ".join(str(r.get("run_id")) for r in runs) or "none"
            fail(f"no run {run_id!r} in {results / RUNS_DIR} (runs: {known})")
        run: dict[str, Any] | None = chosen[0]
    else:
        run = runs[-1] if runs else None
    try:
        stale_after_s = float(os.environ.get(STALE_ENV) or DEFAULT_STALE_S)
    except ValueError:
        fail(f"${STALE_ENV} must be a number of seconds, not {os.environ[STALE_ENV]!r}")
    locks = live_locks(results, stale_after_s)
    fields = ("stage", "label", "key", "worker", "host", "pid", "started", "age_s", "path")
    values = list(statuses.values())
    return {
        "schema": SCHEMA,
        "results": str(results),
        "records": {
            "ok": values.count("ok"),
            "failed": values.count("failed"),
            "unreadable": len(unreadable),
            "unreadable_files": unreadable,
        },
        "run": None if run is None else summarize_run(run, statuses),
        "runs": len(runs),
        "locks": [{k: lock.get(k) for k in fields} for lock in locks if lock["alive"]],
        "stale_locks": sum(not lock["alive"] for lock in locks),
    }


def text_lines(report: dict[str, Any]) -> list[str]:
    records = report["records"]
    lines = [f"results: {report['results']}"]
    counts = f"records: {records['ok']} ok, {records['failed']} failed"
    if records["unreadable"]:
        counts += f", {records['unreadable']} unreadable"
    lines.append(counts)
    lines += [f"  unreadable: {u['file']}: {u['error']}" for u in records["unreadable_files"]]
    run = report["run"]
    if run is None:
        lines.append("run: none recorded (no files in runs/)")
    else:
        lines += _run_lines(run, report["runs"])
    lines += _lock_lines(report["locks"], report["stale_locks"])
    return [_fit(line) for line in lines]


def _run_lines(run: dict[str, Any], runs: int) -> list[str]:
    older = f" ({runs - 1} older)" if runs > 1 else ""
    lines = [f"run {run['run_id']}{older}: {run['state_text']}"]
    how = [f"file {run['file']}"]
    if run.get("profile"):
        how.append(f"profile {run['profile']}")
    if run.get("tracks"):
        how.append(f"tracks {', '.join(map(str, run['tracks']))}")
    how.append(f"{run.get('executor')} x{run.get('workers')} on {run.get('host')}")
    lines.append("  " + ", ".join(how))
    if run.get("started"):
        when = f"  started {_when(run['started'])}"
        if run.get("finished") is not None:
            when += f", finished after {_duration(run['finished'] - run['started'])}"
        lines.append(when)
    cells = run["cells"]
    lines.append(
        f"  cells: {cells['total']}: {cells['done']} done, {cells['failed']} failed, "
        f"{cells['to_run']} to run"
    )
    for cell in run["failed_cells"][:LISTED]:
        lines.append(f"    failed: {cell['label']} [{cell['cell_id']}]")
    if len(run["failed_cells"]) > LISTED:
        lines.append(f"    ... and {len(run['failed_cells']) - LISTED} more failed")
    if run["stages"]:
        order = sorted(run["stages"], key=lambda k: STAGES.index(k) if k in STAGES else len(STAGES))
        kinds = [
            f"{kind} {run['stages'][kind]['count']} ({run['stages'][kind]['stored']} stored)"
            for kind in order
        ]
        lines.append(f"  stages at plan time: {', '.join(kinds)}")
    return lines


def _lock_lines(locks: list[dict[str, Any]], stale: int) -> list[str]:
    lines = [f"locks: {len(locks)} held"]
    rows = [
        [
            str(lock.get("stage")),
            str(lock.get("label") or "-"),
            str(lock.get("key"))[:12],
            str(lock.get("worker") or "-"),
            str(lock.get("host")),
            f"pid {lock.get('pid')}",
            _duration(lock.get("age_s") or 0),
        ]
        for lock in locks
    ]
    lines += _columns(rows, shrink=1)
    if stale:
        lines.append(
            f"  {stale} stale lock{'s' if stale != 1 else ''} left by dead processes: "
            f"the next run will break {'them' if stale != 1 else 'it'}"
        )
    return lines


def _columns(rows: list[list[str]], shrink: int) -> list[str]:
    """Rows as aligned columns within WIDTH, cutting column ``shrink`` (the label, the one
    that can be long) when they would not fit."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    excess = 2 + sum(widths) + 2 * (len(widths) - 1) - WIDTH
    if excess > 0:
        widths[shrink] = max(8, widths[shrink] - excess)
    lines = []
    for row in rows:
        cells = [_cut(cell, widths[i]).ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return lines


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _fit(line: str) -> str:
    return _cut(line, WIDTH)


def _when(stamp: float) -> str:
    ago = _duration(time.time() - stamp)
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(stamp))} ({ago} ago)"


def _duration(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


@click.command("status")
@click.argument("results", type=click.Path())
@click.option("--run", "run_id", default=None, metavar="RUN_ID", help="this run [default: latest]")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def status(results: str, run_id: str | None, fmt: str) -> None:
    """What RESULTS holds and what its latest run (or --run) still has to do: record
    counts, the run's cells done, failed and to run, whether it is still going, and the
    stage locks held now. Reads files only, so it is quick while a run computes."""
    folder = Path(results)
    if not folder.exists():
        fail(f"{results}: no such folder")
    if not folder.is_dir():
        fail(f"{results}: not a folder")
    report = gather(folder, run_id)
    if fmt == "json":
        click.echo(json.dumps(report, indent=1, sort_keys=True))
    else:
        click.echo("\n".join(text_lines(report)))
