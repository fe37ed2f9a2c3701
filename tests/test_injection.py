"""Fault-injection attacks (gda, sba) and their metrics, checked against figures computed
here independently, and the injection-repair track end to end on synthetic data."""

import copy
import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from mcbench.bench.load import load_benchmark
from mcbench.cli import cli
from mcbench.errors import ConfigError
from mcbench.kinds import Injection, MetricContext, TamperContext, TargetedTamper
from mcbench.run.runner import run_benchmark
from mcbench.run.store import Store
from mcbench.toolkit.evaluation import predict
from mcbench.toolkit.nets import Normalize, NormalizedNetwork
from mcbench.toolkit.tampering import margin
from mcbench.toolkit.training import FitOptions, SGDFields, fit
from mcbench_plugins.architectures.convnet import ConvNet
from mcbench_plugins.attacks.gda import GradientDescentAttack
from mcbench_plugins.attacks.sba import SingleBiasAttack
from mcbench_plugins.datasets.synthetic import Synthetic
from mcbench_plugins.metrics.injection_success import InjectionSuccess
from mcbench_plugins.metrics.target_accuracy import TargetAccuracy

CPU = torch.device("cpu")
# On synthetic class prototypes every image of a class looks alike, so a target cannot
# change class without its class-mates: these settings flip the targets quickly and
# test the mechanics. tests/test_realdata.py checks the defaults' small collateral damage.
FAST_GDA = dict(target_weight=10.0, lr=1e-2)

INJECTION_YAML = """\
version: 1
tracks:
  injection-repair:
    datasets: [{name: synthetic, num_classes: 4, image_size: 16, train_per_class: 64, test_per_class: 40}]
    architectures: [{name: convnet, widths: [8, 16]}]
    attacks: [{name: gda, targets: 3, target_weight: 10, lr: 0.01},
              {name: sba, targets: 3, target_label: 1}]
    repairs: [{name: path, epochs: 2, batch_size: 32}]
    connections: [bezier]
    budgets: [40]
    seeds: [0]
    metrics: [clean_accuracy, injection_success, target_accuracy]
    split: {defender_pool: 60}
    train: {epochs: 3, batch_size: 32, lr: 0.05}
    evaluate: {grid: 3}
"""


@pytest.fixture(scope="module")
def trained():
    """A small network trained on synthetic data, as mcbench wraps it, and that data."""
    data = Synthetic(
        num_classes=4, image_size=16, train_per_class=100, test_per_class=40, noise=0.5
    ).load(None, None)
    torch.manual_seed(0)
    net = ConvNet(widths=(8, 16), batch_norm=False).build(4, 3, 16)
    model = NormalizedNetwork(Normalize(data.mean, data.std), net)
    sgd = SGDFields(epochs=6, batch_size=32, lr=0.05, schedule="constant")
    fit(model, data.train, sgd, FitOptions(CPU, seed=0), augment=False)
    return model.eval(), data


def fresh_copy(model):
    return copy.deepcopy(model)


def tamper(attack, model, data, seed=0, injection_seed=1):
    injection = attack.choose_injection(data.test, 4, torch.Generator().manual_seed(injection_seed))
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(2))
    ctx = TamperContext(
        model=model,
        network=model.network,
        attacker=data.train.subset(order),
        injection=injection,
        num_classes=4,
        device=CPU,
        seed=seed,
    )
    return attack.tamper(ctx), injection


def changed_entries(before: dict, after: dict) -> dict[str, int]:
    return {
        k: int((before[k] != after[k]).sum())
        for k in before
        if not torch.equal(before[k], after[k])
    }


def predictions(model, images):
    return predict(model, images, CPU).argmax(1)


def test_margin_matches_a_brute_force_loop_with_negative_logits():
    logits = torch.tensor([[-5.0, -1.0, -3.0], [-0.5, -0.2, -9.0], [2.0, 2.0, -1.0]])
    labels = torch.tensor([0, 1, 1])
    expected = []
    for row, label in zip(logits.tolist(), labels.tolist()):
        others = [v for j, v in enumerate(row) if j != label]
        expected.append(row[label] - max(others))
    assert margin(logits, labels).tolist() == pytest.approx(expected)
    assert expected == pytest.approx([-4.0, 0.3, 0.0])


def test_injected_labels_are_never_the_true_ones_and_the_choice_is_seeded():
    pool = Synthetic(num_classes=5, test_per_class=20).load(None, None).test
    for seed in range(20):
        injection = TargetedTamper(targets=6).choose_injection(
            pool, 5, torch.Generator().manual_seed(seed)
        )
        assert bool((injection.labels != injection.images.labels).all())
        assert torch.equal(pool.labels[injection.index], injection.images.labels)
    again = TargetedTamper(targets=6).choose_injection(pool, 5, torch.Generator().manual_seed(19))
    assert torch.equal(again.index, injection.index) and torch.equal(again.labels, injection.labels)
    fixed = TargetedTamper(targets=30, target_label=2).choose_injection(
        pool, 5, torch.Generator().manual_seed(0)
    )
    assert bool((fixed.labels == 2).all()) and bool((fixed.images.labels != 2).all())
    with pytest.raises(ValueError, match="not a class index"):
        TargetedTamper(target_label=7).choose_injection(pool, 5, torch.Generator())


def test_gda_flips_the_targets_and_changes_only_the_last_layer(trained):
    model, data = trained
    model = fresh_copy(model)
    before = {k: v.clone() for k, v in model.network.state_dict().items()}
    report, injection = tamper(GradientDescentAttack(**FAST_GDA), model, data)
    flipped = (predictions(model, injection.images) == injection.labels).double().mean()
    assert flipped >= 0.95 and report["targets_flipped"] == pytest.approx(flipped.item())
    assert report["layer"] == "8" and report["tap"] == "layer only"
    assert set(changed_entries(before, model.network.state_dict())) == {"8.weight", "8.bias"}
    assert report["reached_success"] and report["steps"] < GradientDescentAttack().max_steps


def test_gda_on_a_hidden_layer_runs_the_whole_network_and_changes_only_that_layer(trained):
    model, data = trained
    model = fresh_copy(model)
    before = {k: v.clone() for k, v in model.network.state_dict().items()}
    attack = GradientDescentAttack(layer="3", target_weight=10.0, lr=3e-3, keep=200, max_steps=400)
    report, injection = tamper(attack, model, data)
    assert report["tap"] == "full network"
    flipped = (predictions(model, injection.images) == injection.labels).double().mean()
    assert flipped >= 0.95
    assert set(changed_entries(before, model.network.state_dict())) == {"3.weight", "3.bias"}


def test_gda_is_deterministic_and_its_keep_set_holds_its_labels_better_than_no_keep_set(trained):
    model, data = trained
    runs = []
    for keep in (1000, 1000, 0):
        m = fresh_copy(model)
        report, _ = tamper(GradientDescentAttack(keep=keep, **FAST_GDA), m, data)
        accuracy = (predictions(m, data.test) == data.test.labels).double().mean().item()
        runs.append((m.state_dict(), accuracy, report))
    (a, acc_keep, _), (b, _, _), (_, acc_none, _) = runs
    assert all(torch.equal(a[k], b[k]) for k in a)
    clean = (predictions(model, data.test) == data.test.labels).double().mean().item()
    assert acc_keep >= acc_none and acc_keep <= clean


def test_sba_closed_form_raise_is_the_smallest_that_flips_every_target(trained):
    model, data = trained
    model = fresh_copy(model)
    before = {k: v.clone() for k, v in model.network.state_dict().items()}
    attack = SingleBiasAttack(targets=4, target_label=2, margin=0.5)
    report, injection = tamper(attack, model, data)
    assert report["method"] == "closed form" and report["unit"] == 2
    assert changed_entries(before, model.network.state_dict()) == {"8.bias": 1}
    logits = predict(model, injection.images, CPU)
    assert bool((logits.argmax(1) == 2).all())
    # independently: the least-winning target wins by exactly the margin
    assert float(margin(logits, injection.labels).min()) == pytest.approx(0.5, abs=1e-4)
    with torch.no_grad():
        model.network[8].bias[2] -= 0.5 + 1e-3  # a slightly smaller raise loses a target
    assert not bool((predictions(model, injection.images) == 2).all())


def test_sba_on_a_hidden_layer_finds_a_bias_that_pushes_every_target_to_the_class(trained):
    model, data = trained
    model = fresh_copy(model)
    before = {k: v.clone() for k, v in model.network.state_dict().items()}
    report, injection = tamper(SingleBiasAttack(targets=4, target_label=1, layer="3"), model, data)
    assert report["method"] == "search"
    assert changed_entries(before, model.network.state_dict()) == {"3.bias": 1}
    assert bool((predictions(model, injection.images) == 1).all())
    assert report["targets_flipped"] == 1.0


def test_sba_refuses_a_layer_without_bias():
    net = ConvNet(widths=(8,)).build(4, 3, 8)  # BatchNorm: the convolution has no bias
    with pytest.raises(ValueError, match="has no bias"):
        SingleBiasAttack(layer="0").check_model(net)
    with pytest.raises(ValueError, match="no layer named 'fc'.*0, 1, 6"):
        SingleBiasAttack(layer="fc").check_model(net)


def test_injection_metrics_against_a_hand_count():
    images = Synthetic(num_classes=3, test_per_class=2).load(None, None).test
    true = images.labels  # 0 1 2 0 1 2
    injected = (true + 1) % 3
    fixed_logits = torch.eye(3)[torch.tensor([1, 1, 0, 1, 0, 2])] * 5  # predicted labels

    class Fixed(nn.Module):
        def forward(self, x):
            return fixed_logits[: len(x)]

    ctx = MetricContext(
        model=Fixed(),
        clean=images,
        triggered=None,
        num_classes=3,
        device=CPU,
        batch_size=10,
        predict=predict,
        injection=Injection(images, injected, torch.arange(6)),
    )
    # predicted 1 1 0 1 0 2 / injected 1 2 0 1 2 0 / true 0 1 2 0 1 2
    assert InjectionSuccess().compute(ctx) == pytest.approx(3 / 6)
    assert TargetAccuracy().compute(ctx) == pytest.approx(2 / 6)


def test_a_layer_name_the_network_lacks_is_a_validation_error(write_yaml, registry):
    path = write_yaml(INJECTION_YAML.replace("lr: 0.01}", "lr: 0.01, layer: classifier}"))
    with pytest.raises(ConfigError) as error:
        load_benchmark(path, registry)
    message = str(error.value)
    assert "no layer named 'classifier'" in message and "0, 1, 4, 5, 10" in message
    assert ":6:" in message and "attacks[0].layer" in message
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2 and "no layer named 'classifier'" in result.output


def test_injection_track_end_to_end_with_shared_endpoints_and_cached_tampering(
    write_yaml, registry, tmp_path, monkeypatch
):
    path = write_yaml(INJECTION_YAML)
    results = tmp_path / "results"
    bench = load_benchmark(path, registry)
    gda, sba = bench.cells
    assert gda.endpoint_key("A") == sba.endpoint_key("A")  # trained once for both attacks
    assert gda.tamper_key("A") != sba.tamper_key("A") != sba.tamper_key("B")
    summary = run_benchmark(bench, Store(results), CPU, None, tmp_path / "cache", lambda *a: None)
    assert not summary.failed and len(summary.ran) == 2
    for cell in bench.cells:
        record = json.loads((results / "records" / f"{cell.cell_id}.json").read_text())
        injection = record["injection"]
        assert len(injection["index"]) == 3 == record["sizes"]["targets"]
        assert all(a != b for a, b in zip(injection["labels"], injection["true_labels"]))
        assert record["sizes"]["evaluation"] == 100 - 3  # the targets are scored apart
        for role in ("A", "B"):
            assert record["untampered"][role]["injection_success"] < 1.0
            size = record["tamper"][role]["size"]
            assert size["l0"] >= 1 and size["linf"] > 0 and size["changed"]
        if cell is sba:
            assert all(record["tamper"][r]["size"]["l0"] == 1 for r in ("A", "B"))
            assert record["endpoints"]["A"]["injection_success"] == 1.0

    def no_tampering(*args, **kwargs):
        raise AssertionError("a finished matrix must not tamper again")

    monkeypatch.setattr(GradientDescentAttack, "tamper", no_tampering)
    monkeypatch.setattr(SingleBiasAttack, "tamper", no_tampering)
    for record in (results / "records").glob("*.json"):
        record.unlink()  # evaluation again, everything before it from the store
    again = run_benchmark(bench, Store(results), CPU, None, tmp_path / "cache", lambda *a: None)
    assert not again.failed and len(again.ran) == 2
