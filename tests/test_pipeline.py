"""The whole pipeline on synthetic data: records, reuse, resume, failure isolation."""

import datetime
import json
import platform
import subprocess
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import mcbench
import mcbench.toolkit.training
from mcbench.bench.load import load_benchmark
from mcbench.cell.split import bonafide_subset, split_test_set
from mcbench.cli import cli
from mcbench.run.runner import run_benchmark
from mcbench.run.store import Store
from mcbench_plugins.architectures.convnet import ConvNet
from mcbench_plugins.datasets.synthetic import Synthetic
from tests import by_hand
from tests.conftest import TINY

CPU = torch.device("cpu")


def quiet(description, total):
    return lambda epoch, loss: None


def run(path, registry, results, **kw):
    bench = load_benchmark(path, registry, **kw)
    return bench, run_benchmark(bench, Store(results), CPU, None, results / "cache", quiet)


def records(results):
    return {p.stem: json.loads(p.read_text()) for p in (results / "records").glob("*.json")}


def test_split_is_disjoint_and_budgets_nest():
    from mcbench.kinds.data import ImageSet

    test = ImageSet(torch.zeros(100, 1, 2, 2, dtype=torch.uint8), torch.arange(100))
    ev = split_test_set(test, 40, 0, seed=0)
    pool, scored = set(ev.defender_pool.labels.tolist()), set(ev.evaluation.labels.tolist())
    assert len(pool) == 40 and len(scored) == 60 and not pool & scored
    small = set(bonafide_subset(ev.defender_pool, 10, 1).labels.tolist())
    large = set(bonafide_subset(ev.defender_pool, 30, 1).labels.tolist())
    assert small < large <= pool
    with pytest.raises(ValueError, match="exceeds the defender's pool"):
        bonafide_subset(ev.defender_pool, 41, 1)


def git(*args) -> str:
    root = Path(mcbench.__file__).resolve().parent.parent
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True).stdout.strip()


def test_first_run_records_every_cell_and_second_run_trains_nothing(
    tiny_yaml, registry, tmp_path, monkeypatch
):
    results = tmp_path / "results"
    started = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    bench, summary = run(tiny_yaml, registry, results)
    assert len(summary.ran) == 2 and not summary.failed
    recs = records(results)
    assert set(recs) == {c.cell_id for c in bench.cells}
    data = Synthetic(num_classes=4, image_size=16, train_per_class=64, test_per_class=40).load(
        None, tmp_path
    )
    head = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    for rec in recs.values():
        assert rec["status"] == "ok"
        assert [p["t"] for p in rec["path"]] == [0.0, 0.5, 1.0]
        assert rec["reported_t"] == 0.5
        evaluation = by_hand.evaluation_images(data, rec["config"])
        # badnets relabels every image to class 0: those of another class are triggered
        triggered = int((evaluation.labels != 0).sum())
        assert 0 < triggered < len(evaluation)
        assert rec["sizes"] == {
            "train": 256,
            "defender_pool": 60,
            "bonafide": 40,
            "evaluation": 100,
            "triggered": triggered,
            "targets": 0,
        }
        for role in ("A", "B"):
            net = ConvNet(widths=(8, 16)).build(4, 3, 16)
            model = by_hand.stored_model(
                results, "endpoint", rec["keys"][f"endpoint_{role}"], net, data
            )
            expected = by_hand.accuracy(model, evaluation)
            assert rec["endpoints"][role]["clean_accuracy"] == pytest.approx(expected, abs=1e-9)
        prov = rec["provenance"]
        assert prov["git_commit"] == head + ("-dirty" if dirty else "")
        assert prov["mcbench"] == mcbench.__version__ and prov["torch"] == torch.__version__
        assert prov["python"] == platform.python_version() and prov["cuda"] is None
        assert prov["device"].startswith("cpu (") and prov["platform"] == platform.platform()
        date = datetime.datetime.fromisoformat(prov["date"])
        assert started <= date <= datetime.datetime.now(datetime.timezone.utc)
        assert rec["config"]["seed"] == 0 and rec["config"]["budget"] == 40
    # both cells share their endpoints: the second one reused them
    assert sorted(len(r["reused"]) for r in recs.values()) == [0, 2]

    # the middle of the linear path: the endpoints' average, BatchNorm recomputed on the
    # bonafide images
    linear = next(r for r in recs.values() if r["config"]["connection"]["name"] == "linear")
    a, b = (Store(results).load_tensors("endpoint", linear["keys"][f"endpoint_{r}"]) for r in "AB")
    middle = {k: (a[k] + b[k]) / 2 if k.endswith(("weight", "bias")) else a[k] for k in a}
    model = by_hand.model(ConvNet(widths=(8, 16)).build(4, 3, 16), data, middle)
    bonafide = by_hand.bonafide_images(data, linear["config"])
    by_hand.recalibrated(model, bonafide, batch_size=500)
    expected = by_hand.accuracy(model, by_hand.evaluation_images(data, linear["config"]))
    assert linear["path"][1]["clean_accuracy"] == pytest.approx(expected, abs=1e-9)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished matrix must not train again")

    monkeypatch.setattr(mcbench.toolkit.training, "fit", no_training)
    monkeypatch.setattr("mcbench.cell.stages.endpoint.fit", no_training)
    monkeypatch.setattr("mcbench_plugins.repairs.path.fit", no_training)
    _, again = run(tiny_yaml, registry, results)
    assert len(again.reused) == 2 and not again.ran


def test_new_cells_reuse_shared_stages(tiny_yaml, registry, tmp_path, monkeypatch):
    results = tmp_path / "results"
    run(tiny_yaml, registry, results)
    # a new grid re-evaluates, but trains neither endpoints nor curves
    calls = []
    real_fit = mcbench.toolkit.training.fit
    monkeypatch.setattr(
        "mcbench.cell.stages.endpoint.fit", lambda *a, **k: calls.append("endpoint")
    )
    monkeypatch.setattr(
        "mcbench_plugins.repairs.path.fit",
        lambda *a, **k: calls.append("repair") or real_fit(*a, **k),
    )
    changed = tiny_yaml.parent / "grid5.yaml"
    changed.write_text(TINY.replace("{grid: 3}", "{grid: 5}"))
    _, summary = run(changed, registry, results)
    assert len(summary.ran) == 2 and calls == []


def test_an_interrupted_run_resumes_where_it_stopped(tiny_yaml, registry, tmp_path):
    results = tmp_path / "results"

    class Killed(BaseException):
        pass

    seen = []

    def kill_in_second_endpoint(description, total):
        def on_epoch(epoch, loss):
            seen.append((description, epoch))
            if description.startswith("endpoint B") and epoch == 0:
                raise Killed

        return on_epoch

    bench = load_benchmark(tiny_yaml, registry)
    store = Store(results)
    with pytest.raises(Killed):
        run_benchmark(bench, store, CPU, None, results / "cache", kill_in_second_endpoint)
    assert store.has_tensors("endpoint", bench.cells[0].endpoint_key("A"))
    assert not store.has_tensors("endpoint", bench.cells[0].endpoint_key("B"))
    seen.clear()

    def watch(description, total):
        return lambda epoch, loss: seen.append((description, epoch))

    summary = run_benchmark(bench, store, CPU, None, results / "cache", watch)
    assert not summary.failed and len(summary.ran) == 2
    # endpoint A was not retrained; endpoint B continued from its epoch-1 checkpoint
    assert not any(d.startswith("endpoint A") for d, _ in seen)
    assert [e for d, e in seen if d.startswith("endpoint B")] == [1]

    # the resumed endpoint equals one trained without interruption
    fresh = tmp_path / "fresh"
    run(tiny_yaml, registry, fresh)
    key = bench.cells[0].endpoint_key("B")
    a = Store(results).load_tensors("endpoint", key)
    b = Store(fresh).load_tensors("endpoint", key)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_failing_cell_is_recorded_and_the_others_run(write_yaml, registry, tmp_path):
    path = write_yaml(TINY.replace("budgets: [40]", "budgets: [40, 61]"))
    results = tmp_path / "results"
    bench, summary = run(path, registry, results)
    assert len(summary.failed) == 2 and len(summary.ran) == 2
    failed = [r for r in records(results).values() if r["status"] == "failed"]
    assert {r["config"]["budget"] for r in failed} == {61}
    assert "exceeds the defender's pool" in failed[0]["error"]["message"]
    assert "Traceback" in failed[0]["error"]["traceback"]

    result = CliRunner().invoke(cli, ["run", str(path), "--results", str(results)])
    assert result.exit_code == 1
    assert "2 cell(s) failed" in result.output


def test_cli_run_prints_the_leaderboard_and_dry_run_shows_the_cache(tiny_yaml, tmp_path):
    results = tmp_path / "results"
    runner = CliRunner()
    dry = runner.invoke(cli, ["run", str(tiny_yaml), "--results", str(results), "--dry-run"])
    assert dry.exit_code == 0 and dry.output.count("endpoint A:to run") == 2
    assert not (results / "records").exists()
    done = runner.invoke(
        cli,
        ["run", str(tiny_yaml), "--results", str(results), "--cache-dir", str(tmp_path / "cache")],
    )
    assert done.exit_code == 0, done.output
    assert "| bezier" in done.output and "clean_accuracy %" in done.output
    dry = runner.invoke(cli, ["run", str(tiny_yaml), "--results", str(results), "--dry-run"])
    assert dry.output.count("evaluate:cached") == 2


def test_missing_data_is_refused_before_any_cell_runs(write_yaml, tmp_path):
    path = write_yaml(
        TINY.replace(
            "[{name: synthetic, num_classes: 4, image_size: 16, train_per_class: 64, test_per_class: 40}]",
            "[{name: cifar10, download: false}]",
        )
    )
    empty = tmp_path / "no-data"
    empty.mkdir()
    results = tmp_path / "results"
    out = CliRunner().invoke(
        cli,
        [
            "run",
            str(path),
            "--results",
            str(results),
            "--data-root",
            str(empty),
            "--cache-dir",
            str(tmp_path / "c"),
        ],
    )
    assert out.exit_code == 2
    assert (
        f"{path}: tracks.backdoor-repair.datasets: dataset 'cifar10' cannot be loaded" in out.output
    )
    assert str(empty) in out.output
    assert not (results / "records").exists()
