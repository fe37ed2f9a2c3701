"""A stored file that cannot be read back is named, moved into RESULTS/quarantine and
computed again, instead of failing its cells on every rerun."""

import json
import pickle

import torch

from mcbench.bench.load import load_benchmark
from mcbench.run.runner import run_benchmark
from mcbench.run.store import Store
from tests.executor_cases import CPU, scores


def run(bench, results, cache):
    return run_benchmark(bench, Store(results), CPU, None, cache, threads=1)


def quarantined(results):
    return sorted(p.name for p in (results / "quarantine").rglob("*") if p.is_file())


def test_a_truncated_endpoint_is_moved_aside_and_trained_again(long_endpoints, tmp_path, caplog):
    path, bench, cache, reference = long_endpoints
    results = tmp_path / "results"
    run(bench, results, cache)
    cell = bench.cells[0]
    tensors = results / "artifacts" / "endpoint" / f"{cell.endpoint_key('B')}.safetensors"
    whole = tensors.read_bytes()
    tensors.write_bytes(whole[: len(whole) // 2])
    (results / "records" / f"{cell.cell_id}.json").unlink()
    with caplog.at_level("WARNING", logger="mcbench"):
        summary = run(bench, results, cache)
    assert not summary.failed and scores(results) == reference
    assert tensors.read_bytes() == whole  # trained again, to the same bits
    assert quarantined(results) and quarantined(results)[0].startswith(tensors.name)
    assert any(str(tensors) in r.message and "moved to" in r.message for r in caplog.records)


def test_a_damaged_record_or_score_is_computed_again(long_endpoints, tmp_path):
    path, bench, cache, reference = long_endpoints
    results = tmp_path / "results"
    run(bench, results, cache)
    cell = bench.cells[0]
    (results / "records" / f"{cell.cell_id}.json").write_text('{"cell_id": "')
    score = results / "artifacts" / "endpoint-eval" / f"{cell.endpoint_eval_key('A')}.json"
    score.write_bytes(b"\xff\xfe not json")
    summary = run(bench, results, cache)
    assert summary.ran == [cell.cell_id] and scores(results) == reference
    assert len(quarantined(results)) == 2
    assert json.loads(score.read_text())["result"] == reference[cell.cell_id]["endpoints"]["A"]


class Boom:
    """What a planted pickle would run on load if it were not refused."""

    def __reduce__(self):
        return (exec, ("open('PWNED', 'w').write('x')",))


def test_a_truncated_or_planted_checkpoint_restarts_the_training(
    registry, long_endpoints, tmp_path, monkeypatch
):
    path, bench, cache, reference = long_endpoints
    monkeypatch.chdir(tmp_path)
    for damage in ("truncated", "planted"):
        results = tmp_path / damage
        key = bench.cells[0].endpoint_key("A")
        partial = results / "artifacts" / "endpoint" / f"{key}.partial.pt"
        partial.parent.mkdir(parents=True)
        if damage == "truncated":
            state = {"epoch": 3, "model": {"w": torch.zeros(1000)}}
            torch.save(state, partial)
            partial.write_bytes(partial.read_bytes()[:500])
        else:
            partial.write_bytes(pickle.dumps({"epoch": Boom()}, protocol=2))
        summary = run(load_benchmark(path, registry), results, cache)
        assert not summary.failed and scores(results) == reference
        assert not (tmp_path / "PWNED").exists()
        assert [n.split(".partial.pt")[0] for n in quarantined(results)] == [key]
