"""`mcbench run` killed (SIGKILL) at random moments, then run again to the end: the records
and artifacts are those of a run that was never interrupted."""

import random
import signal
import subprocess
import sys
import time

from safetensors.torch import load_file

from mcbench.run.locks import read_lock
from tests.executor_cases import scores


def tensors(results):
    return {
        p.relative_to(results): load_file(p)
        for p in sorted((results / "artifacts").rglob("*.safetensors"))
    }


def holds_a_lock(results, pid: int) -> bool:
    locks = (results / "locks").rglob("*.lock")
    return any((read_lock(path) or {}).get("pid") == pid for path in locks)


def test_killed_at_random_moments_the_run_resumes_to_the_same_results(long_endpoints, tmp_path):
    path, bench, cache, reference = long_endpoints
    results, fresh = tmp_path / "results", tmp_path / "fresh"
    command = [
        sys.executable, "-m", "mcbench", "run", str(path), "--cache-dir", str(cache),
        "--executor", "serial", "--threads-per-stage", "1", "--results",
    ]  # fmt: skip
    subprocess.run([*command, str(fresh)], capture_output=True, timeout=300, check=True)
    draw, interrupted = random.Random(0), 0
    for _ in range(5):
        process = subprocess.Popen([*command, str(results)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        # a random moment while it computes a stage (it holds that stage's lock)
        while process.poll() is None and not holds_a_lock(results, process.pid):
            time.sleep(0.01)
        time.sleep(draw.uniform(0.0, 0.4))
        interrupted += process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert interrupted >= 1
    final = subprocess.run([*command, str(results)], capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert scores(results) == scores(fresh) == reference
    resumed, uninterrupted = tensors(results), tensors(fresh)
    assert resumed.keys() == uninterrupted.keys()
    for name, state in resumed.items():
        assert all(state[k].equal(uninterrupted[name][k]) for k in state), name
    assert not list((results / "artifacts").rglob("*.partial.pt"))
