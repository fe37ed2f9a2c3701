"""The bitflip attack: two's complement flips, quantisation, the progressive search against a
brute-force reference, and its effect compared with random flips on a small trained CNN."""

from __future__ import annotations

import copy
import struct

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mcbench.kinds import TamperContext
from mcbench.kinds.data import as_batch
from mcbench.toolkit.evaluation import predict
from mcbench.toolkit.nets import Normalize
from mcbench_plugins.attacks.bitflip import BitFlip, best_flip, flip_delta, quantise
from mcbench_plugins.datasets.synthetic import Synthetic

NUM_CLASSES = 10
CPU = torch.device("cpu")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # every tensor here is tiny: a second thread only adds synchronisation, which costs
    # seconds per test when the cores are shared with other work
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A conv-BN-ReLU net with a second conv and a linear head, trained to 100% on a
    10-class synthetic task; wrapped like mcbench wraps it (0..1 images in)."""
    data = Synthetic(
        num_classes=NUM_CLASSES, image_size=8, train_per_class=32, test_per_class=32
    ).load(None, tmp_path_factory.mktemp("synthetic"))
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, NUM_CLASSES),
    )
    model = nn.Sequential(Normalize(data.mean, data.std), net)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = as_batch(data.train.images), data.train.labels
    model.train()
    for _ in range(30):
        optimiser.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimiser.step()
    model.eval()
    attacker = data.train.subset(
        torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))
    )
    assert accuracy(model, data.test) == 1.0
    return model, attacker, data.test


def accuracy(model, data) -> float:
    return float((predict(model, data, CPU).argmax(1) == data.labels).float().mean())


def attack(trained, seed=0, channels_last=False, **params):
    """(tampered copy of the trained model, the attack's report)."""
    model = copy.deepcopy(trained[0])
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    ctx = TamperContext(
        model=model,
        network=model[1],
        attacker=trained[1],
        injection=None,
        num_classes=NUM_CLASSES,
        device=CPU,
        seed=seed,
    )
    return model, BitFlip(**params).tamper(ctx)


def signed(byte: int) -> int:
    return struct.unpack("b", bytes([byte]))[0]


def reference_quantised(weight: torch.Tensor) -> tuple[torch.Tensor, float]:
    scale = weight.abs().max().item() / 127
    return torch.round(weight.double() / scale).long(), scale


def conv_linear(model: nn.Module) -> dict[str, nn.Module]:
    return {
        name: m for name, m in model[1].named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    }


# -- helpers -------------------------------------------------------------------------------


def test_flip_delta_matches_twos_complement_for_every_code_and_bit():
    codes = torch.arange(-128, 128, dtype=torch.int16).to(torch.int8)
    for bit in range(8):
        expected = [signed((c & 0xFF) ^ (1 << bit)) - c for c in range(-128, 128)]
        assert flip_delta(codes, bit).tolist() == expected
    # spot values: the sign bit of 0 gives -128, bit 0 of -1 (0xFF) gives -2
    assert int(flip_delta(torch.tensor([0], dtype=torch.int8), 7)) == -128
    assert int(flip_delta(torch.tensor([-1], dtype=torch.int8), 0)) == -1


def test_quantise_rounds_to_the_nearest_of_255_symmetric_levels():
    weight = torch.randn(7, 5, 3, 3, generator=torch.Generator().manual_seed(1)) * 0.3
    codes, scale = quantise(weight)
    assert codes.dtype == torch.int8 and codes.shape == weight.shape
    assert scale == pytest.approx(weight.abs().max().item() / 127, rel=1e-12)
    assert int(codes.min()) >= -127 and int(codes.max()) <= 127
    assert int(codes.abs().max()) == 127
    error = (codes.double() * scale - weight.double()).abs()
    assert float(error.max()) <= scale / 2 + 1e-9
    assert torch.equal(codes.long(), reference_quantised(weight)[0])
    zero_codes, zero_scale = quantise(torch.zeros(4))
    assert zero_scale > 0 and torch.equal(zero_codes, torch.zeros(4, dtype=torch.int8))


def test_best_flip_matches_brute_force_and_skips_excluded_weights():
    generator = torch.Generator().manual_seed(2)
    codes = torch.randint(-127, 128, (6, 5), generator=generator).to(torch.int8)
    grad = torch.randn(6, 5, generator=generator)
    scale = 0.01
    exclude = torch.zeros(6, 5, dtype=torch.bool)
    for _ in range(3):
        gains = [
            (float(grad.view(-1)[i]) * (signed((int(c) & 0xFF) ^ (1 << b)) - int(c)) * scale, i, b)
            for i, c in enumerate(codes.view(-1).tolist())
            for b in range(8)
            if not exclude.view(-1)[i]
        ]
        gain, index, bit = max(gains, key=lambda g: g[0])
        found = best_flip(codes, grad, scale, exclude)
        assert (found[1], found[2]) == (index, bit) and found[0] == pytest.approx(gain)
        exclude.view(-1)[index] = True  # the next best must come from another weight
    assert best_flip(codes, grad, scale, torch.ones(6, 5, dtype=torch.bool)) is None


# -- the attack ----------------------------------------------------------------------------


def test_progressive_reaches_chance_where_as_many_random_flips_barely_hurt(trained):
    model, report = attack(trained, max_flips=20)
    flips = report["flips"]
    assert report["accuracy_quantised"] == 1.0
    assert 1 <= flips <= 20
    assert report["accuracy_after"] <= 0.11  # stopped at stop_accuracy
    assert report["flip_log"][-1]["accuracy"] == report["accuracy_after"]
    assert all(f["accuracy"] > 0.11 for f in report["flip_log"][:-1])
    progressive = accuracy(model, trained[2])
    assert progressive <= 0.2  # chance is 0.1
    losses = [f["loss"] for f in report["flip_log"]]
    assert losses == sorted(losses)
    for seed in range(3):
        model, report = attack(trained, seed=seed, strategy="random", max_flips=flips)
        assert report["flips"] == flips
        assert accuracy(model, trained[2]) >= 0.8
        assert report["accuracy_after"] >= 0.8


def brute_force_candidates(trained):
    """Each attacked layer's best first-order flip on the quantised model, found from
    autograd's gradient and every weight and bit in turn, and the loss on the attacker
    batch with that one flip applied: [(loss, gain, layer, index, bit)]."""
    model = copy.deepcopy(trained[0])
    layers = conv_linear(model)
    quantised = {}
    with torch.no_grad():
        for name, m in layers.items():
            codes, scale = reference_quantised(m.weight)
            quantised[name] = (codes, scale)
            m.weight.copy_((codes.double() * scale).float())
    batch = trained[1].subset(torch.arange(128))
    x = as_batch(batch.images)
    model.zero_grad()
    F.cross_entropy(model(x), batch.labels).backward()
    found = []
    for name, m in layers.items():
        codes, scale = quantised[name]
        grad = m.weight.grad.reshape(-1).tolist()
        best = max(
            (
                (grad[i] * (signed((c & 0xFF) ^ (1 << b)) - c) * scale, i, b)
                for i, c in enumerate(codes.reshape(-1).tolist())
                for b in range(8)
            ),
            key=lambda g: g[0],
        )
        gain, index, bit = best
        code = int(codes.reshape(-1)[index])
        flipped = copy.deepcopy(model)
        weight = dict(flipped[1].named_modules())[name].weight
        with torch.no_grad():
            weight.view(-1)[index] = signed((code & 0xFF) ^ (1 << bit)) * scale
            loss = float(F.cross_entropy(flipped(x), batch.labels))
        found.append((loss, gain, name, index, bit))
    return found


def test_first_round_commits_the_candidate_that_raises_the_loss_most(trained):
    candidates = brute_force_candidates(trained)
    assert len({c[2] for c in candidates}) == 3
    loss, _, name, index, bit = max(candidates, key=lambda c: c[0])
    _, report = attack(trained, max_flips=1)
    first = report["flip_log"][0]
    assert (first["layer"], first["index"], first["bit"]) == (name, index, bit)
    assert first["loss"] == pytest.approx(loss, rel=1e-4)
    # one layer evaluated: the one whose best flip has the largest first-order gain
    _, _, name, index, bit = max(candidates, key=lambda c: c[1])
    _, report = attack(trained, max_flips=1, layer_candidates=1)
    first = report["flip_log"][0]
    assert (first["layer"], first["index"], first["bit"]) == (name, index, bit)


@pytest.mark.parametrize("strategy", ["progressive", "random"])
def test_only_conv_and_linear_weights_change_and_only_to_quantisation_levels(trained, strategy):
    original = trained[0]
    model, report = attack(
        trained, seed=3, channels_last=True, strategy=strategy, max_flips=6, stop_accuracy=0.0
    )
    assert report["flips"] == 6 and len(report["flip_log"]) == 6
    layers = conv_linear(model)
    assert report["quantised_layers"] == list(layers)
    weights = {f"1.{name}.weight" for name in layers}
    after = model.state_dict()
    for key, value in original.state_dict().items():
        if key not in weights:
            assert torch.equal(after[key], value), key
    changed = 0
    for name, m in layers.items():
        codes, scale = reference_quantised(dict(original[1].named_modules())[name].weight)
        levels = m.weight.detach().double() / scale
        new_codes = torch.round(levels)
        assert float((levels - new_codes).abs().max()) < 1e-4
        assert int(new_codes.min()) >= -128 and int(new_codes.max()) <= 127
        changed += int((new_codes.long() != codes).sum())
        for f in report["flip_log"]:
            if f["layer"] == name:
                assert f["before"] == int(codes.reshape(-1)[f["index"]])
                assert f["after"] == signed((f["before"] & 0xFF) ^ (1 << f["bit"]))
                assert int(new_codes.reshape(-1)[f["index"]]) == f["after"]
    assert changed == report["flips"] == 6


def test_random_flips_are_seeded(trained):
    a, report_a = attack(trained, seed=5, strategy="random", max_flips=8)
    b, report_b = attack(trained, seed=5, strategy="random", max_flips=8)
    _, report_c = attack(trained, seed=6, strategy="random", max_flips=8)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert report_a == report_b
    where = lambda r: [(f["layer"], f["index"], f["bit"]) for f in r["flip_log"]]  # noqa: E731
    assert where(report_a) != where(report_c)
    assert len(set(where(report_a))) == 8


def test_progressive_is_deterministic_and_stops_before_flipping_when_accuracy_is_low(trained):
    _, first = attack(trained, seed=0, max_flips=3, stop_accuracy=0.0)
    _, second = attack(trained, seed=9, max_flips=3, stop_accuracy=0.0)
    assert first["flip_log"] == second["flip_log"] and first["flips"] == 3
    model, report = attack(trained, max_flips=5, stop_accuracy=1.0)
    assert report["flips"] == 0 and report["flip_log"] == []
    assert report["accuracy_after"] == report["accuracy_quantised"] == 1.0
    # still quantised: every weight a level of its layer
    for name, m in conv_linear(model).items():
        codes, scale = reference_quantised(dict(trained[0][1].named_modules())[name].weight)
        assert torch.allclose(m.weight.double(), codes.double() * scale, atol=1e-7)


def test_parameter_checks():
    for bad in (
        {"max_flips": -1},
        {"stop_accuracy": 1.5},
        {"stop_accuracy": -0.1},
        {"samples": 0},
        {"layer_candidates": -1},
        {"strategy": "greedy"},
    ):
        with pytest.raises(ValueError):
            BitFlip(**bad)
    with pytest.raises(ValueError, match="Conv2d or Linear"):
        BitFlip().check_model(nn.Sequential(nn.BatchNorm1d(3)))
