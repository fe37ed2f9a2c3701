"""The evasion-path track on synthetic data: adversarial endpoint and curve training,
metrics that carry their own attack, and the barrier / correlation table."""

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from mcbench.bench.load import load_benchmark
from mcbench.cli import cli
from mcbench.errors import ConfigError
from mcbench.results.leaderboard import build_tables
from mcbench.run.runner import run_benchmark
from mcbench.run.store import Store
from mcbench.toolkit.adversarial import adversarial_training_loss
from mcbench_plugins.architectures.convnet import ConvNet
from mcbench_plugins.attacks.pgd import PGD
from mcbench_plugins.datasets.synthetic import Synthetic
from tests import by_hand

CPU = torch.device("cpu")

EVASION_YAML = """\
version: 1
tracks:
  evasion-path:
    datasets: [{name: synthetic, num_classes: 4, image_size: 16, train_per_class: 64, test_per_class: 40}]
    architectures: [{name: convnet, widths: [8, 16]}]
    repairs: [{name: path, epochs: 2, batch_size: 32}]
    connections: [linear, bezier]
    budgets: [40]
    seeds: [0]
    adversarial: {endpoints: [B], attack: {name: pgd, eps: 0.03, step_size: 0.03, steps: 1}}
    metrics:
      - clean_accuracy
      - {name: robust_accuracy, samples: 0, attack: {name: pgd, eps: 0.03, steps: 3}}
      - {name: robust_accuracy, samples: 10, attack: {name: cw, eps: 0.5, search_steps: 2, steps: 10}}
      - {name: adversarial_loss, samples: 40, attack: {name: pgd, eps: 0.03, steps: 3}}
      - {name: input_hessian_eig, samples: 20}
    split: {defender_pool: 60}
    train: {epochs: 2, batch_size: 32, lr: 0.05}
    evaluate: {grid: 3}
"""


def test_metrics_carry_their_attacks_and_are_labelled_apart(write_yaml, registry):
    bench = load_benchmark(write_yaml(EVASION_YAML), registry)
    cell = bench.cells[0]
    keys = [m.key for m in cell.metrics]
    assert keys == [
        "clean_accuracy",
        "robust_accuracy(attack=pgd)",
        "robust_accuracy(attack=cw)",
        "adversarial_loss",
        "input_hessian_eig",
    ]
    pgd = cell.metrics[1].instance.attack
    assert isinstance(pgd, PGD) and pgd.steps == 3 and pgd.eps == 0.03
    assert cell.adversarial.endpoints == ("B",) and cell.adversarial.attack.steps == 1
    # only B's training depends on the inner attack
    assert "adversarial" in cell.endpoint_identity("B")
    assert "adversarial" not in cell.endpoint_identity("A")


@pytest.mark.parametrize(
    "old,new,key,message",
    [
        (
            "{name: pgd, eps: 0.03, steps: 3}}",
            "{name: pgd, epss: 0.03, steps: 3}}",
            "metrics[1].attack.epss",
            "unknown parameter 'epss'",
        ),
        (
            "{name: pgd, eps: 0.03, steps: 3}}",
            "{name: badnets}}",
            "metrics[1].attack.name",
            "not a EvasionAttack; expected one of: autoattack, cw, pgd, torchattacks",
        ),
        ("steps: 1}}", "steps: 0}}", "adversarial.attack", "steps must be at least 1"),
        (
            "adversarial: {endpoints: [B], attack: {name: pgd, eps: 0.03, step_size: 0.03, steps: 1}}",
            "adversarial: {endpoints: [C]}",
            "adversarial.endpoints",
            "must name A and/or B",
        ),
    ],
)
def test_bad_nested_attacks_are_located(write_yaml, registry, old, new, key, message):
    text = EVASION_YAML.replace(old, new, 1)
    assert text != EVASION_YAML
    with pytest.raises(ConfigError) as error:
        load_benchmark(write_yaml(text), registry)
    assert key in str(error.value) and message in str(error.value)
    assert error.value.line is not None


def test_adversarial_training_trains_on_the_attacks_worst_points():
    seen = {}

    class Spy(PGD):
        def perturb(self, model, images, labels, **kwargs):
            seen.update(
                goal=kwargs["goal"],
                training=model.training,
                grads=[p.requires_grad for p in model.parameters()],
            )
            return torch.zeros_like(images)  # a recognisable "adversarial" batch

    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x, y = torch.rand(5, 3, 2, 2), torch.tensor([0, 1, 2, 0, 1])
    loss = adversarial_training_loss(Spy())(model.train(), x, y, torch.Generator())
    expected = nn.functional.cross_entropy(model(torch.zeros_like(x)), y)
    assert loss.item() == pytest.approx(expected.item())
    assert seen == {"goal": "loss", "training": True, "grads": [False, False]}
    assert all(p.requires_grad for p in model.parameters())
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_evasion_track_end_to_end(write_yaml, registry, tmp_path):
    path = write_yaml(EVASION_YAML)
    results = tmp_path / "results"
    summary = run_benchmark(
        load_benchmark(path, registry),
        Store(results),
        CPU,
        None,
        tmp_path / "cache",
        lambda *a: None,
    )
    assert not summary.failed and len(summary.ran) == 2
    records = [json.loads(p.read_text()) for p in (results / "records").glob("*.json")]
    data = Synthetic(num_classes=4, image_size=16, train_per_class=64, test_per_class=40).load(
        None, tmp_path
    )
    for record in records:
        evaluation = by_hand.evaluation_images(data, record["config"])
        for role in ("A", "B"):
            net = ConvNet(widths=(8, 16)).build(4, 3, 16)
            key = record["keys"][f"endpoint_{role}"]
            model = by_hand.stored_model(results, "endpoint", key, net, data)
            scores = record["endpoints"][role]
            assert scores["clean_accuracy"] == pytest.approx(
                by_hand.accuracy(model, evaluation), abs=1e-9
            )
            # cw attacks the first 10 evaluation images: it never fixes a misclassified one
            first = evaluation.subset(torch.arange(10))
            robust = scores["robust_accuracy(attack=cw)"] * 10
            assert robust == pytest.approx(round(robust))
            assert round(robust) <= int((by_hand.predictions(model, first) == first.labels).sum())
        for point in record["path"]:
            # every evaluation image is attacked by pgd, and an attack never fixes a point
            assert 0 <= point["robust_accuracy(attack=pgd)"] <= point["clean_accuracy"]
            assert point["adversarial_loss"] > 0 and point["input_hessian_eig"] >= 0
            assert point["notes"]["input_hessian_eig"]["method"] == "exact"
    tables = build_tables(records)
    barriers = tables["barriers"]
    assert {"barrier:adversarial_loss_mean", "pearson_mean"} <= set(barriers.columns)
    result = CliRunner().invoke(cli, ["leaderboard", str(results)])
    assert result.exit_code == 0 and "Pearson" in result.output
    assert "robust_accuracy(attack=cw) %" in result.output


def test_a_curve_fitted_on_adversarial_loss_attacks_the_point_at_the_sampled_t():
    from mcbench.kinds import RepairContext
    from mcbench.kinds.data import ImageSet
    from mcbench_plugins.connections.bezier import Bezier
    from mcbench_plugins.repairs.path import PathRepair

    calls = []

    class Spy(PGD):
        def perturb(self, model, images, labels, **kwargs):
            # the network at the sampled t, weights detached from the bends
            t = model.t
            expected = model.curve.forward_with_weights(images, t)[0]
            calls.append(
                (
                    float(t),
                    torch.allclose(model(images), expected),
                    model(images).requires_grad,
                    kwargs["goal"],
                )
            )
            return super().perturb(model, images, labels, **kwargs)

    def net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Flatten(), nn.Linear(12, 3))

    data = ImageSet(torch.randint(0, 256, (16, 3, 2, 2), dtype=torch.uint8), torch.arange(16) % 3)
    a, b = net(), net()
    with torch.no_grad():
        b[1].weight.add_(0.5)
    ctx = RepairContext(
        endpoints=(a, b),
        build=net,
        bonafide=data,
        connection=Bezier(),
        num_classes=3,
        device=CPU,
        seed=0,
        augment=False,
    )
    clean = PathRepair(epochs=1, batch_size=8).fit(ctx)["interior"]
    adversarial = PathRepair(epochs=1, batch_size=8, adversarial=Spy(steps=2)).fit(ctx)["interior"]
    assert len(calls) == 2 and len({t for t, *_ in calls}) == 2
    assert all(same and not grad and goal == "loss" for _, same, grad, goal in calls)
    assert not torch.allclose(clean, adversarial)  # it trained on other points
