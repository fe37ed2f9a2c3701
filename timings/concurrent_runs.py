"""Two `mcbench run` processes started together on one results folder, against one run
alone: how many times each stage was computed, the CPU both spent against the CPU of one
run, and whether their records are those of the single run.

    python timings/concurrent_runs.py [--seeds 3] [--epochs 8] [--out FILE]

The matrix: one backdoor-repair track on the built-in synthetic dataset with 2 budgets, 2
connections and ``--seeds`` seeds (4 x seeds cells, 2 x seeds endpoints shared by them).
Every run is serial with one torch thread per stage, so the records can be compared bit for
bit. CPU is user + system time of each `mcbench` process (os.wait4).
Goal: at most one computation per stage, and the two runs' CPU within 10% of one run's. A
second process has a fixed cost (start-up, planning, the leaderboard it prints), measured
by a run with nothing left to compute; it is reported apart, since it does not grow with
the matrix while the work does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

MATRIX = """\
version: 1
tracks:
  backdoor-repair:
    datasets:
      - {{name: synthetic, num_classes: 4, image_size: 16, train_per_class: 96,
         test_per_class: 40}}
    architectures: [{{name: convnet, widths: [16, 32]}}]
    attacks: [{{name: badnets, target: 0, poison_rate: 0.1, patch_size: 3}}]
    repairs: [{{name: path, epochs: 4, batch_size: 32}}]
    connections: [linear, bezier]
    budgets: [40, 60]
    seeds: {seeds}
    metrics: [clean_accuracy, attack_success_rate]
    split: {{defender_pool: 60}}
    train: {{epochs: {epochs}, batch_size: 32, lr: 0.05}}
    evaluate: {{grid: 5}}
"""


def runs(file: Path, results: Path, cache: Path, count: int) -> dict:
    command = [
        sys.executable, "-m", "mcbench", "run", str(file), "--results", str(results),
        "--cache-dir", str(cache), "--executor", "serial", "--threads-per-stage", "1",
    ]  # fmt: skip
    started = time.perf_counter()
    processes = [
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(count)
    ]
    codes, cpu = [], []
    for process in processes:
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        codes.append(process.returncode)
        cpu.append(usage.ru_utime + usage.ru_stime)
    log = (results / "mcbench.log").read_text()
    computed = Counter(re.findall(r" ran .*? \[(\w+)\] of (.*?) in ", log))
    return {
        "processes": count,
        "exit_codes": codes,
        "wall_s": time.perf_counter() - started,
        "cpu_s": sum(cpu),
        "cpu_s_per_process": cpu,
        "stages_computed": len(computed),
        "most_computations_of_one_stage": max(computed.values(), default=0),
        "reused_from_the_other_run": log.count("reused (computed by another process)"),
    }


def numbers(results: Path) -> dict:
    found = {}
    for path in sorted((results / "records").glob("*.json")):
        record = json.loads(path.read_text())
        found[path.stem] = [record.get(k) for k in ("path", "endpoints", "reported_t")]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        file = root / "bench.yaml"
        file.write_text(MATRIX.format(seeds=list(range(args.seeds)), epochs=args.epochs))
        cache = root / "cache"
        runs(file, root / "warm", cache, 1)  # decodes the dataset once, for both measurements
        alone = runs(file, root / "alone", cache, 1)
        together = runs(file, root / "together", cache, 2)
        idle = runs(file, root / "alone", cache, 1)  # everything stored: the fixed cost
        same = numbers(root / "alone") == numbers(root / "together")
    ratio = together["cpu_s"] / alone["cpu_s"]
    beyond = (together["cpu_s"] - idle["cpu_s"]) / alone["cpu_s"]
    print(f"{'':28}{'one run':>12}{'two runs':>12}")
    for key in ("wall_s", "cpu_s", "stages_computed", "most_computations_of_one_stage",
                "reused_from_the_other_run"):  # fmt: skip
        print(f"{key:28}{alone[key]:>12.4g}{together[key]:>12.4g}")
    print(f"CPU per process: one run {alone['cpu_s_per_process']}, "
          f"two runs {[round(c, 2) for c in together['cpu_s_per_process']]}")  # fmt: skip
    print(f"records of the two runs = records of one run: {same}")
    print(f"CPU of a run with nothing left to compute (start-up, plan, leaderboard): "
          f"{idle['cpu_s']:.1f} s")  # fmt: skip
    print(f"CPU of two runs / one run: {ratio:.3f} (goal <= 1.10: "
          f"{'PASS' if ratio <= 1.10 else 'FAIL'})")  # fmt: skip
    print(f"the same without the second process's fixed cost: {beyond:.3f}")
    once = together["most_computations_of_one_stage"] == 1
    print(f"each stage computed once: {'PASS' if once else 'FAIL'}")
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "alone": alone,
                    "together": together,
                    "idle": idle,
                    "cpu_ratio": ratio,
                    "cpu_ratio_beyond_fixed": beyond,
                    "same_records": same,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
