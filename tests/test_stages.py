"""The stage functions and what they share: the model wrapper, the stage cache with its
data-copy check, the stage graph, and seeding that leaves the global RNG alone."""

import pytest
import torch
from torch import nn

from mcbench.bench.load import load_benchmark
from mcbench.cell import plan
from mcbench.run.cache import DataCopy, DataCopyMismatch, StageCache
from mcbench.run.execute import compute_stage
from mcbench.run.store import Store
from mcbench.toolkit.checkpoint import Checkpoint, atomic_write
from mcbench.toolkit.nets import Normalize, NormalizedNetwork
from mcbench.toolkit.training import FitOptions, SGDFields, fit, seeded
from mcbench_plugins.datasets.synthetic import Synthetic
from tests.conftest import TINY

CPU = torch.device("cpu")


def small_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(16, 2))


def test_normalized_network_has_the_state_dict_keys_of_the_sequential_layout():
    torch.manual_seed(0)
    net = small_net()
    wrapped = NormalizedNetwork(Normalize((0.5, 0.4, 0.3), (0.2, 0.2, 0.1)), net)
    sequential = nn.Sequential(Normalize((0.1, 0.1, 0.1), (1.0, 1.0, 1.0)), small_net())
    assert list(wrapped.state_dict()) == list(sequential.state_dict())
    assert list(wrapped.state_dict())[:2] == ["0.mean", "0.std"]
    sequential.load_state_dict(wrapped.state_dict())  # and back
    wrapped.load_state_dict(sequential.state_dict())
    assert wrapped.network is net and isinstance(wrapped.normalize, Normalize)
    x = torch.rand(3, 3, 4, 4)
    expected = net.eval()((x - wrapped.normalize.mean) / wrapped.normalize.std)
    torch.testing.assert_close(wrapped.eval()(x), expected, rtol=0, atol=0)


def test_a_cache_hit_from_another_copy_of_the_data_is_refused(tmp_path):
    store = Store(tmp_path / "results")
    calls = []

    def compute(checkpoint):
        calls.append(checkpoint.path)
        return {"w": torch.arange(3.0)}, {"seconds": 1.0}

    first = StageCache(store, DataCopy("copy one", "folder of copy one")).tensors(
        "endpoint", "k1", ("in",), compute
    )
    assert not first.cached and first.meta == {
        "seconds": 1.0,
        "data": "copy one",
        "data_source": "folder of copy one",
        "inputs": ["in"],
    }
    assert store.load_json("endpoint", "k1") == first.meta
    again = StageCache(store, DataCopy("copy one", "folder of copy one")).tensors(
        "endpoint", "k1", ("in",), compute
    )
    assert again.cached and torch.equal(again.tensors["w"], torch.arange(3.0))
    assert len(calls) == 1 and not calls[0].exists()  # the checkpoint is gone once stored
    moved = StageCache(store, DataCopy("copy one", "copy one moved elsewhere"))
    assert moved.tensors("endpoint", "k1", ("in",), compute).cached  # same content: reused
    with pytest.raises(DataCopyMismatch) as error:
        StageCache(store, DataCopy("copy two", "folder of copy two")).tensors(
            "endpoint", "k1", ("in",), compute
        )
    message = str(error.value)
    assert f"results folder {store.root}" in message and "endpoint artifact k1" in message
    assert "cached: folder of copy one, sha256 of the decoded data copy one" in message
    assert "this run: folder of copy two, copy two" in message
    assert "use another --results folder" in message and len(calls) == 1


def test_json_results_carry_the_data_copy_and_older_ones_are_read(tmp_path):
    store = Store(tmp_path)
    made = StageCache(store, DataCopy("copy", "folder of copy")).json(
        "endpoint-eval", "e", ("k",), lambda: {"acc": 0.5}
    )
    assert store.load_json("endpoint-eval", "e") == {
        "result": {"acc": 0.5},
        "data": "copy",
        "data_source": "folder of copy",
        "inputs": ["k"],
    }
    assert made.meta["result"] == {"acc": 0.5} and not made.cached
    with pytest.raises(DataCopyMismatch):
        StageCache(store, DataCopy("other", "folder of other")).json(
            "endpoint-eval", "e", ("k",), lambda: {}
        )
    store.save_json("endpoint-eval", "old", {"acc": 0.25})  # written before copies were kept
    old = StageCache(store, DataCopy("other", "folder of other")).json(
        "endpoint-eval", "old", ("k",), lambda: {}
    )
    assert old.cached and old.meta["result"] == {"acc": 0.25}


def test_the_stage_graph_uses_the_cells_keys(write_yaml, registry):
    text = TINY.replace(
        "attacks: [{name: badnets, target: 0, poison_rate: 0.1, patch_size: 3}]",
        "attacks: [{name: sba, targets: 2}]",
    ).replace("clean_accuracy, attack_success_rate, loss", "clean_accuracy")
    assert "sba" in text
    cell = load_benchmark(write_yaml(text), registry).cells[0]
    graph = {(s.stage, s.label): s for s in plan.cell_stages(cell)}
    a, b = graph["endpoint", "endpoint A"], graph["endpoint", "endpoint B"]
    assert (a.key, b.key) == (cell.endpoint_key("A"), cell.endpoint_key("B"))
    assert a.inputs == b.inputs == ()
    tamper_a = graph["tamper", "tamper A"]
    assert tamper_a.key == cell.tamper_key("A") and tamper_a.inputs == (f"endpoint/{a.key}",)
    repair = graph["repair", "repair"]
    assert repair.key == cell.repair_key()
    assert repair.inputs == tuple(f"tamper/{cell.tamper_key(r)}" for r in "AB")
    untampered = graph["endpoint-eval", "endpoint-eval A untampered"]
    assert untampered.key == cell.endpoint_eval_key("A", untampered=True)
    assert untampered.inputs == (a.node,)
    assert graph["endpoint-eval", "endpoint-eval B"].inputs == (f"tamper/{cell.tamper_key('B')}",)
    evaluate = plan.cell_stages(cell)[-1]
    assert evaluate.key == cell.cell_id and evaluate.inputs[0] == repair.node
    # every stage comes after the stages it reads
    seen = set()
    for stage in plan.cell_stages(cell):
        assert set(stage.inputs) <= seen, stage
        seen.add(stage.node)


def test_an_endpoint_depends_on_its_seed_only_and_leaves_the_global_rng_alone(
    tiny_yaml, registry, tmp_path
):
    cell = load_benchmark(tiny_yaml, registry).cells[0]
    data = Synthetic(num_classes=4, image_size=16, train_per_class=64, test_per_class=40).load(
        None, tmp_path
    )
    trained = []
    for prior in (1, 2):
        torch.manual_seed(prior)
        state = torch.get_rng_state()
        store = Store(tmp_path / f"results-{prior}")
        artifact = compute_stage(plan.endpoint(cell, "A"), cell, data, store, CPU)
        assert torch.equal(torch.get_rng_state(), state)
        trained.append(artifact.tensors)
    assert trained[0].keys() == trained[1].keys()
    assert all(torch.equal(trained[0][k], trained[1][k]) for k in trained[0])


def test_seeded_restores_the_global_rng_and_fit_draws_from_its_seed():
    torch.manual_seed(3)
    state = torch.get_rng_state()
    with seeded(11):
        inside = torch.rand(4)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(11)
    assert torch.equal(inside, torch.rand(4))

    from mcbench.kinds.data import ImageSet

    g = torch.Generator().manual_seed(0)
    data = ImageSet(
        torch.randint(0, 256, (12, 3, 4, 4), generator=g, dtype=torch.uint8),
        torch.randint(0, 2, (12,), generator=g),
    )
    results = []
    for prior in (5, 6):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(48, 2))
        torch.manual_seed(prior)
        state = torch.get_rng_state()
        sgd = SGDFields(
            epochs=2, batch_size=4, lr=0.1, momentum=0.0, weight_decay=0.0, schedule="constant"
        )
        fit(model, data, sgd, FitOptions(CPU, seed=9), augment=False)
        assert torch.equal(torch.get_rng_state(), state)
        results.append(model.state_dict())
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "state.pt"
    Checkpoint(path).save({"epoch": 1})

    def broken(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, broken)
    assert Checkpoint(path).load() == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]


def test_the_fingerprint_is_the_content_of_the_data():
    from mcbench.kinds.data import Dataset, ImageSet

    def dataset(images, source):
        labels = torch.arange(len(images)) % 2
        part = ImageSet(images, labels)
        return Dataset(part, part, 2, (0.5,), (0.25,), ("a", "b"), source)

    images = torch.randint(0, 256, (4, 1, 2, 2), dtype=torch.uint8)
    one, moved = dataset(images, "/one"), dataset(images.clone(), "/elsewhere")
    changed = images.clone()
    changed[0, 0, 0, 0] ^= 1
    assert one.fingerprint == moved.fingerprint
    assert dataset(changed, "/one").fingerprint != one.fingerprint
    # the images, then the labels, of train then test, with dtype and shape
    import hashlib

    digest = hashlib.sha256()
    for tensor in (images, torch.arange(4) % 2) * 2:
        digest.update(str((tensor.dtype, tuple(tensor.shape))).encode())
        digest.update(tensor.numpy().tobytes())
    assert one.fingerprint == digest.hexdigest()
