"""The single-model repair baselines (finetune, scratch, noisy, fineprune): each checked
against figures computed here independently, then all of them end to end."""

import json

import pytest
import torch
from torch import nn

from mcbench.bench.load import load_benchmark
from mcbench.kinds import RepairContext
from mcbench.kinds.data import ImageSet, as_batch
from mcbench.results.leaderboard import build_tables
from mcbench.run.runner import run_benchmark
from mcbench.run.store import Store
from mcbench_plugins.architectures.convnet import ConvNet
from mcbench_plugins.datasets.synthetic import Synthetic
from mcbench_plugins.repairs.fineprune import FinepruneRepair
from mcbench_plugins.repairs.finetune import FinetuneRepair
from mcbench_plugins.repairs.noisy import NoisyRepair
from mcbench_plugins.repairs.scratch import ScratchRepair
from tests import by_hand
from tests.conftest import TINY

CPU = torch.device("cpu")


def tiny_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 10, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(10, 3),
    )


def bonafide(n=48, seed=0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    return ImageSet(
        torch.randint(0, 256, (n, 3, 8, 8), generator=g, dtype=torch.uint8),
        torch.randint(0, 3, (n,), generator=g),
    )


def endpoint(seed, make=tiny_net) -> nn.Module:
    torch.manual_seed(seed)
    net = make()
    with torch.no_grad():  # non-trivial BatchNorm parameters and buffers, as if trained
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_()
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(seed + 3)
    return net


def context(a_seed=1, b_seed=2, seed=7, make=tiny_net) -> RepairContext:
    return RepairContext(
        endpoints=(endpoint(a_seed, make), endpoint(b_seed, make)),
        build=make,
        bonafide=bonafide(),
        connection=None,
        num_classes=3,
        device=CPU,
        seed=seed,
        augment=False,
    )


def snapshot(model: nn.Module) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(x: dict, y: dict) -> bool:
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_finetune_trains_a_copy_of_the_endpoint():
    ctx = context()
    before = [snapshot(m) for m in ctx.endpoints]
    repair = FinetuneRepair(endpoint="B", epochs=2, batch_size=16, lr=0.05)
    state = repair.fit(ctx)
    assert all(
        torch.equal(ctx.endpoints[i].state_dict()[k], before[i][k])
        for i in range(2)
        for k in before[i]
    )  # endpoints untouched
    assert state.keys() == before[1].keys()
    assert all(v.device.type == "cpu" for v in state.values())
    assert not torch.equal(state["0.weight"], before[1]["0.weight"])
    assert not torch.equal(state["7.weight"], before[1]["7.weight"])
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    assert same(state, repair.fit(ctx))  # deterministic given the seed
    assert torch.equal(torch.get_rng_state(), rng)
    path = repair.path(ctx, state, [0.0, 0.5, 1.0])
    assert tuple(path.points) == (None,)
    assert same(path.model_at(None).state_dict(), state)


def test_scratch_ignores_the_endpoints():
    repair = ScratchRepair(epochs=2, batch_size=16, lr=0.05)
    ctx = context(1, 2)
    torch.manual_seed(123)  # the global RNG: neither read nor changed
    state = torch.get_rng_state()
    one = repair.fit(ctx)
    assert torch.equal(torch.get_rng_state(), state)
    other = repair.fit(context(5, 6))
    assert same(one, other)
    assert not same(one, repair.fit(context(1, 2, seed=8)))  # the seed does matter
    path = repair.path(context(), one, [0.0, 1.0])
    assert tuple(path.points) == (None,)
    assert same(path.model_at(None).state_dict(), one)


def wide_net() -> nn.Module:
    return nn.Sequential(nn.Linear(300, 300), nn.BatchNorm1d(300))


@pytest.mark.parametrize("source", ["A", "B", "average"])
def test_noisy_has_the_asked_relative_std(source):
    ctx = context(make=wide_net)
    a, b = (snapshot(m) for m in ctx.endpoints)
    if source == "A":
        src = a
    elif source == "B":
        src = b
    else:  # float tensors averaged; num_batches_tracked taken from A
        src = {k: (a[k] + b[k]) / 2 if a[k].is_floating_point() else a[k] for k in a}
    scale = 0.05
    state = NoisyRepair(source=source, scale=scale).fit(ctx)
    w = "0.weight"  # 90,000 entries: the sample std is within ~0.3% of the true one
    diff = (state[w] - src[w]).double()
    ratio = diff.std().item() / src[w].double().std().item()
    assert ratio == pytest.approx(scale, rel=0.02)
    assert abs(diff.mean().item()) < 4 * scale * src[w].double().std().item() / 300
    for k in ("0.bias", "1.weight", "1.bias"):  # every parameter is perturbed
        assert not torch.equal(state[k], src[k])
    for k in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        assert torch.equal(state[k], src[k])  # buffers are not
    # the source endpoint's counter (seed + 3); A's for the average
    assert state["1.num_batches_tracked"].item() == (5 if source == "B" else 4)
    assert same(state, NoisyRepair(source=source, scale=scale).fit(ctx))
    assert same(NoisyRepair(source=source, scale=0.0).fit(ctx), src)
    for k in ("0.bias", "1.weight", "1.bias"):  # same rule on the small tensors, loosely
        ratio = (state[k] - src[k]).double().std().item() / src[k].double().std().item()
        assert 0.8 * scale < ratio < 1.2 * scale
    path = NoisyRepair(source=source, scale=scale).path(ctx, state, [0.5])
    assert tuple(path.points) == (None,)
    assert same(path.model_at(None).state_dict(), state)


def test_noisy_leaves_a_constant_tensor_alone():
    # the noise std is relative to the tensor's own std, which is 0 for a constant tensor
    ctx = context(make=wide_net)
    with torch.no_grad():
        ctx.endpoints[0][1].weight.fill_(1.0)
    state = NoisyRepair(source="A", scale=0.5).fit(ctx)
    assert torch.equal(state["1.weight"], torch.ones(300))
    assert not torch.equal(state["1.bias"], ctx.endpoints[0][1].bias.detach())


def own_mean_activations(model: nn.Module, conv: nn.Module, data: ImageSet) -> torch.Tensor:
    seen = []
    handle = conv.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    model.eval()
    with torch.no_grad():
        model(as_batch(data.images))
    handle.remove()
    return torch.cat(seen).mean(dim=(0, 2, 3))


@pytest.mark.parametrize("fraction, count", [(0.35, 3), (0.0, 0), (0.99, 9)])
def test_fineprune_zeroes_the_least_active_channels_of_the_last_conv(fraction, count):
    ctx = context()
    before = snapshot(ctx.endpoints[0])
    model = tiny_net()
    model.load_state_dict(before)
    activation = own_mean_activations(model, model[3], ctx.bonafide)
    expected = sorted(torch.argsort(activation)[:count].tolist())

    repair = FinepruneRepair(
        endpoint="A",
        epochs=3,
        batch_size=16,
        lr=0.05,
        momentum=0.9,
        weight_decay=1e-2,
        prune_fraction=fraction,
    )
    state = repair.fit(ctx)
    # count = floor(prune_fraction * channels): floor(3.5) = 3, floor(9.9) = 9 of 10
    assert state["pruned_channels"].dtype == torch.int64
    assert state["pruned_channels"].tolist() == expected
    kept = [c for c in range(10) if c not in expected]
    assert torch.all(state["3.weight"][expected] == 0)
    assert torch.all(state["3.bias"][expected] == 0)
    assert not torch.equal(state["3.weight"][kept], before["3.weight"][kept])  # fine-tuned
    assert not torch.equal(state["0.weight"], before["0.weight"])
    assert same(snapshot(ctx.endpoints[0]), before)
    path = repair.path(ctx, state, [0.5])
    assert tuple(path.points) == (None,)
    loaded = path.model_at(None).state_dict()
    assert "pruned_channels" not in loaded
    assert same(loaded, {k: v for k, v in state.items() if k != "pruned_channels"})


def bn_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 10, 3, padding=1),
        nn.BatchNorm2d(10),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(10, 3),
    )


def test_fineprune_silences_the_batchnorm_after_the_conv():
    ctx = context(make=bn_net)
    model = bn_net()
    model.load_state_dict(snapshot(ctx.endpoints[0]))
    activation = own_mean_activations(model, model[1], ctx.bonafide)  # ranked after the BN
    expected = sorted(torch.argsort(activation)[:4].tolist())
    repair = FinepruneRepair(
        endpoint="A",
        epochs=2,
        batch_size=16,
        lr=0.05,
        momentum=0.9,
        weight_decay=1e-2,
        prune_fraction=0.4,
    )
    state = repair.fit(ctx)
    assert state["pruned_channels"].tolist() == expected
    repaired = repair.path(ctx, state, [0.5]).model_at(None)
    out = own_mean_activations(repaired, repaired[1], ctx.bonafide)
    seen = []
    handle = repaired[1].register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    with torch.no_grad():
        repaired(as_batch(ctx.bonafide.images))
    handle.remove()
    assert torch.all(seen[0][:, expected] == 0)  # the pruned channels output exactly zero
    kept = [c for c in range(10) if c not in expected]
    assert out[kept].abs().sum() > 0


def test_invalid_values_are_refused():
    with pytest.raises(ValueError, match="prune_fraction"):
        FinepruneRepair(prune_fraction=1.0)
    with pytest.raises(ValueError, match="scale"):
        NoisyRepair(scale=-0.1)
    with pytest.raises(ValueError, match="source"):
        NoisyRepair(source="C")
    with pytest.raises(ValueError, match="endpoint"):
        FinetuneRepair(endpoint="C")
    with pytest.raises(ValueError, match="epochs"):
        ScratchRepair(epochs=0)
    with pytest.raises(ValueError, match="lr"):
        FinepruneRepair(lr=0)


BASELINES = TINY.replace(
    "repairs: [{name: path, epochs: 2, batch_size: 32}]",
    "repairs: [{name: path, epochs: 1, batch_size: 32}, {name: finetune, epochs: 1, "
    "batch_size: 32}, {name: scratch, epochs: 1, batch_size: 32}, {name: noisy, scale: 0.1}, "
    "{name: fineprune, epochs: 1, batch_size: 32, endpoint: B}]",
).replace("connections: [linear, bezier]", "connections: [linear]")


def test_baselines_run_end_to_end(write_yaml, registry, tmp_path):
    assert BASELINES != TINY
    path = write_yaml(BASELINES)
    results = tmp_path / "results"
    bench = load_benchmark(path, registry)
    summary = run_benchmark(
        bench,
        Store(results),
        CPU,
        None,
        results / "cache",
        lambda description, total: lambda epoch, loss: None,
    )
    assert len(summary.ran) == 5 and not summary.failed
    recs = [json.loads(p.read_text()) for p in (results / "records").glob("*.json")]
    by_repair = {r["config"]["repair"]["name"]: r for r in recs}
    assert set(by_repair) == {"path", "finetune", "scratch", "noisy", "fineprune"}
    assert all(r["status"] == "ok" for r in recs)
    assert [p["t"] for p in by_repair["path"]["path"]] == [0.0, 0.5, 1.0]
    data = Synthetic(num_classes=4, image_size=16, train_per_class=64, test_per_class=40).load(
        None, tmp_path
    )
    accuracies = {}
    for name in ("finetune", "scratch", "noisy", "fineprune"):
        rec = by_repair[name]
        assert [p["t"] for p in rec["path"]] == [None] and rec["reported_t"] is None
        assert rec["config"]["connection"] is None
        # the stored repaired model, BatchNorm recomputed on the bonafide images, scored here
        net = ConvNet(widths=(8, 16)).build(4, 3, 16)
        model = by_hand.stored_model(results, "repair", rec["keys"]["repair"], net, data)
        by_hand.recalibrated(model, by_hand.bonafide_images(data, rec["config"]), 500)
        accuracies[name] = by_hand.accuracy(model, by_hand.evaluation_images(data, rec["config"]))
        assert rec["path"][0]["clean_accuracy"] == pytest.approx(accuracies[name], abs=1e-9)
    assert len(set(accuracies.values())) > 1  # four different models
    table = build_tables(recs)["summary"]
    assert sorted(table["repair"]) == ["fineprune", "finetune", "noisy", "path", "scratch"]
    assert table["clean_accuracy_mean"].notna().all()
