"""The pgd evasion attack: closed-form minimal perturbations of linear models, agreement with
torchattacks, the threat model, early stopping, worst-case bookkeeping, seeding."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mcbench.kinds.data import to_float
from mcbench.testing import check_evasion_attack
from mcbench.toolkit.nets import Normalize
from mcbench_plugins.architectures.convnet import ConvNet
from mcbench_plugins.attacks.pgd import PGD
from mcbench_plugins.datasets.synthetic import Synthetic

torchattacks = pytest.importorskip("torchattacks")

EPS = 8 / 255


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # every tensor here is tiny: a second thread only adds synchronisation, which costs
    # seconds per test when the cores are shared with other work
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def linear_model(weight, bias) -> nn.Module:
    weight = torch.tensor(weight, dtype=torch.float32)
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return nn.Sequential(nn.Flatten(), layer).eval()


# a binary classifier on 1x2x2 images
BINARY_W = [[1.0, -2.0, 0.5, 1.5], [-1.0, 1.0, 1.0, -0.5]]
BINARY_B = [0.0, 0.1]
# three classes, for targeted attacks
MULTI_W = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]


def minimal_perturbation(weight, bias, x: torch.Tensor, norm: str) -> tuple[int, float]:
    """(label, smallest perturbation that changes it) of a linear classifier at ``x``, in
    double precision: margin / ||w_y - w_j|| in the dual norm, minimised over j."""
    w, b = torch.tensor(weight, dtype=torch.float64), torch.tensor(bias, dtype=torch.float64)
    logits = w @ x.double().flatten() + b
    label = int(logits.argmax())
    dual = 1 if norm == "linf" else 2
    distances = [
        (logits[label] - logits[j]) / torch.linalg.vector_norm(w[label] - w[j], dual)
        for j in range(len(w))
        if j != label
    ]
    return label, float(min(distances))


def robust(model: nn.Module, adversarial: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(adversarial).argmax(1) == labels


def per_point_loss(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return F.cross_entropy(model(x), labels, reduction="none")


class Counting(nn.Module):
    """Counts the rows the wrapped model computes (with and without the input gradient)
    and remembers the first and the last batch it saw."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.rows = self.gradient_rows = 0
        self.first = self.last = None

    def forward(self, x):
        self.rows += x.shape[0]
        if x.requires_grad:
            self.gradient_rows += x.shape[0]
        self.last = x.detach().clone()
        if self.first is None:
            self.first = self.last
        return self.model(x)


def reference_iterates(model, images, labels, eps, step, steps) -> list[torch.Tensor]:
    """Every iterate of plain L-inf PGD from the image itself (no early stop, no memory)."""
    x, iterates = images.clone(), [images.clone()]
    for _ in range(steps):
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x), labels), x)
        with torch.no_grad():
            x = torch.min(torch.max(x + step * grad.sign(), images - eps), images + eps)
            x = x.clamp(0, 1)
        iterates.append(x.clone())
    return iterates


@pytest.fixture(scope="module")
def cnn():
    """A small conv-BN-ReLU net with input normalisation, trained briefly on noisy
    synthetic data: most points are correct, some fall to an 8/255 L-inf attack."""
    torch.manual_seed(0)
    data = Synthetic(
        num_classes=4, image_size=16, train_per_class=32, test_per_class=16, noise=0.3
    ).load(None, None)
    model = nn.Sequential(Normalize(data.mean, data.std), ConvNet(widths=(8, 16)).build(4, 3, 16))
    images, labels = to_float(data.train.images), data.train.labels
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    order = seeded()
    for _ in range(3):
        perm = torch.randperm(len(labels), generator=order)
        for start in range(0, len(labels), 32):
            batch = perm[start : start + 32]
            loss = F.cross_entropy(model(images[batch]), labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, to_float(data.test.images), data.test.labels


# -- declaration and validation -----------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"norm": "linf", "restarts": 2},
        {"norm": "l2", "eps": 0.5, "step_size": 0.2, "restarts": 2},
        {"norm": "linf", "targeted": True},
        {"norm": "l2", "eps": 0.5, "step_size": 0.2, "random_start": False},
    ],
)
def test_meets_the_evasion_contract(params):
    check_evasion_attack(PGD(steps=3, **params))


def test_defaults_are_the_cifar10_setting_of_madry_et_al():
    attack = PGD()
    assert (attack.norm, attack.eps, attack.step_size, attack.steps) == ("linf", EPS, 2 / 255, 10)
    assert (attack.random_start, attack.restarts, attack.targeted) == (True, 1, False)


@pytest.mark.parametrize(
    "params",
    [
        {"eps": 0.0},
        {"eps": -0.1},
        {"eps": math.nan},
        {"eps": math.inf},
        {"step_size": 0.0},
        {"steps": 0},
        {"restarts": 0},
        {"norm": "l1"},
    ],
)
def test_parameters_out_of_range_raise(params):
    with pytest.raises(ValueError):
        PGD(**params)


def test_targeted_without_targets_and_unknown_goal_raise():
    model = linear_model(BINARY_W, BINARY_B)
    images, labels = torch.full((2, 1, 2, 2), 0.5), torch.zeros(2, dtype=torch.int64)
    with pytest.raises(ValueError, match="targets"):
        PGD(targeted=True).perturb(model, images, labels)
    with pytest.raises(ValueError, match="goal"):
        PGD().perturb(model, images, labels, goal="accuracy")


# -- closed forms on linear models ----------------------------------------------------------


def linear_points(count: int = 6) -> torch.Tensor:
    """Points away from the box edges, so the closed forms (which ignore [0, 1]) hold."""
    return 0.35 + 0.3 * torch.rand(count, 1, 2, 2, generator=seeded(1))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_linear_minimal_perturbation_is_the_threshold(norm):
    model = linear_model(BINARY_W, BINARY_B)
    for x in linear_points():
        label, distance = minimal_perturbation(BINARY_W, BINARY_B, x, norm)
        assert 0.01 < distance < 0.3  # the box [0, 1] never binds at this distance
        y = torch.tensor([label])
        for scale, flips in ((1.01, True), (0.99, False)):
            eps = scale * distance
            attack = PGD(norm=norm, eps=eps, step_size=eps / 2, steps=20)
            adversarial = attack.perturb(model, x[None], y, generator=seeded())
            assert bool(robust(model, adversarial, y)) is not flips, (norm, scale, distance)


def test_targeted_reaches_the_target_on_a_linear_model():
    model = linear_model(MULTI_W, [0.0, 0.0, 0.0])
    images = torch.tensor([[0.6, 0.4, 0.3, 0.5], [0.3, 0.6, 0.4, 0.5], [0.4, 0.3, 0.6, 0.5]]).view(
        3, 1, 2, 2
    )
    labels = torch.tensor([0, 1, 2])
    targets = torch.tensor([2, 0, 1])
    # class t wins once x_t + eps > x_y - eps: the gap is 0.3, so eps 0.16 suffices
    attack = PGD(eps=0.16, step_size=0.05, steps=10, targeted=True)
    for goal in ("misclassify", "loss"):
        adversarial = attack.perturb(
            model, images, labels, goal=goal, targets=targets, generator=seeded()
        )
        assert torch.equal(model(adversarial).argmax(1), targets), goal
    # below half the gap the target cannot win
    adversarial = PGD(eps=0.14, step_size=0.05, targeted=True).perturb(
        model, images, labels, targets=targets, generator=seeded()
    )
    assert torch.equal(model(adversarial).argmax(1), labels)


def test_targeted_misclassify_falls_back_to_a_wrong_class():
    # one pixel p decides: class 0 below p = 0.4, class 1 up to 0.6, class 2 (the target)
    # above; raising p is the way to the target, through class 1
    model = linear_model([[0.0] * 4, [0.0, 0.0, 0.5, 0.0], [0.0, 0.0, 1.0, 0.0]], [0.5, 0.3, 0.0])
    images, labels = torch.full((1, 1, 2, 2), 0.3), torch.tensor([0])
    targets = torch.tensor([2])
    for eps, expected in ((0.2, 1), (0.35, 2)):
        attack = PGD(eps=eps, step_size=0.1, steps=10, targeted=True)
        adversarial = attack.perturb(model, images, labels, targets=targets, generator=seeded())
        assert int(model(adversarial).argmax(1)) == expected, eps


# -- against torchattacks ---------------------------------------------------------------------


def test_robust_accuracy_no_higher_than_torchattacks(cnn):
    model, images, labels = cnn
    for random_start in (False, True):
        ours = PGD(eps=EPS, step_size=2 / 255, steps=10, random_start=random_start)
        adversarial = ours.perturb(model, images, labels, generator=seeded())
        torch.manual_seed(0)
        theirs = torchattacks.PGD(
            model, eps=EPS, alpha=2 / 255, steps=10, random_start=random_start
        )(images, labels)
        ours_acc = robust(model, adversarial, labels).double().mean().item()
        theirs_acc = robust(model, theirs, labels).double().mean().item()
        clean_acc = robust(model, images, labels).double().mean().item()
        assert ours_acc <= theirs_acc, (random_start, ours_acc, theirs_acc)
        assert 0.2 < ours_acc < clean_acc  # partly robust: the comparison means something


def test_without_random_start_every_point_torchattacks_fools_is_fooled(cnn):
    model, images, labels = cnn
    ours = PGD(random_start=False).perturb(model, images, labels)
    theirs = torchattacks.PGD(model, eps=EPS, alpha=2 / 255, steps=10, random_start=False)(
        images, labels
    )
    fooled_by_them = ~robust(model, theirs, labels)
    assert fooled_by_them.any()
    assert not robust(model, ours, labels)[fooled_by_them].any()


# -- the threat model -------------------------------------------------------------------------


@pytest.mark.parametrize("norm,eps", [("linf", EPS), ("l2", 0.5)])
@pytest.mark.parametrize("goal", ["misclassify", "loss"])
def test_every_point_stays_in_the_ball_and_the_box(cnn, norm, eps, goal):
    model, images, labels = cnn
    attack = PGD(norm=norm, eps=eps, step_size=eps / 2, steps=5, restarts=2)
    adversarial = attack.perturb(model, images, labels, goal=goal, generator=seeded())
    delta = adversarial - images
    if norm == "linf":
        assert delta.abs().max().item() <= eps + 1e-7
    else:
        assert torch.linalg.vector_norm(delta, dim=(1, 2, 3)).max().item() <= eps * (1 + 1e-6)
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    assert delta.abs().max() > 0


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_start_is_uniform_in_the_ball(norm):
    # 1x2x2 images in the middle of the box: [0, 1] never binds, and with d = 4 the radius
    # of a uniform point in the L2 ball has the distribution P(r <= t eps) = t^4
    n, eps = 4000, 0.1
    counted = Counting(linear_model(BINARY_W, BINARY_B))
    images, labels = torch.full((n, 1, 2, 2), 0.5), torch.zeros(n, dtype=torch.int64)
    PGD(norm=norm, eps=eps, steps=1).perturb(
        counted, images, labels, goal="loss", generator=seeded()
    )
    delta = (counted.first - images).flatten(1).double() / eps  # loss: the first forward is x_0
    if norm == "linf":
        assert delta.abs().max() <= 1 + 1e-6
        torch.testing.assert_close(
            delta.mean(0), torch.zeros(4, dtype=torch.float64), atol=0.03, rtol=0
        )
        torch.testing.assert_close(
            delta.var(0), torch.full((4,), 1 / 3, dtype=torch.float64), atol=0.02, rtol=0
        )
        return
    radius = delta.norm(dim=1)
    assert radius.max() <= 1 + 1e-6
    for t in (0.5, 0.8, 0.9, 0.95):
        assert abs((radius <= t).double().mean().item() - t**4) < 0.025, t
    direction = delta / radius[:, None]
    torch.testing.assert_close(
        direction.mean(0), torch.zeros(4, dtype=torch.float64), atol=0.04, rtol=0
    )


# -- robust accuracy bookkeeping --------------------------------------------------------------


def test_misclassified_points_are_returned_unchanged(cnn):
    model, images, labels = cnn
    wrong = ~robust(model, images, labels)
    assert wrong.any()
    for random_start in (True, False):
        adversarial = PGD(random_start=random_start).perturb(
            model, images, labels, generator=seeded()
        )
        assert torch.equal(adversarial[wrong], images[wrong])


class Bump(nn.Module):
    """Two classes on the mean pixel value s: class 1 wins only in a narrow band
    |s - 0.6| < 0.012, narrower than one L-inf step of 0.03."""

    def forward(self, x):
        s = x.mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(s), 1 - ((s - 0.6) / 0.012) ** 2], dim=1)


def test_a_point_misclassified_at_an_intermediate_iterate_stays_misclassified():
    model = Bump()
    images, labels = torch.full((1, 1, 2, 2), 0.53), torch.zeros(1, dtype=torch.int64)
    # plain PGD jumps into the band (s = 0.59 after 2 steps) and out again (0.62, 0.59, ...)
    iterates = reference_iterates(model, images, labels, eps=0.1, step=0.03, steps=9)
    fooled = [not bool(robust(model, x, labels)) for x in iterates]
    assert fooled[2] and not fooled[-1]
    attack = PGD(eps=0.1, step_size=0.03, steps=9, random_start=False)
    adversarial = attack.perturb(model, images, labels)
    assert not robust(model, adversarial, labels)
    torch.testing.assert_close(adversarial, iterates[2])


def test_points_that_flip_stop_costing(cnn):
    model, images, labels = cnn
    n, steps = len(labels), 10
    counted = Counting(model)
    PGD(steps=steps).perturb(counted, images, labels, goal="misclassify", generator=seeded())
    # the one forward pass on the clean images, then only the points still standing
    assert counted.rows < n * (steps + 1)
    assert counted.gradient_rows < 0.9 * n * steps
    counted = Counting(model)
    PGD(steps=steps).perturb(counted, images, labels, goal="loss", generator=seeded())
    assert (counted.rows, counted.gradient_rows) == (n * (steps + 1), n * steps)


def test_restarts_never_increase_robust_accuracy(cnn):
    model, images, labels = cnn
    steps = 3
    counted_once, counted_twice = Counting(model), Counting(model)
    once = PGD(eps=6 / 255, steps=steps).perturb(counted_once, images, labels, generator=seeded())
    thrice = PGD(eps=6 / 255, steps=steps, restarts=3).perturb(
        model, images, labels, generator=seeded()
    )
    PGD(eps=6 / 255, steps=steps, restarts=2).perturb(
        counted_twice, images, labels, generator=seeded()
    )
    fooled_once = ~robust(model, once, labels)
    fooled_thrice = ~robust(model, thrice, labels)
    # the first restart draws the same start: what it fools stays fooled
    assert not (fooled_once & ~fooled_thrice).any()
    assert fooled_thrice.sum() >= fooled_once.sum() > 0
    # the second restart attacks only the points the first left correctly classified
    standing = int(robust(model, once, labels).sum())
    assert 0 < counted_twice.rows - counted_once.rows <= standing * (steps + 1)


# -- adversarial loss -------------------------------------------------------------------------


@pytest.mark.parametrize("random_start", [True, False])
def test_loss_goal_keeps_the_worst_iterate(cnn, random_start):
    model, images, labels = cnn
    counted = Counting(model)
    attack = PGD(random_start=random_start)
    adversarial = attack.perturb(counted, images, labels, goal="loss", generator=seeded())
    last_iterate = counted.last  # the final forward pass evaluates the last iterate
    loss = per_point_loss(model, adversarial, labels)
    assert torch.all(loss >= per_point_loss(model, last_iterate, labels))
    assert torch.all(loss >= per_point_loss(model, images, labels))
    assert loss.mean() > 1.2 * per_point_loss(model, images, labels).mean()
    if not random_start:
        theirs = torchattacks.PGD(model, eps=EPS, alpha=2 / 255, steps=10, random_start=False)(
            images, labels
        )
        assert torch.all(loss >= per_point_loss(model, theirs, labels) - 1e-5)


def test_loss_goal_returns_an_earlier_iterate_when_it_is_worse():
    model = Bump()
    images, labels = torch.full((1, 1, 2, 2), 0.53), torch.zeros(1, dtype=torch.int64)
    iterates = reference_iterates(model, images, labels, eps=0.1, step=0.03, steps=9)
    losses = torch.cat([per_point_loss(model, x, labels) for x in iterates])
    assert losses[2] > losses[-1] + 0.5  # inside the band (s = 0.59) against outside (0.62)
    attack = PGD(eps=0.1, step_size=0.03, steps=9, random_start=False)
    adversarial = attack.perturb(model, images, labels, goal="loss")
    torch.testing.assert_close(per_point_loss(model, adversarial, labels), losses.max()[None])
    torch.testing.assert_close(adversarial, iterates[2])


# -- seeding and side effects ---------------------------------------------------------------


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_same_seed_same_output(cnn, norm):
    model, images, labels = cnn
    attack = PGD(norm=norm, eps=EPS if norm == "linf" else 0.5, steps=3)
    first = attack.perturb(model, images, labels, goal="loss", generator=seeded(3))
    again = attack.perturb(model, images, labels, goal="loss", generator=seeded(3))
    other = attack.perturb(model, images, labels, goal="loss", generator=seeded(4))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_model_parameters_and_gradients_untouched():
    model = linear_model(BINARY_W, BINARY_B)
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.25)
    before = [(p.detach().clone(), p.grad.clone()) for p in model.parameters()]
    images = linear_points()
    labels = model(images).argmax(1)
    for goal in ("misclassify", "loss"):
        PGD(eps=0.1).perturb(model, images, labels, goal=goal, generator=seeded())
    for p, (value, grad) in zip(model.parameters(), before):
        assert p.requires_grad
        assert torch.equal(p, value) and torch.equal(p.grad, grad)
    assert not model.training


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    model = linear_model(BINARY_W, BINARY_B)
    images = linear_points()
    labels = model(images).argmax(1)
    for norm in ("linf", "l2"):
        attack = PGD(norm=norm, eps=0.05, step_size=0.01)
        on_cpu = attack.perturb(model, images, labels, goal="loss", generator=seeded())
        on_gpu = attack.perturb(
            model.cuda(), images.cuda(), labels.cuda(), goal="loss", generator=seeded()
        )
        model.cpu()
        torch.testing.assert_close(on_gpu.cpu(), on_cpu)
