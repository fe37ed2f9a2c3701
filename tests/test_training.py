"""Schedules, augmentation, and training that resumes exactly after an interruption."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from mcbench.kinds.data import ImageSet
from mcbench.toolkit.augment import random_crop_flip
from mcbench.toolkit.checkpoint import Checkpoint
from mcbench.toolkit.training import FitOptions, SGDFields, fit, lr_factor


def test_garipov_schedule():
    epochs = 100
    assert [lr_factor("garipov", e, epochs) for e in (0, 50)] == [1.0, 1.0]
    assert lr_factor("garipov", 70, epochs) == pytest.approx(1 - 0.2 / 0.4 * 0.99)
    assert lr_factor("garipov", 90, epochs) == pytest.approx(0.01)
    assert lr_factor("garipov", 99, epochs) == 0.01


def test_crop_flip_is_a_shifted_window_of_the_padded_image():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).view(2, 1, 5, 5)
    gen = torch.Generator().manual_seed(3)
    out = random_crop_flip(x, gen, pad=2)
    gen = torch.Generator().manual_seed(3)
    offsets = torch.randint(0, 5, (2, 2), generator=gen)
    flips = torch.rand(2, generator=gen) < 0.5
    padded = nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(2):
        r, c = offsets[i].tolist()
        window = padded[i, :, r : r + 5, c : c + 5]
        if flips[i]:
            window = window.flip(-1)
        assert torch.equal(out[i], window)


def data():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 8, 8), generator=g, dtype=torch.uint8)
    return ImageSet(images, torch.randint(0, 3, (40,), generator=g))


def net():
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(144, 3),
    )


SGD = SGDFields(epochs=4, batch_size=16, lr=0.05, momentum=0.9, weight_decay=5e-4)
RUN = FitOptions(device=torch.device("cpu"), seed=5)


def train(model, **run):
    return fit(model, data(), SGD, replace(RUN, **run), augment=True)


def test_training_resumes_bit_for_bit_after_an_interruption(tmp_path):
    reference = net()
    ref_losses = train(reference)

    class Killed(Exception):
        pass

    def kill_after_two(epoch, loss):
        if epoch == 1:
            raise Killed

    checkpoint = Checkpoint(tmp_path / "state.pt")
    interrupted = net()
    with pytest.raises(Killed):
        train(interrupted, checkpoint=checkpoint, on_epoch=kill_after_two)
    assert checkpoint.load()["epoch"] == 2

    resumed_epochs = []
    resumed = net()
    losses = train(resumed, checkpoint=checkpoint, on_epoch=lambda e, l: resumed_epochs.append(e))
    assert resumed_epochs == [2, 3]
    assert losses == ref_losses
    for p, q in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(p, q)


def test_a_resumed_training_counts_the_seconds_before_the_kill(tmp_path, registry, write_yaml):
    from mcbench.bench.load import load_benchmark
    from mcbench.cell import plan
    from mcbench.run.data_cache import DatasetCache
    from mcbench.run.execute import compute_stage
    from mcbench.run.store import Store
    from mcbench.toolkit.training import training_seconds
    from tests.conftest import TINY

    class Killed(Exception):
        pass

    def killing(label, total):
        def on_epoch(epoch, loss):
            raise Killed

        return on_epoch

    cell = load_benchmark(write_yaml(TINY), registry).cells[0]
    data = DatasetCache(None, tmp_path / "cache").load(cell.dataset)
    store = Store(tmp_path / "results")
    cpu = torch.device("cpu")
    with pytest.raises(Killed):
        compute_stage(plan.endpoint(cell, "A"), cell, data, store, cpu, killing)
    checkpoint = store.checkpoint(plan.ENDPOINT, cell.endpoint_key("A"))
    first = training_seconds(checkpoint)
    assert 0 < first and checkpoint.load()["epoch"] == 1
    state = checkpoint.load()
    checkpoint.save({**state, "seconds": 1000.0})  # as if the first epoch had taken long
    quiet = lambda label, total: lambda epoch, loss: None  # noqa: E731
    artifact = compute_stage(plan.endpoint(cell, "A"), cell, data, store, cpu, quiet)
    assert 1000.0 < artifact.meta["seconds"] < 1000.0 + 60
    assert training_seconds(None) == 0.0
