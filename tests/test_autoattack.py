"""The autoattack evasion attack (AutoAttack through torchattacks), checked against the
closed-form minimal L-inf distance on linear classifiers: from x of class y the smallest
L-inf step to the decision boundary is min_j (z_y - z_j) / ||w_y - w_j||_1 as long as the
box [0, 1] does not bind. And against PGD on a small trained network: AutoAttack's robust
accuracy is never the higher."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mcbench.registry.params import BadParam, build
from mcbench.testing import check_evasion_attack, check_plugin
from mcbench_plugins.attacks import autoattack
from mcbench_plugins.attacks.autoattack import AutoAttack
from mcbench_plugins.attacks.pgd import PGD

CHEAP = {"steps": 10, "queries": 100}
"""Budgets for the checks that are not about strength."""


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The models here are tiny: threads only add overhead and contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def linear_model(weight: torch.Tensor, bias: torch.Tensor) -> nn.Module:
    model = nn.Sequential(nn.Flatten(), nn.Linear(weight.shape[1], weight.shape[0]))
    with torch.no_grad():
        model[1].weight.copy_(weight)
        model[1].bias.copy_(bias)
    return model.eval()


def linf_distance(weight, bias, x, y) -> tuple[float, int]:
    """The closed-form L-inf distance from x (flat) to the boundary of class y's region,
    and the class across the nearest boundary."""
    z = weight @ x + bias
    return min(
        (float((z[y] - z[j]) / (weight[y] - weight[j]).abs().sum()), j)
        for j in range(len(z))
        if j != y
    )


def points_at_distance(weight, bias, n, distance, generator):
    """``n`` flat points, each exactly ``distance`` (L-inf) from its class's boundary: a
    point farther away is moved straight towards its nearest boundary. Moving by s along
    -sign(w_y - w_j) lowers every other margin z_y - z_k by at most s ||w_y - w_k||_1, so
    the nearest boundary stays the nearest."""
    points, labels = [], []
    while len(points) < n:
        x = 0.35 + 0.3 * torch.rand(weight.shape[1], generator=generator)
        y = int((weight @ x + bias).argmax())
        d, j = linf_distance(weight, bias, x, y)
        if d < distance:
            continue
        x = x - (d - distance) * torch.sign(weight[y] - weight[j])
        points.append(x)
        labels.append(y)
    return torch.stack(points), torch.tensor(labels)


def predictions(model, images) -> torch.Tensor:
    with torch.no_grad():
        return model(images).argmax(1)


def test_a_linear_model_is_fooled_just_beyond_its_closed_form_distance_and_never_within():
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(4, 16, generator=generator)
    bias = 0.1 * torch.randn(4, generator=generator)
    model = linear_model(weight, bias)
    distance = 0.05
    flat, labels = points_at_distance(weight, bias, 12, distance, generator)
    for x, y in zip(flat, labels):  # the construction, checked by the closed form
        assert linf_distance(weight, bias, x, int(y))[0] == pytest.approx(distance, rel=1e-4)
    images = flat.reshape(-1, 1, 4, 4)
    assert float(images.min()) - 1.01 * distance > 0.1  # the box never binds
    assert float(images.max()) + 1.01 * distance < 0.9
    assert torch.equal(predictions(model, images), labels)

    beyond = AutoAttack(eps=1.01 * distance, queries=500, seed=0)
    adversarial = beyond.perturb(model, images, labels)
    assert (predictions(model, adversarial) != labels).all()
    assert float((adversarial - images).abs().max()) <= 1.01 * distance * (1 + 1e-6)

    within = AutoAttack(eps=0.99 * distance, queries=500, seed=0)
    adversarial = within.perturb(model, images, labels)
    assert torch.equal(predictions(model, adversarial), labels)
    assert float((adversarial - images).abs().max()) <= 0.99 * distance * (1 + 1e-6)


def synthetic_images(n, generator):
    """Four classes of 3x8x8 images in [0, 1]: a class's fixed pattern plus noise."""
    patterns = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(123))
    labels = torch.arange(n) % 4
    noise = 0.25 * torch.randn(n, 3, 8, 8, generator=generator)
    return (0.5 * patterns[labels] + 0.25 + noise).clamp(0, 1), labels


def test_autoattack_is_no_weaker_than_pgd_on_a_small_trained_network():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 4),
    )
    generator = torch.Generator().manual_seed(0)
    train_images, train_labels = synthetic_images(512, generator)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(150):
        batch = torch.arange(64) + 64 * (step % 8)
        optimiser.zero_grad()
        F.cross_entropy(model(train_images[batch]), train_labels[batch]).backward()
        optimiser.step()
    model.eval()
    images, labels = synthetic_images(64, generator)
    clean = float((predictions(model, images) == labels).float().mean())
    eps = 0.05
    pgd = PGD(eps=eps, step_size=eps / 4, steps=10)
    pgd_points = pgd.perturb(model, images, labels, generator=torch.Generator().manual_seed(0))
    pgd_accuracy = float((predictions(model, pgd_points) == labels).float().mean())
    aa = AutoAttack(eps=eps, queries=500)
    aa_points = aa.perturb(model, images, labels, generator=torch.Generator().manual_seed(0))
    aa_accuracy = float((predictions(model, aa_points) == labels).float().mean())
    assert clean > 0.8
    assert 0.2 < pgd_accuracy < 0.8  # and neither too small nor too large to tell
    assert aa_accuracy <= pgd_accuracy
    assert float((aa_points - images).abs().max()) <= eps * (1 + 1e-6)


def test_the_plugin_keeps_the_evasion_contract():
    check_plugin(AutoAttack, **CHEAP)
    check_evasion_attack(AutoAttack(norm="l2", eps=0.5, **CHEAP))


def small_network(classes: int) -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, classes)).eval()


def test_the_same_seed_gives_the_same_points_and_the_global_rng_is_left_alone():
    model = small_network(5)
    images = torch.rand(16, 1, 4, 4, generator=torch.Generator().manual_seed(2))
    labels = predictions(model, images)
    attack = AutoAttack(eps=0.05, seed=7, **CHEAP)
    state = torch.get_rng_state()
    first = attack.perturb(model, images, labels, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(99)
    second = attack.perturb(model, images, labels, generator=torch.Generator().manual_seed(5))
    assert torch.equal(first, second)  # a fixed seed: the generator does not matter
    assert (predictions(model, first) != labels).any()  # and the attack did something

    drawn = AutoAttack(eps=0.05, **CHEAP)  # seed null: drawn from the generator
    again = [
        drawn.perturb(model, images, labels, generator=torch.Generator().manual_seed(3))
        for _ in range(2)
    ]
    assert torch.equal(*again)


def test_the_number_of_classes_is_read_off_the_model(monkeypatch):
    import torchattacks

    built = []

    def spy(*args, **kwargs):
        attack = original(*args, **kwargs)
        built.append((kwargs["n_classes"], attack))
        return attack

    original = torchattacks.AutoAttack
    monkeypatch.setattr(torchattacks, "AutoAttack", spy)
    images = torch.rand(4, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    for classes, targets in ((6, 5), (20, 9)):  # the official versions aim at 9 at most
        model = small_network(classes)
        AutoAttack(eps=0.01, steps=1, queries=1).perturb(model, images, predictions(model, images))
        n_classes, attack = built[-1]
        assert n_classes == classes
        parts = attack._autoattack.attacks
        assert [getattr(p, "n_target_classes", None) for p in parts] == [
            None,
            targets,
            targets,
            None,
        ]
        assert [getattr(p, "steps", None) for p in parts] == [1, 1, 1, None]


def test_too_few_classes_are_refused():
    with pytest.raises(ValueError, match="at least 4 classes"):
        AutoAttack().check_dataset(3, 3, 32)
    AutoAttack(version="rand").check_dataset(3, 3, 32)
    model = small_network(3)
    images = torch.rand(2, 1, 4, 4)
    with pytest.raises(ValueError, match="at least 4 classes"):
        AutoAttack(**CHEAP).perturb(model, images, predictions(model, images))


@pytest.mark.parametrize(
    "values, key",
    [
        ({"norm": "l1"}, "norm"),
        ({"eps": -0.1}, "eps"),
        ({"eps": "big"}, "eps"),
        ({"version": "fast"}, "version"),
        ({"steps": 0}, "steps"),
        ({"queries": 2.5}, "queries"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_parameters_are_refused_at_their_key(values, key):
    with pytest.raises(BadParam) as caught:
        build(AutoAttack, values)
    assert caught.value.key == key


def test_a_missing_torchattacks_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchattacks", None)
    with pytest.raises(ImportError, match=r"mcbench\[attacks\]"):
        AutoAttack()
    with pytest.raises(BadParam, match=r"pip install \"mcbench\[attacks\]\""):
        build(AutoAttack, {"eps": 0.03})


def test_torchattacks_is_imported_only_when_used():
    tree = ast.parse(Path(autoattack.__file__).read_text())
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = [alias.name for node in top_level for alias in node.names]
    names += [node.module for node in top_level if isinstance(node, ast.ImportFrom)]
    assert not [name for name in names if name and name.startswith("torchattacks")]
