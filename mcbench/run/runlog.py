"""The plan of a run, written before anything computes and finished when it ends, so that
``mcbench status`` can say what a run still has to do without importing torch:

    RESULTS/runs/<run_id>.json
        schema: 1
        run_id, file, profile, tracks, executor, workers, host, pid
        started: unix time; finished: unix time, or null while it runs (or if it was killed)
        cells: {cell_id: label}              every cell of the file the run was asked for
        stages: {"<stage>/<key>": {"stage", "label", "cells": [cell ids], "stored": bool}}
        outcome: null, or {"ran": n, "reused": n, "failed": n} once it finished
        timings: null, or once it finished {"data_load_s": seconds this process spent
            reading datasets, "stages": {"<stage>/<key>": {"seconds", "computed", "ok"}}}
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path

RUNS_DIR = "runs"
SCHEMA = 1


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


class RunLog:
    def __init__(self, results: str | Path, plan: dict):
        self.run_id = new_run_id()
        self.path = Path(results) / RUNS_DIR / f"{self.run_id}.json"
        self.data = {
            "schema": SCHEMA,
            "run_id": self.run_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.time(),
            "finished": None,
            "outcome": None,
            "timings": None,
            **plan,
        }
        self._write()

    def _write(self) -> None:
        from mcbench.run.store import atomic_write_json  # torch: status reads runs without it

        atomic_write_json(self.path, self.data)

    def finish(self, ran: int, reused: int, failed: int, timings: dict | None = None) -> None:
        self.data.update(
            finished=time.time(),
            outcome={"ran": ran, "reused": reused, "failed": failed},
            timings=timings,
        )
        self._write()


def read_runs(results: str | Path) -> list[dict]:
    """Every run's plan in RESULTS/runs, oldest first; files that cannot be read are
    left out (a run killed while writing leaves none: the write is atomic)."""
    runs = []
    for path in sorted((Path(results) / RUNS_DIR).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("schema") == SCHEMA:
            runs.append(data)
    return sorted(runs, key=lambda r: r.get("started") or 0)
