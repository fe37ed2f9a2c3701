"""`mcbench run` killed (SIGKILL) at random moments, then run again to the end: the records
and artifacts are those of a run that was never interrupted."""

import random
import signal
import subprocess
import sys
import time

from safetensors.torch import load_file

from tests.executor_cases import scores


def tensors(results):
    return {
        p.relative_to(results): load_file(p)
        for p in sorted((results / "artifacts").rglob("*.safetensors"))
    }


def test_killed_at_random_moments_the_run_resumes_to_the_same_results(long_endpoints, tmp_path):
    path, bench, cache, reference = long_endpoints
    results, fresh = tmp_path / "results", tmp_path / "fresh"
    command = [
        sys.executable, "-m", "mcbench", "run", str(path), "--cache-dir", str(cache),
        "--executor", "serial", "--threads-per-stage", "1", "--results",
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run([*command, str(fresh)], capture_output=True, timeout=300, check=True)
    whole = time.perf_counter() - started
    interrupted = 0
    for fraction in random.Random(0).sample([x / 20 for x in range(8, 20)], 5):
        process = subprocess.Popen([*command, str(results)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        time.sleep(fraction * whole)  # start-up and imports take the first part
        interrupted += process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert interrupted >= 3
    final = subprocess.run([*command, str(results)], capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert scores(results) == scores(fresh) == reference
    resumed, uninterrupted = tensors(results), tensors(fresh)
    assert resumed.keys() == uninterrupted.keys()
    for name, state in resumed.items():
        assert all(state[k].equal(uninterrupted[name][k]) for k in state), name
    assert not list((results / "artifacts").rglob("*.partial.pt"))
