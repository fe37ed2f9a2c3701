"""Where the main job's time goes: data loading, endpoints, weight attacks, endpoint
scoring, repairs and evaluation, per track, from a cold cache.

    python timings/main_job_time.py --data-root ../shared/data            # run `quick` now
    python timings/main_job_time.py --profile cpu --track backdoor-repair --data-root ...
    python timings/main_job_time.py --from RESULTS                         # a finished run
    python timings/main_job_time.py --records leaderboards/backdoor-repair-cpu ...

Running, it calls `mcbench run` in a fresh results folder and a fresh cache (so the
datasets are decoded again, as on a new machine) and reads the run's log
(RESULTS/runs/*.json: each stage's seconds in the worker that ran it). `--records` reads
what cells' records say instead (the seconds of their repair and evaluation, and of the
endpoint and tamper stages that each cell's record names), for folders without a run log
such as the published tables."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = "all tracks"
PARTS = ("data load", "endpoint", "tamper", "endpoint-eval", "repair", "evaluate")
SHOWN = {
    "endpoint": "endpoints",
    "tamper": "weight attacks",
    "endpoint-eval": "endpoint scoring",
    "repair": "repairs",
    "evaluate": "evaluation along paths",
}


def run_job(args) -> tuple[Path, float]:
    work = Path(args.work or tempfile.mkdtemp(prefix="mcbench-main-job-"))
    results, cache = work / "results", work / "cache"
    command = [sys.executable, "-m", "mcbench", "run", str(args.file), "--results", str(results),
               "--cache-dir", str(cache)]  # fmt: skip
    if args.profile:
        command += ["--profile", args.profile]
    for track in args.track:
        command += ["--track", track]
    if args.data_root:
        command += ["--data-root", str(args.data_root)]
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"the run failed (exit {done.returncode}); see {results / 'mcbench.log'}")
    return results, wall


def latest_run(results: Path) -> dict:
    runs = sorted((results / "runs").glob("*.json"))
    finished = [json.loads(p.read_text()) for p in runs]
    finished = [r for r in finished if r.get("timings")]
    if not finished:
        sys.exit(f"{results}/runs holds no finished run with timings")
    return max(finished, key=lambda r: r["started"])


def track_of(label: str, tracks: set[str]) -> str:
    return next((t for t in tracks if label.startswith(t + " ")), label.split()[0])


def from_run_log(run: dict) -> dict[str, dict[str, float]]:
    """Seconds by track and part; a stage shared by tracks counts once, under the first
    track (in file order) that needs it; reading the data is shared by all."""
    labels = run["cells"]
    tracks = {label.split()[0] for label in labels.values()}
    order = list(labels)
    seconds: dict[str, dict[str, float]] = {}
    for track in sorted(tracks):
        seconds[track] = defaultdict(float)
    seconds[SHARED] = defaultdict(float, {"data load": run["timings"]["data_load_s"]})
    for node, timing in run["timings"]["stages"].items():
        if not timing["computed"]:
            continue
        stage = run["stages"][node]
        owner = min(stage["cells"], key=order.index)
        seconds[track_of(labels[owner], tracks)][stage["stage"]] += timing["seconds"] or 0.0
    return seconds


def from_records(folders: list[Path]) -> dict[str, dict[str, float]]:
    """Seconds by track and part from records: each endpoint and tamper stage once (by
    its key), each repair once, every cell's evaluation."""
    seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    seen: set[str] = set()
    for folder in folders:
        records = folder / "records" if (folder / "records").is_dir() else folder
        for path in sorted(records.glob("*.json")):
            record = json.loads(path.read_text())
            if record.get("status") != "ok":
                continue
            track, timings, keys = record["config"]["track"], record["timings"], record["keys"]
            for name, key in keys.items():
                if key in seen:
                    continue
                seen.add(key)
                part, _, role = name.partition("_")
                seconds[track][part] += timings.get(f"{part}_{role}_s" if role else f"{part}_s", 0)
            seconds[track]["evaluate"] += timings.get("evaluate_s", 0.0)
    return seconds


def report(seconds: dict[str, dict[str, float]], wall: float | None) -> None:
    tracks = list(seconds)
    rows = []
    for part in PARTS:
        values = [seconds[t].get(part, 0.0) for t in tracks]
        rows.append((SHOWN.get(part, part), values, sum(values)))
    accounted = sum(total for _, _, total in rows)
    header = f"{'part':<24}" + "".join(f"{t:>18}" for t in tracks) + f"{'all':>10}{'share':>8}"
    print(header)
    print("-" * len(header))
    for name, values, total in rows:
        share = f"{total / (wall or accounted):8.0%}" if (wall or accounted) else ""
        cells = "".join(f"{v:>17.0f}s" for v in values)
        print(f"{name:<24}{cells}{total:>9.0f}s{share}")
    if wall is not None:
        other = wall - accounted
        print(f"{'start-up, planning, tables':<24}{'':>{18 * len(tracks)}}{other:>9.0f}s"
              f"{other / wall:8.0%}")  # fmt: skip
        print(f"{'wall-clock':<24}{'':>{18 * len(tracks)}}{wall:>9.0f}s  ({wall / 60:.1f} min)")
    else:
        print(f"{'accounted':<24}{'':>{18 * len(tracks)}}{accounted:>9.0f}s  "
              f"({accounted / 60:.1f} min; start-up and planning not in records)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", default=ROOT / "benchmarks.yaml", type=Path)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--track", action="append", default=[])
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--work", type=Path, help="folder for results and cache (new: temp)")
    parser.add_argument("--from", dest="results", type=Path, help="a finished run's results")
    parser.add_argument("--records", nargs="+", type=Path, help="folders of records to read")
    args = parser.parse_args()
    if args.records:
        report(from_records(args.records), None)
        return
    wall = None
    results = args.results
    if results is None:
        results, wall = run_job(args)
    run = latest_run(results)
    if wall is None and run.get("finished"):
        # the log starts once the data is read
        wall = run["finished"] - run["started"] + run["timings"]["data_load_s"]
        print("(wall-clock from the run log and its data loading; start-up not included)")
    report(from_run_log(run), wall)


if __name__ == "__main__":
    main()
