"""The torchattacks evasion attack (any torchattacks class by name) and the adapter it
shares with autoattack: what a benchmark may name is checked when it is read, the points
come back inside the threat model, FGSM matches its closed form on a linear classifier,
and the model and the global RNG are left as they were."""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mcbench.registry import load_registry
from mcbench.registry.params import BadParam, build
from mcbench.testing import check_evasion_attack, check_plugin
from mcbench_plugins.attacks import autoattack, torchattacks_attack
from mcbench_plugins.attacks.torchattacks_attack import (
    MissingTorchattacks,
    TorchattacksAttack,
    within_threat_model,
)

torchattacks = pytest.importorskip("torchattacks")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The models here are tiny: threads only add overhead and contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def linear_model(classes: int = 4, features: int = 16, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(features, classes)).eval()


def images_and_labels(n: int = 8, seed: int = 1):
    images = 0.2 + 0.6 * torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed))
    return images, torch.arange(n) % 4


def predictions(model, images) -> torch.Tensor:
    with torch.no_grad():
        return model(images).argmax(1)


@pytest.mark.parametrize(
    "values",
    [
        {},  # PGD
        {"attack": "PGD", "targeted": True},
        {"attack": "PGDL2", "kwargs": {"eps": 0.5}},
        {"attack": "APGD", "kwargs": {"norm": "L2", "eps": 0.5, "steps": 5}},
        {"attack": "CW", "kwargs": {"steps": 3}},  # no ball: only [0, 1]
    ],
)
def test_the_plugin_keeps_the_evasion_contract(values):
    if values:
        check_evasion_attack(TorchattacksAttack(**values))
    else:
        check_plugin(TorchattacksAttack)


def test_the_threat_model_is_the_attacks_own():
    assert (TorchattacksAttack().norm, TorchattacksAttack().eps) == ("linf", 8 / 255)
    l2 = TorchattacksAttack(attack="PGDL2", kwargs={"eps": 0.5})
    assert (l2.norm, l2.eps) == ("l2", 0.5)
    apgd = TorchattacksAttack(attack="APGD", kwargs={"norm": "L2"})
    assert (apgd.norm, apgd.eps) == ("l2", 8 / 255)
    pifgsm = TorchattacksAttack(attack="PIFGSM")
    assert (pifgsm.norm, pifgsm.eps) == ("linf", 16 / 255)
    assert (TorchattacksAttack(attack="DeepFool").eps, TorchattacksAttack(attack="CW").norm) == (
        None,
        None,
    )


def test_points_are_brought_into_the_ball_and_into_the_box():
    generator = torch.Generator().manual_seed(0)
    clean = torch.rand(6, 3, 4, 4, generator=generator)
    far = clean + 2 * torch.randn(6, 3, 4, 4, generator=generator)
    near = (clean + 0.001 * torch.randn(6, 3, 4, 4, generator=generator)).clamp(0, 1)
    for norm, order, eps in (("linf", float("inf"), 0.1), ("l2", 2, 0.5), ("l1", 1, 2.0)):
        inside = within_threat_model(far, clean, norm, eps)
        distance = torch.linalg.vector_norm((inside - clean).flatten(1), ord=order, dim=1)
        assert float(distance.max()) <= eps * (1 + 1e-6)
        assert 0 <= float(inside.min()) and float(inside.max()) <= 1
        assert torch.equal(within_threat_model(near, clean, norm, eps), near)
    assert torch.equal(within_threat_model(far, clean, None, None), far.clamp(0, 1))


def test_fgsm_is_its_closed_form_on_a_linear_model():
    model = linear_model()
    images, labels = images_and_labels()
    eps = 0.05
    weight, bias = model[1].weight.detach(), model[1].bias.detach()
    flat = images.flatten(1)
    probabilities = torch.softmax(flat @ weight.T + bias, dim=1)
    gradient = (probabilities - F.one_hot(labels, 4)) @ weight  # of the cross-entropy
    expected = (flat + eps * gradient.sign()).clamp(0, 1).reshape(images.shape)

    fgsm = TorchattacksAttack(attack="FGSM", kwargs={"eps": eps})
    points = fgsm.perturb(model, images, labels, goal="loss")
    assert torch.allclose(points, expected, atol=1e-6)
    # misclassify: the points the model already gets wrong are left alone
    wrong = predictions(model, images) != labels
    assert wrong.any() and (~wrong).any()
    points = fgsm.perturb(model, images, labels, goal="misclassify")
    assert torch.equal(points[wrong], images[wrong])
    assert torch.allclose(points[~wrong], expected[~wrong], atol=1e-6)


def test_a_targeted_attack_aims_at_the_targets():
    model = linear_model()
    with torch.no_grad():  # steep enough for every target to be within reach
        model[1].weight.mul_(4)
    images, _ = images_and_labels()
    labels = predictions(model, images)
    targets = (labels + 1) % 4
    arguments = {"eps": 0.5, "alpha": 0.05, "steps": 30, "random_start": False}
    attack = TorchattacksAttack(attack="PGD", targeted=True, kwargs=arguments)
    points = attack.perturb(model, images, labels, targets=targets)
    assert torch.equal(predictions(model, points), targets)
    direct = torchattacks.PGD(model, **arguments)
    direct.set_mode_targeted_by_label(quiet=True)
    assert torch.allclose(points, direct(images, targets))
    with pytest.raises(ValueError, match="needs targets"):
        attack.perturb(model, images, labels)


def test_the_number_of_classes_comes_from_the_model():
    model = linear_model(classes=5)
    images, labels = images_and_labels()
    # torchattacks' default of 10 classes would make APGD-T aim at classes the model lacks
    attack = TorchattacksAttack(attack="APGDT", kwargs={"eps": 0.01, "steps": 2})
    points = attack.perturb(model, images, predictions(model, images))
    assert float((points - images).abs().max()) <= 0.01 * (1 + 1e-6)


def test_randomness_comes_from_the_generator_and_the_global_rng_is_left_alone():
    model = linear_model()
    images, labels = images_and_labels()
    pgd = TorchattacksAttack(attack="PGD", kwargs={"eps": 0.05, "steps": 1, "alpha": 0.001})

    def run(attack, seed):
        return attack.perturb(
            model, images, labels, goal="loss", generator=torch.Generator().manual_seed(seed)
        )

    state = torch.get_rng_state()
    first = run(pgd, 0)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(5)
    assert torch.equal(run(pgd, 0), first)
    assert not torch.equal(run(pgd, 1), first)  # the random start moved with the seed
    # an attack with its own seed argument: a seed given in kwargs wins over the generator
    seeded = TorchattacksAttack(attack="APGD", kwargs={"eps": 0.05, "steps": 2, "seed": 3})
    assert torch.equal(run(seeded, 0), run(seeded, 1))


def probed_network() -> tuple[nn.Module, list[bool]]:
    """A small network that records the train flag each forward pass sees."""
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(self.training)
            return x

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), Probe(), nn.Flatten()
    )
    return nn.Sequential(model, nn.Linear(64, 4)), seen


def test_the_models_flags_and_gradients_are_left_as_they_were():
    model, seen = probed_network()
    model.eval()
    model[0][4].train()  # a mixed mode that torchattacks' model.eval() would flatten
    model[1].bias.requires_grad_(False)
    for i, p in enumerate(model.parameters()):
        p.grad = torch.full_like(p, float(i))
    weights = [p.detach().clone() for p in model.parameters()]
    buffers = [b.clone() for b in model.buffers()]
    modes = [m.training for m in model.modules()]
    images, labels = images_and_labels()
    # FAB differentiates with backward(), which would fill the parameters' .grad
    fab = TorchattacksAttack(attack="FAB", kwargs={"eps": 0.05, "steps": 3})
    fab.perturb(model, images, labels, generator=torch.Generator().manual_seed(0))
    assert seen and not any(seen)
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == [True, True, True, True, True, False]
    for i, (p, weight) in enumerate(zip(model.parameters(), weights)):
        assert torch.equal(p, weight) and torch.equal(p.grad, torch.full_like(p, float(i)))
    assert all(torch.equal(a, b) for a, b in zip(model.buffers(), buffers))


def test_a_model_in_training_is_attacked_in_training():
    model, seen = probed_network()
    model.train()
    images, labels = images_and_labels()
    TorchattacksAttack(attack="FGSM").perturb(model, images, labels, goal="loss")
    assert seen and all(seen)
    assert all(m.training for m in model.modules())


def test_an_unknown_attack_is_refused_with_the_list_of_attacks():
    with pytest.raises(BadParam) as caught:
        build(TorchattacksAttack, {"attack": "FGMS"})
    message = str(caught.value)
    assert caught.value.key == "attack"
    assert "did you mean 'FGSM'" in message
    for name in ("PGD", "PGDL2", "APGD", "AutoAttack", "Square", "DeepFool"):
        assert name in message
    with pytest.raises(ValueError, match="no attack 'MultiAttack'"):  # it takes attacks
        TorchattacksAttack(attack="MultiAttack")


def test_an_unknown_argument_is_refused_with_the_arguments_there_are():
    with pytest.raises(BadParam) as caught:
        build(TorchattacksAttack, {"attack": "PGD", "kwargs": {"epsilon": 0.1}})
    assert caught.value.key == "kwargs"
    accepted = [n for n in inspect.signature(torchattacks.PGD).parameters if n != "model"]
    assert f"arguments: {', '.join(accepted)}" in str(caught.value)
    with pytest.raises(ValueError, match="mcbench sets it"):
        TorchattacksAttack(attack="APGDT", kwargs={"n_classes": 10})


@pytest.mark.parametrize(
    "values, key, message",
    [
        ({"attack": 3}, "attack", "expected"),
        ({"kwargs": [0.1]}, "kwargs", "expected"),
        ({"targeted": "yes"}, "targeted", "expected"),
        ({"kwargs": {"eps": "big"}}, "kwargs", "eps must be a finite number"),
        ({"kwargs": {"random_start": 1}}, "kwargs", "random_start must be true or false"),
        ({"attack": "APGD", "kwargs": {"loss": 2}}, "kwargs", "loss must be text"),
        ({"attack": "AutoAttack", "kwargs": {"version": "fast"}}, "kwargs", "refused"),
        ({"attack": "DeepFool", "targeted": True}, "targeted", "no targeted mode"),
    ],
)
def test_a_parameter_of_the_wrong_kind_is_refused(values, key, message):
    with pytest.raises(BadParam, match=message) as caught:
        build(TorchattacksAttack, values)
    assert caught.value.key in (key, None)


def test_the_modules_register_their_plugins():
    registry = load_registry(entry_points=False, extra=(torchattacks_attack, autoattack))
    assert registry.get("attack", "torchattacks").cls is TorchattacksAttack
    assert registry.get("attack", "autoattack").cls is autoattack.AutoAttack


def test_a_missing_torchattacks_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchattacks", None)
    with pytest.raises(MissingTorchattacks, match=r"pip install \"mcbench\[attacks\]\""):
        TorchattacksAttack()
    with pytest.raises(BadParam, match=r"mcbench\[attacks\]"):
        build(TorchattacksAttack, {"attack": "FGSM"})


def test_torchattacks_is_imported_only_when_used():
    tree = ast.parse(Path(torchattacks_attack.__file__).read_text())
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    names = [alias.name for node in top_level for alias in node.names]
    names += [node.module for node in top_level if isinstance(node, ast.ImportFrom)]
    assert not [name for name in names if name and name.startswith("torchattacks")]
