"""The cw evasion attack (Carlini-Wagner L2), checked against closed-form minimal distances
on linear classifiers, where the smallest L2 step to class j from x is
(z_y - z_j) / ||w_y - w_j||_2 as long as the box [0, 1] does not bind."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from mcbench.testing import check_evasion_attack
from mcbench_plugins.attacks.cw import CarliniWagnerL2, cw_margin, from_tanh_space, to_tanh_space


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The models here are tiny: threads only add overhead and contention."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def linear_model(weight, bias) -> nn.Module:
    weight = torch.as_tensor(weight, dtype=torch.double)
    bias = torch.as_tensor(bias, dtype=torch.double)
    model = nn.Sequential(nn.Flatten(), nn.Linear(weight.shape[1], weight.shape[0])).double()
    with torch.no_grad():
        model[1].weight.copy_(weight)
        model[1].bias.copy_(bias)
    return model.eval()


def as_images(flat, shape=(1, 2, 2)) -> torch.Tensor:
    return torch.as_tensor(flat, dtype=torch.double).reshape(-1, *shape)


def minimal_step(weight, bias, x, y):
    """The closed-form smallest L2 step that makes some class beat y at x (no box):
    ``(distance, class, step)``."""
    z = weight @ x + bias
    best = None
    for j in range(len(z)):
        if j == y:
            continue
        direction = weight[j] - weight[y]
        distance = float((z[y] - z[j]) / direction.norm())
        if best is None or distance < best[0]:
            best = (distance, j, (z[y] - z[j]) * direction / direction.norm() ** 2)
    return best


def l2(adv, images) -> torch.Tensor:
    return (adv - images).flatten(1).norm(dim=1)


def predictions(model, images) -> torch.Tensor:
    with torch.no_grad():
        return model(images).argmax(dim=1)


def in_box(images) -> bool:
    return bool(((images >= 0) & (images <= 1)).all())


def assert_near_minimal(found: float, closed: float, rel: float = 0.01):
    assert found >= closed * (1 - 1e-9), f"found {found} is below the minimum {closed}"
    assert found <= closed * (1 + rel), f"found {found} is not within {rel:.0%} of {closed}"


def runner_up(weight, bias, x, y) -> int:
    z = weight @ x + bias
    z[y] = float("-inf")
    return int(z.argmax())


@pytest.fixture(scope="module")
def multiclass():
    """A 4-class linear model on 2x2x2 images whose logits tie at the grey image, and 32
    points around it: ``(model, weight, bias, xs, labels, near)`` where ``near`` marks the
    points whose minimal step stays inside the box, is not tiny and leads to the runner-up
    class (the one a gradient method on max_{j != y} z_j heads for)."""
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(4, 8, generator=g, dtype=torch.double)
    bias = -weight.sum(dim=1) * 0.5
    xs = (0.5 + 0.2 * torch.randn(32, 8, generator=g, dtype=torch.double)).clamp(0.02, 0.98)
    labels = (xs @ weight.T + bias).argmax(dim=1)
    near = []
    for x, y in zip(xs, labels):
        distance, j, step = minimal_step(weight, bias, x, y)
        inside = bool(((x + step > 0.02) & (x + step < 0.98)).all())
        near.append(distance > 0.05 and inside and j == runner_up(weight, bias, x, y))
    return linear_model(weight, bias), weight, bias, xs, labels, torch.tensor(near)


@pytest.mark.parametrize("targeted", [False, True])
def test_meets_the_evasion_contract_in_the_l2_ball(targeted):
    # C&W's threat model is the L2 ball of radius eps, declared by its class
    attack = CarliniWagnerL2(eps=0.3, steps=20, search_steps=3, lr=0.05, targeted=targeted)
    check_evasion_attack(attack)


@pytest.mark.parametrize(
    "bad",
    [
        dict(kappa=-1.0),
        dict(c=0.0),
        dict(c=-1.0),
        dict(search_steps=0),
        dict(steps=0),
        dict(lr=0.0),
        dict(eps=0.0),
        dict(eps=-0.5),
        dict(c=float("inf")),
    ],
)
def test_bad_parameters_raise(bad):
    with pytest.raises(ValueError):
        CarliniWagnerL2(**bad)


def test_margin_matches_brute_force_with_negative_logits():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(20, 5, generator=g, dtype=torch.double) * 3 - 1000
    logits[0] = torch.tensor([-5.0, -1.0, -2.0, -3.0, -4.0], dtype=torch.double)
    labels = torch.randint(0, 5, (20,), generator=g)
    for kappa, targeted in itertools.product([0.0, 0.5, 2.0], [False, True]):
        got = cw_margin(logits, labels, kappa, targeted)
        for i in range(20):
            row, y = logits[i].tolist(), int(labels[i])
            best_other = max(v for j, v in enumerate(row) if j != y)
            gap = best_other - row[y] if targeted else row[y] - best_other
            assert float(got[i]) == pytest.approx(max(gap, -kappa), abs=1e-12)
    # Row 0 is classified correctly (class 1 has the largest logit). The masked-product form
    # max((1 - onehot) * z) over the other classes gives 0 there and a negative margin, as if
    # the point were already adversarial; cw_margin gives -1 - (-2) = 1.
    row, label = logits[:1], torch.tensor([1])
    onehot = torch.nn.functional.one_hot(label, 5).double()
    masked = (row * onehot).sum() - ((1 - onehot) * row).max()
    assert float(masked) < 0
    assert float(cw_margin(row, label)) == pytest.approx(1.0)


def test_tanh_space_keeps_pixels_at_zero_and_one_movable():
    x = torch.tensor([0.0, 1.0, 0.25, 0.5], dtype=torch.double)
    w = to_tanh_space(x)
    assert bool(torch.isfinite(w).all())
    assert torch.allclose(from_tanh_space(w), x, atol=1e-6)
    w.requires_grad_(True)
    (grad,) = torch.autograd.grad(from_tanh_space(w).sum(), w)
    assert bool((grad > 0).all())
    # atanh(2x - 1) without shrinking puts 0 and 1 at infinity, where tanh has no slope
    naive = torch.atanh(2 * x[:2] - 1)
    assert bool(torch.isinf(naive).all())


@pytest.mark.parametrize("dtype", [torch.double, torch.float])
def test_finds_closed_form_distance_on_linear_model(multiclass, dtype):
    _, weight, bias, xs, labels, near = multiclass
    assert int(near.sum()) >= 8 and len(set(labels[near].tolist())) >= 3
    model = linear_model(weight, bias).to(dtype)
    images = as_images(xs, (2, 2, 2)).to(dtype)
    adv = CarliniWagnerL2().perturb(model, images, labels)
    assert adv.dtype == dtype
    adv, images = adv.double(), images.double()
    model = model.double()
    slack = 1 - (1e-12 if dtype == torch.double else 1e-5)  # float32 rounding of the inputs
    found = l2(adv, images)
    for i in torch.nonzero(near).flatten().tolist():
        closed = minimal_step(weight, bias, xs[i], labels[i])[0]
        assert_near_minimal(float(found[i]), closed * slack, rel=0.02)
    assert bool((predictions(model, adv[near]) != labels[near]).all())
    # every point that moved is misclassified and no closer than the closed-form minimum
    moved = found > 0
    assert int(moved.sum()) >= 28
    assert bool((predictions(model, adv[moved]) != labels[moved]).all())
    for i in torch.nonzero(moved).flatten().tolist():
        assert float(found[i]) >= minimal_step(weight, bias, xs[i], labels[i])[0] * slack
    assert in_box(adv)


def test_binary_search_recovers_from_a_poor_initial_constant():
    # z1 - z0 = sum(x) - 1: from x = 0.1 everywhere the minimal step is 0.6 / 2 = 0.3
    model = linear_model([[0.0] * 4, [1.0] * 4], [1.0, 0.0])
    images = as_images([[0.1] * 4])
    label = torch.tensor([0])
    once = CarliniWagnerL2(c=1e-4, search_steps=1).perturb(model, images, label)
    assert torch.equal(once, images)
    searched = CarliniWagnerL2(c=1e-4, search_steps=9).perturb(model, images, label)
    assert_near_minimal(float(l2(searched, images)[0]), 0.3)
    # too large a constant succeeds at once but overshoots; the search tightens it
    large_once = float(
        l2(CarliniWagnerL2(c=100.0, search_steps=1).perturb(model, images, label), images)[0]
    )
    large_searched = float(l2(CarliniWagnerL2(c=100.0).perturb(model, images, label), images)[0])
    assert 0.3 <= large_searched < large_once


class CountingModel(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner
        self.batch_sizes: list[int] = []

    def forward(self, x):
        self.batch_sizes.append(len(x))
        return self.inner(x)


def test_early_stop_is_per_sample():
    # z1 - z0 = sum(x) - 1 on 4 pixels: 0.24 everywhere is 0.02 away, 0.05 is 0.4 away
    model = CountingModel(linear_model([[0.0] * 4, [1.0] * 4], [1.0, 0.0]))
    images = as_images([[0.24] * 4, [0.05] * 4])
    labels = torch.tensor([0, 0])
    attack = CarliniWagnerL2(lr=0.05)
    together = attack.perturb(model, images, labels)
    sizes = list(model.batch_sizes)
    alone = [attack.perturb(model, images[i : i + 1], labels[i : i + 1]) for i in range(2)]
    assert torch.allclose(together[0], alone[0][0], rtol=0, atol=1e-12)
    assert torch.allclose(together[1], alone[1][0], rtol=0, atol=1e-12)
    found = l2(together, images)
    assert_near_minimal(float(found[0]), 0.02)
    assert_near_minimal(float(found[1]), 0.4)
    assert sizes.count(1) > 0, "one sample should keep going after the other stopped"


def test_moves_pixels_that_are_exactly_zero_or_one():
    # z1 - z0 = x0 - x1 + 0.7 (-0.3 here): only the pixel at 0 (moving up) and the one at 1
    # (moving down) matter, and the minimal step moves each by 0.15
    model = linear_model([[0.0] * 4, [1.0, -1.0, 0.0, 0.0]], [0.0, 0.7])
    images = as_images([[0.0, 1.0, 0.5, 0.5]])
    label = torch.tensor([0])
    assert int(predictions(model, images)[0]) == 0
    adv = CarliniWagnerL2(steps=300, lr=0.05).perturb(model, images, label)
    closed = 0.3 / 2**0.5
    assert_near_minimal(float(l2(adv, images)[0]), closed)
    assert float(adv[0, 0, 0, 0]) == pytest.approx(0.15, abs=2e-3)
    assert float(adv[0, 0, 0, 1]) == pytest.approx(0.85, abs=2e-3)
    assert int(predictions(model, adv)[0]) == 1


def test_negative_logits():
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(3, 4, generator=g, dtype=torch.double)
    bias = -1000 - weight.sum(dim=1) * 0.5
    xs = 0.5 + torch.tensor(
        [[0.1, -0.05, 0.0, 0.08], [-0.1, 0.1, 0.05, -0.02], [0.0, 0.12, -0.1, 0.03]],
        dtype=torch.double,
    )
    model = linear_model(weight, bias)
    images = as_images(xs)
    with torch.no_grad():
        logits = model(images)
    assert bool((logits < -900).all())
    labels = logits.argmax(dim=1)
    adv = CarliniWagnerL2().perturb(model, images, labels)
    found = l2(adv, images)
    for i, (x, y) in enumerate(zip(xs, labels)):
        distance, _, step = minimal_step(weight, bias, x, y)
        assert bool(((x + step > 0) & (x + step < 1)).all())
        assert_near_minimal(float(found[i]), distance)
    assert bool((predictions(model, adv) != labels).all())


def test_eps_returns_the_original_beyond_the_radius():
    model = linear_model([[0.0] * 4, [1.0] * 4], [1.0, 0.0])
    images = as_images([[0.1] * 4])
    label = torch.tensor([0])
    inside = CarliniWagnerL2(eps=0.27).perturb(model, images, label)
    assert torch.equal(inside, images)
    assert int(predictions(model, inside)[0]) == 0
    outside = CarliniWagnerL2(eps=0.33).perturb(model, images, label)
    assert 0.3 <= float(l2(outside, images)[0]) <= 0.33
    assert int(predictions(model, outside)[0]) == 1


def test_already_misclassified_and_goal_loss(multiclass):
    model, weight, bias, xs, labels, near = multiclass
    images, labels = as_images(xs[near], (2, 2, 2)), labels[near]
    wrong = (labels + 1) % 4
    attack = CarliniWagnerL2()
    assert torch.equal(attack.perturb(model, images, wrong), images)
    mixed = labels.clone()
    mixed[::2] = wrong[::2]
    adv = attack.perturb(model, images, mixed)
    assert torch.equal(adv[::2], images[::2])
    assert bool((l2(adv[1::2], images[1::2]) > 0).all())
    assert torch.equal(attack.perturb(model, images, mixed, goal="loss"), adv)
    with pytest.raises(ValueError):
        attack.perturb(model, images, labels, goal="other")


def test_model_parameters_and_grads_untouched(multiclass):
    model, _, _, xs, labels, _ = multiclass
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    CarliniWagnerL2(steps=20, search_steps=2).perturb(model, as_images(xs, (2, 2, 2)), labels)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    for p in model.parameters():
        p.grad = None


def targeted_minimum(x: list[float], t: int) -> float:
    """Smallest L2 step after which x[t] is the (tied) largest of x: x[t] rises and the
    k largest others fall to one common level m = (x[t] + their sum) / (k + 1)."""
    others = sorted((v for j, v in enumerate(x) if j != t), reverse=True)
    for k in range(len(others) + 1):
        level = (x[t] + sum(others[:k])) / (k + 1)
        if k == len(others) or others[k] <= level:
            moved = [x[t]] + others[:k]
            return sum((v - level) ** 2 for v in moved) ** 0.5
    raise AssertionError("unreachable")


def test_targeted():
    # logits are the first three pixels; the fourth is ignored
    model = linear_model(torch.eye(4)[:3], torch.zeros(3))
    xs = [[0.6, 0.3, 0.2, 0.5], [0.6, 0.5, 0.2, 0.1], [0.3, 0.7, 0.35, 0.9]]
    images = as_images(xs)
    labels = predictions(model, images)
    targets = torch.tensor([2, 2, 0])
    with pytest.raises(ValueError, match="targets"):
        CarliniWagnerL2(targeted=True).perturb(model, images, labels)
    adv = CarliniWagnerL2(targeted=True).perturb(model, images, labels, targets=targets)
    assert torch.equal(predictions(model, adv), targets)
    found = l2(adv, images)
    for i, (x, t) in enumerate(zip(xs, targets.tolist())):
        assert_near_minimal(float(found[i]), targeted_minimum(x[:3], t))
    assert in_box(adv)


def test_kappa_adds_a_logit_margin():
    # z1 - z0 = sum(x) - 1 and ||w1 - w0|| = 2: a margin of kappa costs kappa / 2 more
    model = linear_model([[0.0] * 4, [1.0] * 4], [1.0, 0.0])
    images = as_images([[0.1] * 4])
    adv = CarliniWagnerL2(kappa=0.4).perturb(model, images, torch.tensor([0]))
    with torch.no_grad():
        logits = model(adv)[0]
    assert float(logits[1] - logits[0]) >= 0.4
    assert_near_minimal(float(l2(adv, images)[0]), 0.5)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda(multiclass):
    _, weight, bias, xs, labels, near = multiclass
    xs, labels = xs[near], labels[near]
    model = linear_model(weight, bias).cuda()
    for dtype in (torch.double, torch.float):
        images = as_images(xs, (2, 2, 2)).to("cuda", dtype)
        adv = CarliniWagnerL2().perturb(model.to(dtype), images, labels.cuda())
        assert adv.device == images.device and adv.dtype == dtype and in_box(adv)
        found = l2(adv.double(), images.double()).cpu()
        for i, (x, y) in enumerate(zip(xs, labels)):
            closed = minimal_step(weight, bias, x, y)[0]
            assert_near_minimal(float(found[i]), closed * (1 - 1e-5), rel=0.02)
