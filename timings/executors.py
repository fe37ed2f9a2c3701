"""Wall time of one benchmark matrix run serially, with the local executor (worker processes)
and with Ray (a local cluster), on the same machine.

    python timings/executors.py [--stage-seconds 10] [--seeds 4] [--workers 2] [--quick]
                                [--executors serial local ray] [--wait-idle SECONDS]
                                [--workdir DIR] [--out FILE]

The matrix (written to a temporary folder): one backdoor-repair track on the built-in
``synthetic`` dataset and ``convnet`` architecture, one connection, ``--seeds`` seeds. Each
seed has its own two endpoints, so the 2 x seeds endpoint stages are independent of each
other; every seed's endpoint scoring, repair (the path repair, 1 epoch) and evaluation
(grid 2) are cheap. The endpoints' epochs are calibrated so that one endpoint takes about
``--stage-seconds`` of single-threaded work: a serial run of 1 epoch into a throwaway folder
times one epoch, and the epochs are scaled from it.

Each executor runs the matrix into a fresh results folder with 1 torch thread per stage (on
the CPU, results are bit-identical only for equal thread counts); the serial run, in this
process, is the reference. Printed per executor: the wall time of ``run_benchmark``, the
speed-up over serial, the sum of the stages' own compute seconds (each stage's "seconds" as
its worker timed it), the scheduling overhead per stage, (wall x workers - sum of stage
seconds) / stages computed (it includes worker start-up and workers idle at the end of the
run), also as % of the mean stage time, the worker start-up (first stage's start minus the
run's), and whether every record's "path", "endpoints" and "reported_t" are the same
numbers as the serial run's; and the CPU seconds that processes outside the benchmark took
on the machine meanwhile (sampled from /proc; on a shared machine they disturb every other
figure, and ``--wait-idle`` waits for a quiet moment before each run). Ray's own start-up
(``ray.init``) is paid once per cluster, not per run, and is reported apart. Goals: overhead
under 5% of a 10-second stage (0.5 s); with 2 workers on 2 cores, at least 1.6x speed-up
(0.8x per worker).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import torch
from tabulate import tabulate

from mcbench.bench.load import load_benchmark
from mcbench.registry import load_registry
from mcbench.run.execute import BenchmarkSource, RunSpec
from mcbench.run.runner import run_benchmark
from mcbench.run.store import Store

EXECUTORS = ("serial", "local", "ray")
COMPARED = ("path", "endpoints", "reported_t")
OVERHEAD_GOAL_S = 0.05 * 10.0
"""5% of a 10-second stage."""
SPEEDUP_PER_WORKER = 0.8
"""1.6x with 2 workers on 2 cores."""
CPU = torch.device("cpu")

MATRIX = """\
version: 1
tracks:
  backdoor-repair:
    datasets: [{{name: synthetic, num_classes: 4, image_size: 16, train_per_class: 256,
                test_per_class: 40}}]
    architectures: [{{name: convnet, widths: [16, 32]}}]
    attacks: [{{name: badnets, target: 0, poison_rate: 0.1, patch_size: 3}}]
    repairs: [{{name: path, epochs: 1, batch_size: 32}}]
    connections: [linear]
    budgets: [40]
    seeds: [{seeds}]
    metrics: [clean_accuracy, attack_success_rate, loss]
    split: {{defender_pool: 60}}
    train: {{epochs: {epochs}, batch_size: 32, lr: 0.05}}
    evaluate: {{grid: 2}}
"""


def write_matrix(folder: Path, name: str, seeds: int, epochs: int) -> Path:
    path = folder / name
    text = MATRIX.format(seeds=", ".join(str(s) for s in range(seeds)), epochs=epochs)
    path.write_text(textwrap.dedent(text))
    return path.resolve()


def spec_for(results: Path, cache: Path, file: Path) -> RunSpec:
    return RunSpec(
        results=str(results),
        cache_dir=str(cache),
        data_root=None,
        device="cpu",
        threads=1,
        source=BenchmarkSource(file=str(file)),
    )


def calibrate(root: Path, cache: Path, registry, stage_seconds: float) -> dict:
    """Seconds of one endpoint epoch (a serial run of 1 epoch, 1 seed) and the epochs that
    make an endpoint take about ``stage_seconds``."""
    file = write_matrix(root, "calibration.yaml", seeds=1, epochs=1)
    bench = load_benchmark(file, registry)
    summary = run_benchmark(bench, Store(root / "calibration"), CPU, None, cache, threads=1)
    if summary.failed:
        raise SystemExit(f"the calibration run failed: see {root / 'calibration'}")
    endpoints = [
        o["seconds"] for o in summary.stages.values() if o["label"].startswith("endpoint ")
    ]
    epoch_s = min(endpoints)  # the first one also pays torch's warm-up
    epochs = max(1, round(stage_seconds / epoch_s))
    return {"epoch_s": epoch_s, "epochs": epochs}


def make_executor(name: str, spec: RunSpec, workers: int, bench):
    """The executor for ``name``, as ``mcbench run`` builds it: 1 thread per stage, Ray's
    stages on 1 CPU and no GPU."""
    from mcbench.run.executors.choose import ExecutorOptions
    from mcbench.run.executors.choose import make_executor as build

    options = ExecutorOptions(
        name, workers=workers, threads_per_stage=1, gpus_per_stage=0, cpus_per_stage=1
    )
    return build(options, spec, bench)


def start_ray(workers: int) -> float:
    """Start a local Ray cluster of ``workers`` CPUs; its start-up seconds."""
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    return time.perf_counter() - started


class OtherCpu:
    """CPU seconds used by processes outside this benchmark's process tree (this process,
    its worker processes, the Ray cluster it started) while a run goes on: read from /proc
    every ``interval`` seconds, so processes that live less than that are missed. On a
    shared machine these seconds are taken from the run's cores."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.available = Path("/proc/self/stat").exists()

    def snapshot(self) -> dict[int, tuple[int, float, str]]:
        """pid -> (parent pid, CPU seconds so far, name) of every process."""
        procs = {}
        for entry in Path("/proc").iterdir() if self.available else ():
            if not entry.name.isdigit():
                continue
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue
            name, rest = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :]
            fields = rest.split()  # fields[0] is field 3 (state) of proc(5)
            cpu = (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime
            procs[int(entry.name)] = (int(fields[1]), cpu, name)
        return procs

    @staticmethod
    def others(procs: dict[int, tuple[int, float, str]]) -> dict[int, tuple[float, str]]:
        """The processes that do not descend from this one: pid -> (CPU seconds, name)."""
        me, ours = os.getpid(), {}

        def is_ours(pid: int) -> bool:
            seen = []
            while pid not in ours:
                if pid == me or pid not in procs or pid <= 1:
                    ours[pid] = pid == me
                    break
                seen.append(pid)
                pid = procs[pid][0]
            for p in seen:
                ours[p] = ours[pid]
            return ours[pid]

        return {pid: (cpu, name) for pid, (_, cpu, name) in procs.items() if not is_ours(pid)}

    def __enter__(self) -> OtherCpu:
        self.base = {pid: cpu for pid, (cpu, _) in self.others(self.snapshot()).items()}
        self.last: dict[int, tuple[float, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while True:
            self.last.update(self.others(self.snapshot()))
            if self._stop.wait(self.interval):
                return

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.last.update(self.others(self.snapshot()))
        used = {
            pid: (cpu - self.base.get(pid, 0.0), name) for pid, (cpu, name) in self.last.items()
        }
        self.seconds = sum(cpu for cpu, _ in used.values())
        by_name: dict[str, float] = {}
        for cpu, name in used.values():
            by_name[name] = by_name.get(name, 0.0) + cpu
        self.top = sorted(((n, c) for n, c in by_name.items() if c >= 0.5), key=lambda x: -x[1])[:5]


def wait_idle(most_s: float, cores: int, window_s: float = 5.0, below: float = 0.1) -> float:
    """Wait (at most ``most_s`` seconds) until the processes outside this benchmark use less
    than ``below`` of the cores over ``window_s``; the seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < most_s:
        with OtherCpu() as other:
            time.sleep(window_s)
        if other.seconds < below * cores * window_s:
            break
    return time.perf_counter() - started


def run_one(name: str, bench, file: Path, root: Path, cache: Path, workers: int) -> dict:
    results = root / name
    spec = spec_for(results, cache, file)
    load = os.getloadavg()[0]
    print(f"running {name} ...", flush=True)
    with OtherCpu() as other:
        started_unix, started = time.time(), time.perf_counter()
        executor = make_executor(name, spec, workers, bench)
        summary = run_benchmark(
            bench, Store(results), CPU, None, cache, executor=executor, threads=1
        )
        wall = time.perf_counter() - started
    computed = [o for o in summary.stages.values() if o.get("ok") and o.get("computed")]
    stage_s = sum(o["seconds"] for o in computed)
    used = executor.workers
    overhead = (wall * used - stage_s) / max(1, len(computed))
    mean_stage = stage_s / max(1, len(computed))
    endpoints = [o["seconds"] for o in computed if o["label"].startswith("endpoint ")]
    first = min((o["started"] for o in summary.stages.values() if "started" in o), default=None)
    print(f"  {name}: {wall:.1f} s, {len(computed)} stages, {len(summary.failed)} failed cells")
    return {
        "executor": name,
        "workers": used,
        "results": str(results),
        "load_before": load,
        "wall_s": wall,
        "stage_s": stage_s,
        "stages": len(computed),
        "endpoint_mean_s": statistics.mean(endpoints) if endpoints else None,
        "mean_stage_s": mean_stage,
        "overhead_per_stage_s": overhead,
        "overhead_pct_of_mean_stage": 100 * overhead / mean_stage if mean_stage else None,
        "worker_startup_s": first - started_unix if first is not None else None,
        "cells": len(summary.ran) + len(summary.failed) + len(summary.reused),
        "failed_cells": len(summary.failed),
        "load_after": os.getloadavg()[0],
        "other_cpu_s": other.seconds,
        "other_cpu_pct": 100 * other.seconds / (wall * (os.cpu_count() or 1)),
        "other_cpu_top": other.top,
        "timeline": [
            {
                "label": o.get("label"),
                "worker": o.get("worker"),
                "start_s": o["started"] - started_unix,
                "end_s": o["finished"] - started_unix,
                "seconds": o["seconds"],
            }
            for o in sorted(summary.stages.values(), key=lambda o: o.get("started", 0.0))
            if "started" in o and "finished" in o
        ],
    }


def records(results: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in (results / "records").glob("*.json")}


def numbers(value, prefix=""):
    """(where, number) for every number in a nested record field."""
    if isinstance(value, dict):
        for k in sorted(value):
            yield from numbers(value[k], f"{prefix}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from numbers(v, f"{prefix}[{i}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield prefix, float(value)


def compare(reference: dict[str, dict], other: dict[str, dict]) -> dict:
    """How many of the reference's ok records ``other`` has with the same numbers."""
    same, worst = 0, 0.0
    ok = {c: r for c, r in reference.items() if r.get("status") == "ok"}
    for cell_id, ref in ok.items():
        rec = other.get(cell_id)
        if rec is None or rec.get("status") != "ok":
            worst = math.inf
            continue
        wanted = {k: ref.get(k) for k in COMPARED}
        got = {k: rec.get(k) for k in COMPARED}
        if wanted == got:
            same += 1
            continue
        a, b = dict(numbers(wanted)), dict(numbers(got))
        if a.keys() != b.keys():
            worst = math.inf
        else:
            worst = max([worst, *(abs(a[k] - b[k]) for k in a)])
    return {"same_records": same, "compared_records": len(ok), "max_abs_diff": worst}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def machine() -> dict:
    info = {
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_avg": os.getloadavg(),
    }
    try:
        import ray

        info["ray"] = ray.__version__
    except ImportError:
        info["ray"] = None
    return info


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stage-seconds",
        type=float,
        default=None,
        help="seconds of one endpoint stage (default 10; 2 with --quick)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="seeds of the track, 2 endpoints each (default 4; 2 with --quick)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2 s stages, 2 seeds")
    parser.add_argument(
        "--executors",
        nargs="*",
        choices=EXECUTORS,
        default=list(EXECUTORS),
        help="serial always runs: it is the reference",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the matrix and results here (default: a temporary folder)",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each run, wait at most this long for other processes on the machine to "
        "use under 10%% of its cores (a shared machine); default: do not wait",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args()
    stage_seconds = args.stage_seconds or (2.0 if args.quick else 10.0)
    seeds = args.seeds or (2 if args.quick else 4)
    names = ["serial", *(n for n in EXECUTORS[1:] if n in args.executors)]

    info = machine()
    print(
        f"machine: {info['cpu_count']} CPUs ({info['usable_cpus']} usable, "
        f"{info['processor']}), python {info['python']}, torch {info['torch']}, "
        f"ray {info['ray']}, load average {', '.join(f'{x:.2f}' for x in info['load_avg'])}"
    )
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        if any(args.workdir.iterdir()):
            raise SystemExit(
                f"--workdir {args.workdir} is not empty: every run needs fresh folders"
            )
        temp, root = None, args.workdir.resolve()
    else:
        temp = tempfile.TemporaryDirectory(prefix="mcbench-executors-")
        root = Path(temp.name)
    cache = root / "cache"
    registry = load_registry()
    try:
        if args.wait_idle:
            wait_idle(args.wait_idle, os.cpu_count() or 1)
        cal = calibrate(root, cache, registry, stage_seconds)
        file = write_matrix(root, "bench.yaml", seeds=seeds, epochs=cal["epochs"])
        bench = load_benchmark(file, registry)
        print(
            f"matrix: {len(bench.cells)} cells, {2 * seeds} independent endpoint stages of "
            f"{cal['epochs']} epochs (1 epoch: {cal['epoch_s']:.3f} s; target "
            f"{stage_seconds:g} s), {args.workers} workers, 1 torch thread per stage",
            flush=True,
        )
        runs, ray_startup = [], None
        for name in names:
            if name == "ray":
                ray_startup = start_ray(args.workers)
                print(f"ray start-up (ray.init, once per cluster): {ray_startup:.1f} s", flush=True)
            waited = wait_idle(args.wait_idle, os.cpu_count() or 1) if args.wait_idle else 0.0
            try:
                runs.append(run_one(name, bench, file, root, cache, args.workers))
                runs[-1]["waited_idle_s"] = waited
            finally:
                if name == "ray":
                    import ray

                    ray.shutdown()
        serial = runs[0]
        reference = records(Path(serial["results"]))
        for run in runs:
            run["speedup"] = serial["wall_s"] / run["wall_s"]
            run.update(compare(reference, records(Path(run["results"]))))
            run["overhead_goal"] = run["overhead_per_stage_s"] < OVERHEAD_GOAL_S
            parallel = min(run["workers"], info["usable_cpus"] or 1)
            goal = SPEEDUP_PER_WORKER * parallel if parallel > 1 else None
            run["speedup_goal_x"] = goal
            run["speedup_goal"] = None if goal is None else run["speedup"] >= goal
    finally:
        if temp is not None:
            temp.cleanup()

    rows = [
        [
            r["executor"],
            r["workers"],
            f"{r['wall_s']:.1f}",
            f"{r['speedup']:.2f}x",
            f"{r['stage_s']:.1f}",
            r["stages"],
            f"{r['endpoint_mean_s']:.2f}",
            f"{r['overhead_per_stage_s']:.3f}",
            f"{r['overhead_pct_of_mean_stage']:.1f}%",
            f"{r['worker_startup_s']:.2f}",
            f"{r['same_records']}/{r['compared_records']}"
            + ("" if r["same_records"] == r["compared_records"] else f" ({r['max_abs_diff']:.2g})"),
            f"{r['other_cpu_s']:.1f} ({r['other_cpu_pct']:.0f}%)",
            verdict(r["overhead_goal"]),
            "-" if r["speedup_goal"] is None else verdict(r["speedup_goal"]),
        ]
        for r in runs
    ]
    headers = [
        "executor", "workers", "wall s", "speed-up", "stage s (sum)", "stages",
        "endpoint s (mean)", "overhead/stage s", "overhead % of mean stage",
        "worker start-up s", "records = serial", "other CPU s",
        f"overhead < {OVERHEAD_GOAL_S:g} s", "speed-up goal",
    ]  # fmt: skip
    print()
    print(tabulate(rows, headers=headers, disable_numparse=True))
    print()
    if ray_startup is not None:
        print(f"ray start-up (ray.init, once per cluster, not in the ray row): {ray_startup:.1f} s")
    print(
        f"goal: overhead per stage under 5% of a 10-second stage ({OVERHEAD_GOAL_S:g} s): "
        + ", ".join(f"{r['executor']} {verdict(r['overhead_goal'])}" for r in runs)
    )
    for r in runs[1:]:
        if r["speedup_goal"] is None:
            print(f"goal: speed-up: {r['executor']} runs 1 stage at a time, no speed-up goal")
        else:
            print(
                f"goal: speed-up at least {r['speedup_goal_x']:.1f}x with {r['workers']} workers "
                f"on {info['usable_cpus']} cores: {r['executor']} {r['speedup']:.2f}x "
                f"{verdict(r['speedup_goal'])}"
            )
    for r in runs:
        if r["other_cpu_pct"] >= 10:
            top = ", ".join(f"{n} {c:.0f} s" for n, c in r["other_cpu_top"])
            print(
                f"{r['executor']}: other processes used {r['other_cpu_pct']:.0f}% of the "
                f"machine's CPU during the run ({top}): its figures are disturbed"
            )
    for r in runs[1:]:
        if r["same_records"] != r["compared_records"]:
            print(
                f"{r['executor']}: {r['compared_records'] - r['same_records']} records differ "
                f"from serial (largest difference {r['max_abs_diff']:.3g})"
            )
        if r["failed_cells"]:
            print(f"{r['executor']}: {r['failed_cells']} cells FAILED")
    if args.out:
        figures = {
            "machine": info,
            "matrix": {
                "cells": len(bench.cells),
                "seeds": seeds,
                "endpoint_stages": 2 * seeds,
                "stage_seconds_target": stage_seconds,
                "workers": args.workers,
                "threads_per_stage": 1,
                **cal,
            },
            "ray_startup_s": ray_startup,
            "goals": {
                "overhead_per_stage_s_below": OVERHEAD_GOAL_S,
                "speedup_per_worker_at_least": SPEEDUP_PER_WORKER,
            },
            "runs": runs,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=1, default=str) + "\n")
        print(f"figures written to {args.out}")


if __name__ == "__main__":
    main()
