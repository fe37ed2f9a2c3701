"""Two `mcbench run` processes started together on one results folder: each stage is
computed by one of them, the other waits for it and reuses it, and the records are those
of a single run."""

import re
import subprocess
import sys
from collections import Counter

from tests.executor_cases import scores


def test_two_runs_on_one_folder_compute_each_stage_once(long_endpoints, tmp_path):
    path, bench, cache, reference = long_endpoints
    results = tmp_path / "results"
    command = [
        sys.executable, "-m", "mcbench", "run", str(path), "--results", str(results),
        "--cache-dir", str(cache), "--executor", "serial", "--threads-per-stage", "1",
    ]  # fmt: skip
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for _ in range(2)]  # fmt: skip
    outputs = [run.communicate(timeout=600)[0].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    log = (results / "mcbench.log").read_text()
    ran = Counter(re.findall(r" ran (\S+(?: [AB])?(?: untampered)?) \[(\w+)\]", log))
    assert ran and max(ran.values()) == 1, ran
    assert len(ran) == 6  # 2 endpoints, 2 endpoint scores, the repair, the evaluation
    assert "reused (computed by another process)" in log
    assert scores(results) == reference
