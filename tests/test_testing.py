"""The contract checks of mcbench.testing fail on plugins that break the contract: one
deliberately broken fake per rule, next to a fake that keeps it and passes."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mcbench.kinds import (
    ArchitecturePlugin,
    EvasionAttack,
    MetricPlugin,
    ModelPath,
    RepairPlugin,
    TamperAttack,
)
from mcbench.kinds.data import ImageSet
from mcbench.testing import (
    check_architecture,
    check_dataset,
    check_evasion_attack,
    check_plugin,
    check_registered,
    check_repair,
)
from mcbench_plugins.datasets.synthetic import Synthetic

# -- evasion attacks --------------------------------------------------------------------


@dataclass(frozen=True)
class BallNoise(EvasionAttack):
    """Uniform noise in the L-inf ball, drawn from the generator: keeps the contract."""

    name: ClassVar[str] = "ball-noise"
    eps: float = field(default=0.1, metadata={"help": "radius"})

    def noise(self, images, generator):
        return (torch.rand(images.shape, generator=generator) * 2 - 1) * self.eps

    def perturb(self, model, images, labels, *, goal="misclassify", targets=None, generator=None):
        return (images + self.noise(images, generator)).clamp(0, 1)


@dataclass(frozen=True)
class LeavesTheBall(BallNoise):
    """Noise of twice the radius."""

    def noise(self, images, generator):
        return 2 * super().noise(images, generator)


@dataclass(frozen=True)
class LeavesTheL2Ball(BallNoise):
    """L-inf steps of eps / 4 per pixel: far outside the L2 ball of radius eps."""

    norm: str = field(default="l2", metadata={"help": "threat model"})
    eps: float = field(default=0.5, metadata={"help": "radius"})

    def noise(self, images, generator):
        return torch.full_like(images, self.eps / 4)


@dataclass(frozen=True)
class LeavesTheBox(BallNoise):
    """Noise inside the ball, not clamped into [0, 1]."""

    def perturb(self, model, images, labels, *, goal="misclassify", targets=None, generator=None):
        return images + self.noise(images, generator)


@dataclass(frozen=True)
class Backpropagates(BallNoise):
    """Calls loss.backward(), which accumulates into the parameters' .grad."""

    def perturb(self, model, images, labels, *, goal="misclassify", targets=None, generator=None):
        x = images.clone().requires_grad_(True)
        F.cross_entropy(model(x), labels).backward()
        return (images + self.eps * x.grad.sign()).clamp(0, 1)


@dataclass(frozen=True)
class ZeroesGrads(BallNoise):
    """Clears the model's gradients (model.zero_grad())."""

    def perturb(self, model, images, labels, **kwargs):
        model.zero_grad()
        return super().perturb(model, images, labels, **kwargs)


@dataclass(frozen=True)
class TrainMode(BallNoise):
    """Runs the model in train mode: BatchNorm's running statistics move."""

    def perturb(self, model, images, labels, **kwargs):
        model.train()
        with torch.no_grad():
            model(images)
        return super().perturb(model, images, labels, **kwargs)


@dataclass(frozen=True)
class GlobalRandom(BallNoise):
    """Draws from the global RNG instead of the generator."""

    def perturb(self, model, images, labels, *, goal="misclassify", targets=None, generator=None):
        return super().perturb(model, images, labels, goal=goal, generator=None)


@dataclass(frozen=True)
class EditsItsInput(BallNoise):
    """Adds the noise to the images it was given, in place."""

    def perturb(self, model, images, labels, *, goal="misclassify", targets=None, generator=None):
        return images.add_(self.noise(images, generator)).clamp_(0, 1)


@dataclass(frozen=True)
class MinimumNorm(EvasionAttack):
    """Unbounded, like C&W without eps: every pixel moved to 0 or 1."""

    name: ClassVar[str] = "minimum-norm"

    def perturb(self, model, images, labels, **kwargs):
        return (images > 0.5).to(images.dtype)


def test_an_attack_that_keeps_the_contract_passes():
    check_plugin(BallNoise)


@pytest.mark.parametrize(
    "cls, message",
    [
        (LeavesTheBall, "beyond eps"),
        (LeavesTheL2Ball, "in the l2 norm, beyond eps"),
        (LeavesTheBox, r"outside \[0, 1\]"),
        (Backpropagates, ".grad untouched"),
        (ZeroesGrads, ".grad untouched"),
        (TrainMode, "eval mode"),
        (GlobalRandom, "same generator seed gave different points"),
        (EditsItsInput, "must not modify the images"),
    ],
)
def test_an_attack_that_breaks_the_contract_fails(cls, message):
    with pytest.raises(AssertionError, match=message):
        check_plugin(cls)


def test_train_mode_restored_still_moves_the_batchnorm_statistics():
    @dataclass(frozen=True)
    class TrainModeRestored(TrainMode):
        def perturb(self, model, images, labels, **kwargs):
            out = super().perturb(model, images, labels, **kwargs)
            model.eval()
            return out

    with pytest.raises(AssertionError, match="parameters and buffers untouched"):
        check_evasion_attack(TrainModeRestored())


def test_a_minimum_norm_attack_is_held_to_the_box_and_to_a_radius_when_given_one():
    check_evasion_attack(MinimumNorm())  # no radius: [0, 1] only
    with pytest.raises(AssertionError, match="l2 norm, beyond eps=1.0"):
        check_evasion_attack(MinimumNorm(), norm="l2", eps=1.0)
    # a radius with no norm is held as an L-inf bound, which every Lp ball implies
    with pytest.raises(AssertionError, match="linf norm, beyond eps=0.4"):
        check_evasion_attack(MinimumNorm(), eps=0.4)
    check_evasion_attack(MinimumNorm(), eps=1.0)


# -- tamper attacks -------------------------------------------------------------------------


@dataclass(frozen=True)
class SeededNoiseTamper(TamperAttack):
    """Seeded noise on every weight; reports a timing, which is not compared."""

    name: ClassVar[str] = "seeded-noise"

    def report(self, ctx):
        return {"scale": 0.1, "seconds_per_step": random.random()}

    def tamper(self, ctx):
        generator = torch.Generator().manual_seed(ctx.seed)
        with torch.no_grad():
            for p in ctx.model.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=generator))
        return self.report(ctx)


@dataclass(frozen=True)
class RandomReport(SeededNoiseTamper):
    """Deterministic weights, a report that is not."""

    def report(self, ctx):
        return {"scale": random.random()}


def test_tamper_reports_are_compared_timings_aside():
    check_plugin(SeededNoiseTamper)
    with pytest.raises(AssertionError, match="the reports differ"):
        check_plugin(RandomReport)


# -- architectures --------------------------------------------------------------------------


class CachedWeights(nn.Module):
    """Reads its weight from a list made at construction, not from its parameter."""

    def __init__(self, classes):
        super().__init__()
        self.fc = nn.Linear(3, classes)
        self.cache = [self.fc.weight]

    def forward(self, x):
        return F.linear(x.mean(dim=(2, 3)), self.cache[0], self.fc.bias)


class CountsCalls(nn.Module):
    """Adds a call counter it keeps in a buffer to the logits."""

    def __init__(self, classes):
        super().__init__()
        self.fc = nn.Linear(3, classes)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls += 1
        return self.fc(x.mean(dim=(2, 3))) + self.calls


class Pooled(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.fc = nn.Linear(3, classes)

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)))


def architecture(module):
    @dataclass(frozen=True)
    class Arch(ArchitecturePlugin):
        """A fake architecture."""

        name: ClassVar[str] = "fake"

        def build(self, num_classes, in_channels, image_size):
            return module(num_classes)

    return Arch


def test_an_architecture_that_works_under_functional_call_passes():
    check_plugin(architecture(Pooled))


@pytest.mark.parametrize(
    "module, message",
    [
        (CachedWeights, "with other weights differs"),
        (CountsCalls, "with the network's own weights differs"),
        (lambda k: Pooled(k + 1), r"expected logits \[2, 10\]"),
    ],
)
def test_an_architecture_that_breaks_functional_call_fails(module, message):
    with pytest.raises(AssertionError, match=message):
        check_architecture(architecture(module)())


# -- repairs --------------------------------------------------------------------------------


class OneModel(ModelPath):
    def __init__(self, model, points=(None,)):
        self.model, self.points = model, points

    def model_at(self, point):
        return self.model


@dataclass(frozen=True)
class KeepA(RepairPlugin):
    """Returns endpoint A: keeps the contract."""

    name: ClassVar[str] = "keep-a"

    def fit(self, ctx):
        return {k: v.clone() for k, v in ctx.endpoints[0].state_dict().items()}

    def model(self, ctx, state):
        model = ctx.build()
        model.load_state_dict(state)
        return model

    def path(self, ctx, state, grid):
        return OneModel(self.model(ctx, state))


@dataclass(frozen=True)
class ListState(KeepA):
    def fit(self, ctx):
        return {"weights": [1.0, 2.0]}


@dataclass(frozen=True)
class WrongPoints(KeepA):
    def path(self, ctx, state, grid):
        return OneModel(self.model(ctx, state), points=tuple(grid)[:-1])


@dataclass(frozen=True)
class IgnoresItsState(KeepA):
    """Rebuilds a freshly initialised network instead of loading the tensors."""

    def model(self, ctx, state):
        return ctx.build()


@dataclass(frozen=True)
class NaNWeights(KeepA):
    def model(self, ctx, state):
        model = super().model(ctx, state)
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))
        return model


@dataclass(frozen=True)
class EditsTheEndpoint(KeepA):
    def fit(self, ctx):
        with torch.no_grad():
            next(ctx.endpoints[0].parameters()).mul_(2)
        return super().fit(ctx)


def test_a_repair_that_keeps_the_contract_passes():
    check_plugin(KeepA)


@pytest.mark.parametrize(
    "cls, message",
    [
        (ListState, "dict of str -> tensor"),
        (WrongPoints, "the points asked for"),
        (IgnoresItsState, "two paths rebuilt from the same tensors differ"),
        (NaNWeights, "non-finite logits"),
        (EditsTheEndpoint, "leave the endpoints untouched"),
    ],
)
def test_a_repair_that_breaks_the_contract_fails(cls, message):
    with pytest.raises(AssertionError, match=message):
        check_repair(cls())


# -- metrics --------------------------------------------------------------------------------


def metric(value, higher_is_better=True, percent=False):
    @dataclass(frozen=True)
    class Metric(MetricPlugin):
        """A fake metric."""

        name: ClassVar[str] = "fake"

        def compute(self, ctx):
            return value

    Metric.higher_is_better = higher_is_better
    Metric.percent = percent
    return Metric


def test_a_metric_that_keeps_the_contract_passes():
    check_plugin(metric(0.25, percent=True))
    check_plugin(metric(7.5, higher_is_better=False))


@pytest.mark.parametrize(
    "cls, message",
    [
        (metric(float("nan")), "returned nan"),
        (metric(float("inf"), higher_is_better=False), "returned inf"),
        (metric(0.5, higher_is_better=None), "must declare higher_is_better"),
        (metric(7.3, percent=True), r"fraction in \[0, 1\], got 7.3"),
        (metric(1), "must return a float, got int"),
    ],
)
def test_a_metric_that_breaks_the_contract_fails(cls, message):
    with pytest.raises(AssertionError, match=message):
        check_plugin(cls)


# -- datasets -------------------------------------------------------------------------------


def dataset(change):
    """A small Synthetic dataset whose loaded Dataset is passed through ``change``."""

    @dataclass(frozen=True)
    class Changed(Synthetic):
        def load(self, root, cache_dir):
            return change(super().load(root, cache_dir))

    return Changed(num_classes=3, image_size=6, train_per_class=4, test_per_class=2)


def relabel(data, labels):
    return dataclasses.replace(data, train=ImageSet(data.train.images, labels))


def test_a_dataset_that_keeps_the_contract_passes():
    check_dataset(dataset(lambda data: data))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: relabel(d, d.train.labels + 1), r"labels span 1..3, outside 0..2"),
        (
            lambda d: dataclasses.replace(
                d, test=ImageSet(d.test.images[:, :, :5, :5], d.test.labels)
            ),
            r"train images are \(3, 6, 6\), test images \(3, 5, 5\)",
        ),
        (lambda d: dataclasses.replace(d, mean=d.mean[:1]), "one value per channel"),
        (lambda d: dataclasses.replace(d, std=(0.2, 0.0, 0.2)), "std must be > 0"),
        (
            lambda d: dataclasses.replace(d, num_classes=4, class_names=(*d.class_names, "x")),
            r"announces \(3, 3, 6\)",
        ),
        (
            lambda d: relabel(d, torch.randint(0, 3, d.train.labels.shape)),
            "two loads gave different train data",
        ),
    ],
)
def test_a_dataset_that_breaks_the_contract_fails(change, message):
    with pytest.raises(AssertionError, match=message):
        check_dataset(dataset(change))


# -- registration ---------------------------------------------------------------------------


def test_check_registered_finds_the_entry_point_and_refuses_a_stand_in(registry):
    badnets = registry.get("attack", "badnets").cls
    assert check_registered(badnets).provider == "badnets"
    stand_in = type("BadNets", (badnets,), {})
    with pytest.raises(AssertionError, match="registered as"):
        check_registered(stand_in)


def test_the_checks_leave_the_global_random_state_as_it_was():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    for cls in (BallNoise, SeededNoiseTamper, KeepA, architecture(Pooled), metric(0.5)):
        check_plugin(cls)
    assert torch.equal(torch.get_rng_state(), state)
