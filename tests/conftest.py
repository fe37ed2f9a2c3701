import os
import textwrap
from pathlib import Path

import pytest

from mcbench.registry import load_registry

pytest_plugins = ["tests.executor_cases"]  # the executor tests' shared fixtures

SHARED_DATA = Path(
    os.environ.get("MCBENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)

TINY = """\
version: 1
tracks:
  backdoor-repair:
    datasets: [{name: synthetic, num_classes: 4, image_size: 16, train_per_class: 64, test_per_class: 40}]
    architectures: [{name: convnet, widths: [8, 16]}]
    attacks: [{name: badnets, target: 0, poison_rate: 0.1, patch_size: 3}]
    repairs: [{name: path, epochs: 2, batch_size: 32}]
    connections: [linear, bezier]
    budgets: [40]
    seeds: [0]
    metrics: [clean_accuracy, attack_success_rate, loss]
    split: {defender_pool: 60}
    train: {epochs: 2, batch_size: 32, lr: 0.05}
    evaluate: {grid: 3}
"""


@pytest.fixture(scope="session")
def registry():
    return load_registry()


@pytest.fixture
def write_yaml(tmp_path):
    def write(text: str, name: str = "bench.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def tiny_yaml(write_yaml):
    return write_yaml(TINY)
