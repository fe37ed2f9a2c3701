"""The plugin contract (mcbench.testing.check_plugin) on every plugin the registry holds:
the built-ins, and any installed third-party plugin such as the example in
examples/checkerboard-attack. A plugin file that registers a plugin is checked without
being listed here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mcbench.registry import load_registry
from mcbench.testing import BEHAVIOUR, check_plugin

REGISTRY = load_registry()
PLUGINS = [(entry.kind, entry.name) for entry in REGISTRY.all()]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # the checks run on tiny tensors: more threads only add synchronisation
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


FAST = {"epochs": 1, "batch_size": 16}
# Parameters a plugin is checked with: a timm model name, smaller or shorter settings
# where the defaults cost seconds (the behaviour checked does not depend on them).
PARAMS = {
    ("architecture", "timm"): {"model": "resnet10t"},
    ("architecture", "preresnet"): {"depth": 20},
    # C&W has no radius by default: given one, its points are checked against it too
    ("attack", "cw"): {"eps": 0.5, "steps": 10, "search_steps": 3},
    ("attack", "gda"): {"max_steps": 50},
    ("attack", "bitflip"): {"max_flips": 5},
    ("repair", "path"): FAST,
    ("repair", "finetune"): FAST,
    ("repair", "scratch"): FAST,
    ("repair", "fineprune"): FAST,
}


def cifar10_folders(root: Path) -> Path:
    """A tiny CIFAR-10 copy in the image-class folder layout the cifar10 plugin reads:
    train/<class>/*.png (two per class) and test/<class>/*.png (one per class), 32x32 RGB."""
    from mcbench_plugins.datasets.cifar10 import CLASS_NAMES

    rng = np.random.default_rng(0)
    for split, count in (("train", 2), ("test", 1)):
        for name in CLASS_NAMES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


# Datasets that read files, checked on a tiny copy written by the function, with the
# parameters that make them read only that copy.
DATA = {("dataset", "cifar10"): (cifar10_folders, {"source": "folder", "download": False})}


@pytest.mark.parametrize("kind, name", PLUGINS, ids=[f"{k}-{n}" for k, n in PLUGINS])
def test_every_registered_plugin_meets_its_contract(kind, name, tmp_path):
    cls = REGISTRY.get(kind, name).cls
    params = dict(PARAMS.get((kind, name), {}))
    root = None
    if (kind, name) in DATA:
        write, extra = DATA[kind, name]
        root = write(tmp_path / "data")
        params.update(extra)
    check_plugin(cls, data_root=root, **params)


@pytest.mark.parametrize("kind, name", PLUGINS, ids=[f"{k}-{n}" for k, n in PLUGINS])
def test_every_registered_plugin_has_a_behaviour_check(kind, name):
    cls = REGISTRY.get(kind, name).cls
    assert any(issubclass(cls, base) for base in BEHAVIOUR), (
        f"check_plugin checks only the declaration of {cls.__name__}"
    )


def test_the_tables_name_registered_plugins():
    for key in (*PARAMS, *DATA):
        assert key in PLUGINS, key


def test_the_tiny_cifar10_copy_is_what_the_plugin_reads(tmp_path):
    from mcbench_plugins.datasets.cifar10 import CIFAR10, CLASS_NAMES

    root = cifar10_folders(tmp_path / "data")
    data = CIFAR10(source="folder", download=False).load(root, tmp_path / "cache")
    assert (len(data.train), len(data.test)) == (20, 10)
    assert data.train.labels.tolist() == [k for k in range(10) for _ in range(2)]
    first = np.asarray(Image.open(root / "train" / CLASS_NAMES[0] / "0.png"))
    assert data.train.images[0].permute(1, 2, 0).numpy().tolist() == first.tolist()
