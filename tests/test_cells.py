"""Cells and plugin choices: equal exactly when they name the same plugins with the same
parameters and versions; nested plugins (a metric's attack, the path repair's
adversarial attack, the adversarial-training attack) are in the record's provenance and,
when another distribution or version provides them, in the cache keys."""

import mcbench
from mcbench.bench.load import load_benchmark
from mcbench.registry import load_registry
from tests import fake_dist
from tests.conftest import TINY

BUILT_IN = f"mcbench {mcbench.__version__}"

NESTED = """\
version: 1
tracks:
  evasion-path:
    datasets: [{name: synthetic, num_classes: 4, image_size: 16, train_per_class: 64, test_per_class: 40}]
    architectures: [{name: convnet, widths: [8, 16]}]
    repairs: [{name: path, epochs: 2, batch_size: 32, adversarial: {name: ATTACK, steps: 1}}]
    connections: [bezier]
    budgets: [40]
    seeds: [0]
    adversarial: {endpoints: [B], attack: {name: ATTACK, steps: 1}}
    metrics:
      - clean_accuracy
      - {name: robust_accuracy, samples: 10, attack: {name: ATTACK, steps: 3}}
    split: {defender_pool: 60}
    train: {epochs: 2, batch_size: 32, lr: 0.05}
    evaluate: {grid: 3}
"""

FAST_PGD = """\
from dataclasses import dataclass
from typing import ClassVar

import mcbench
from mcbench_plugins.attacks.pgd import PGD


@dataclass(frozen=True)
class FastPGD(PGD):
    \"\"\"PGD under another name, from another distribution.\"\"\"

    name: ClassVar[str] = "fastpgd"


@mcbench.hookimpl
def mcbench_register_attacks(register):
    register(FastPGD)
"""


def test_plugin_choices_differ_when_the_plugin_differs(write_yaml, registry):
    text = TINY.replace(
        "attacks: [{name: badnets, target: 0, poison_rate: 0.1, patch_size: 3}]",
        "attacks: [{name: badnets, target: 0}, {name: blended, target: 0}]",
    ).replace("connections: [linear, bezier]", "connections: [bezier]")
    badnets, blended = load_benchmark(write_yaml(text), registry).cells
    assert badnets.attack.name == "badnets" and blended.attack.name == "blended"
    assert badnets.attack != blended.attack
    assert len({badnets.attack, blended.attack}) == 2
    assert badnets != blended and len({badnets, blended}) == 2


def test_plugin_choices_are_equal_when_they_name_the_same_plugin(write_yaml, registry):
    first = load_benchmark(write_yaml(TINY, "a.yaml"), registry).cells
    again = load_benchmark(write_yaml(TINY, "b.yaml"), registry).cells
    assert first == again and len(set(first) | set(again)) == len(first) == 2
    assert first[0].attack == again[0].attack and hash(first[0].attack) == hash(again[0].attack)


def test_a_parameter_change_makes_a_different_choice(write_yaml, registry):
    [a, _] = load_benchmark(write_yaml(TINY, "a.yaml"), registry).cells
    [b, _] = load_benchmark(
        write_yaml(TINY.replace("target: 0", "target: 1"), "b.yaml"), registry
    ).cells
    assert a.attack != b.attack and a != b


def test_provenance_lists_nested_plugins_where_they_sit(write_yaml, registry):
    [cell] = load_benchmark(write_yaml(NESTED.replace("ATTACK", "pgd")), registry).cells
    assert cell.plugin_provenance() == {
        "dataset:synthetic": BUILT_IN,
        "architecture:convnet": BUILT_IN,
        "repair:path": BUILT_IN,
        "repair:path.adversarial:pgd": BUILT_IN,
        "connection:bezier": BUILT_IN,
        "metric:clean_accuracy": BUILT_IN,
        "metric:robust_accuracy": BUILT_IN,
        "metric:robust_accuracy.attack:pgd": BUILT_IN,
        "settings:adversarial.attack:pgd": BUILT_IN,
    }


def _cell_with_fast_pgd(tmp_path, version, write_yaml):
    remove = fake_dist.install(
        tmp_path / version, "acme-attacks", version, {"acme_fastpgd": FAST_PGD}
    )
    try:
        registry = load_registry()
        path = write_yaml(NESTED.replace("ATTACK", "fastpgd"), f"{version}.yaml")
        [cell] = load_benchmark(path, registry).cells
    finally:
        remove()
    return cell


def test_a_nested_plugin_from_another_distribution_is_in_provenance_and_keys(write_yaml, tmp_path):
    old = _cell_with_fast_pgd(tmp_path, "2.0", write_yaml)
    new = _cell_with_fast_pgd(tmp_path, "3.0", write_yaml)
    provenance = old.plugin_provenance()
    assert provenance["metric:robust_accuracy.attack:fastpgd"] == "acme-attacks 2.0"
    assert provenance["repair:path.adversarial:fastpgd"] == "acme-attacks 2.0"
    assert provenance["settings:adversarial.attack:fastpgd"] == "acme-attacks 2.0"
    assert new.plugin_provenance()["metric:robust_accuracy.attack:fastpgd"] == "acme-attacks 3.0"
    # upgrading the attack retrains what it trained and rescores what it scored
    assert old.endpoint_key("A") == new.endpoint_key("A")  # trained without it
    assert old.endpoint_key("B") != new.endpoint_key("B")  # adversarial.attack
    assert old.repair_key() != new.repair_key()  # path.adversarial (and endpoint B)
    assert old.cell_id != new.cell_id
    assert old.config()["metrics"][1] != new.config()["metrics"][1]  # robust_accuracy.attack


def test_only_the_metric_holding_the_upgraded_attack_changes(write_yaml, tmp_path):
    text = NESTED.replace("ATTACK", "pgd").replace(
        "{name: robust_accuracy, samples: 10, attack: {name: pgd, steps: 3}}",
        "{name: robust_accuracy, samples: 10, attack: {name: fastpgd, steps: 3}}",
    )
    cells = []
    for version in ("2.0", "3.0"):
        remove = fake_dist.install(
            tmp_path / version, "acme-attacks", version, {"acme_fastpgd": FAST_PGD}
        )
        try:
            [cell] = load_benchmark(write_yaml(text, f"{version}.yaml"), load_registry()).cells
        finally:
            remove()
        cells.append(cell)
    old, new = cells
    assert old.repair_key() == new.repair_key() and old.endpoint_key("B") == new.endpoint_key("B")
    assert old.cell_id != new.cell_id
