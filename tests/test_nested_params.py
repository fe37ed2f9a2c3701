"""Parameters that are themselves plugins are found through a registry, by name: a
plain value names a registered plugin, and a plugin's default (robust_accuracy's pgd)
is whatever the registry provides under that name."""

import types
from dataclasses import dataclass
from typing import ClassVar

import pytest

import mcbench
from mcbench.bench.load import load_benchmark
from mcbench.errors import ConfigError
from mcbench.kinds import EvasionAttack
from mcbench.registry import load_registry
from mcbench.registry.params import ParamTypeError, coerce
from tests.conftest import TINY

ONE_METRIC = TINY.replace(
    "metrics: [clean_accuracy, attack_success_rate, loss]", "metrics: [robust_accuracy]"
).replace("connections: [linear, bezier]", "connections: [bezier]")


def _registering(name, cls):
    @mcbench.hookimpl(specname="mcbench_register_attacks")
    def hook(register):
        register(cls)

    module = types.ModuleType(name)
    module.hook = hook
    return module


def test_a_plain_plugin_value_names_a_registered_plugin(registry):
    @dataclass(frozen=True)
    class Unregistered(EvasionAttack):
        """An evasion attack no plugin registers."""

        name: ClassVar[str] = "unregistered"

    with pytest.raises(ParamTypeError, match="unknown attack 'unregistered'"):
        coerce({"name": "unregistered"}, EvasionAttack, resolve=registry.resolve)
    pgd = registry.get("attack", "pgd").cls

    class Spy(pgd):  # a subclass that happens to be imported, with pgd's name
        pass

    value = coerce({"name": "pgd", "steps": 3}, EvasionAttack, resolve=registry.resolve)
    assert type(value) is pgd and value == pgd(steps=3)


def test_a_default_plugin_comes_from_the_registry_by_name(write_yaml, registry):
    pgd = registry.get("attack", "pgd").cls

    @dataclass(frozen=True)
    class OtherPGD(pgd):
        """pgd from another package."""

        name: ClassVar[str] = "pgd"

    replaced = load_registry(blocked=("pgd",), extra=(_registering("otherpgd", OtherPGD),))
    [cell] = load_benchmark(write_yaml(ONE_METRIC), replaced).cells
    assert type(cell.metrics[0].instance.attack) is OtherPGD
    assert cell.plugin_provenance()["metric:robust_accuracy.attack:pgd"] == "local "
    [built_in] = load_benchmark(write_yaml(ONE_METRIC, "b.yaml"), registry).cells
    assert type(built_in.metrics[0].instance.attack) is pgd
    assert built_in.cell_id != cell.cell_id  # the replacement's version is in the key


def test_a_blocked_default_plugin_is_an_error_at_its_key(write_yaml):
    with pytest.raises(ConfigError) as info:
        load_benchmark(write_yaml(ONE_METRIC), load_registry(blocked=("pgd",)))
    assert info.value.key == "tracks.backdoor-repair.metrics[0]"
    assert "the default 'pgd' is not available: attack 'pgd' is blocked" in str(info.value)
