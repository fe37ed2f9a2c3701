"""The paper's first result on the real CIFAR-10 copy (slow: run with -m realdata).

Two small networks trained on BadNets-poisoned CIFAR-10 (a class-balanced subset) are
joined by a Bezier curve fitted on 2,500 bonafide images from the defender's pool; the
evaluation set is disjoint from everything the defender used.
"""

import json

import pytest
from click.testing import CliRunner

from mcbench.cli import cli
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.realdata

BENCH = """\
version: 1
tracks:
  backdoor-repair:
    datasets: [{name: cifar10, train_subset: 10000}]
    architectures: [convnet]
    attacks: [{name: badnets, target: 0, poison_rate: 0.1}]
    repairs: [{name: path, epochs: 30, lr: 0.02, batch_size: 64}]
    connections: [linear, bezier]
    budgets: [2500]
    seeds: [0]
    metrics: [clean_accuracy, attack_success_rate]
    split: {defender_pool: 5000, eval_size: 2000}
    train: {epochs: 8, lr: 0.05}
    evaluate: {grid: 3}
"""


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    if not SHARED_DATA.exists():
        pytest.skip(f"no real data at {SHARED_DATA} (set MCBENCH_DATA)")
    root = tmp_path_factory.mktemp("realdata")
    (root / "bench.yaml").write_text(BENCH)
    result = CliRunner().invoke(
        cli,
        [
            "run",
            str(root / "bench.yaml"),
            "--results",
            str(root / "results"),
            "--data-root",
            str(SHARED_DATA),
        ],
    )
    assert result.exit_code == 0, result.output
    print(result.output)
    recs = [json.loads(p.read_text()) for p in (root / "results" / "records").glob("*.json")]
    return {r["config"]["connection"]["name"]: r for r in recs}


def at(record, t):
    return next(p for p in record["path"] if p["t"] == t)


def test_records_describe_the_real_data(records):
    rec = records["bezier"]
    assert "sha256 c11cbfca" in rec["data_source"]
    assert rec["sizes"]["train"] == 10000 and rec["sizes"]["bonafide"] == 2500
    assert rec["sizes"]["evaluation"] == 2000


def test_endpoints_are_backdoored_and_accurate(records):
    for role, scores in records["bezier"]["endpoints"].items():
        assert scores["attack_success_rate"] >= 0.85, role
        assert scores["clean_accuracy"] >= 0.60, role


def test_mid_path_of_the_curve_drops_the_backdoor_and_keeps_accuracy(records):
    rec = records["bezier"]
    ends = rec["endpoints"].values()
    end_asr = min(s["attack_success_rate"] for s in ends)
    end_acc = sum(s["clean_accuracy"] for s in ends) / 2
    mid = at(rec, 0.5)
    assert mid["attack_success_rate"] <= 0.30
    assert mid["attack_success_rate"] <= end_asr / 3
    assert mid["clean_accuracy"] >= end_acc - 0.12


def test_the_straight_line_has_an_accuracy_barrier_the_curve_avoids(records):
    linear, bezier = at(records["linear"], 0.5), at(records["bezier"], 0.5)
    assert linear["clean_accuracy"] < bezier["clean_accuracy"] - 0.10
