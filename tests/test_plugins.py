"""Discovery through entry points, loud registration errors, the plugins command, and
the third-party example plugin (the contract of every plugin: test_contracts.py)."""

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import dataclasses
import json
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

import mcbench
from mcbench.cli import cli
from mcbench.errors import PluginError
from mcbench.registry import load_registry
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]


def test_every_entry_point_of_mcbench_registers_the_plugin_it_is_named_after(registry):
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    built_ins = [e for e in registry.all() if e.distribution == "mcbench"]
    assert sorted(e.provider for e in built_ins) == sorted(declared["mcbench"])
    for entry in built_ins:
        assert entry.name == entry.provider and entry.version == mcbench.__version__


def _module_registering(hook_name, cls):
    module = types.ModuleType("thirdparty")

    @mcbench.hookimpl(specname=hook_name)
    def hook(register):
        register(cls)

    module.hook = hook
    return module


def test_two_plugins_with_one_name_is_an_error_naming_both(registry):
    clash = type("Clash", (registry.get("attack", "badnets").cls,), {})
    with pytest.raises(PluginError) as info:
        load_registry(extra=(_module_registering("mcbench_register_attacks", clash),))
    text = str(info.value)
    assert "two plugins register the attack 'badnets'" in text
    assert "badnets (mcbench" in text and "thirdparty" in text


def test_a_misspelled_hook_is_rejected_at_load():
    module = types.ModuleType("typo")

    @mcbench.hookimpl
    def mcbench_register_atacks(register):
        pass

    module.mcbench_register_atacks = mcbench_register_atacks
    with pytest.raises(PluginError, match="mcbench_register_atacks"):
        load_registry(extra=(module,))


def test_a_class_that_is_not_a_plugin_is_rejected():
    class NotAPlugin:
        name = "bad"

    with pytest.raises(PluginError, match="must be a dataclass subclassing"):
        load_registry(extra=(_module_registering("mcbench_register_attacks", NotAPlugin),))


def test_plugins_command_lists_kind_provider_description_and_parameters(registry):
    out = CliRunner().invoke(cli, ["plugins", "attack"])
    assert out.exit_code == 0
    assert f"badnets  [attack]  mcbench {mcbench.__version__}" in out.output
    assert "- poison_rate: float = 0.1" in out.output
    assert "- mode: 'all-to-one' | 'all-to-all' = 'all-to-one'" in out.output
    assert "vgg16" not in out.output
    everything = CliRunner().invoke(cli, ["plugins"])
    for entry in registry.all():
        assert f"\n{entry.name}  [{entry.kind}]" in "\n" + everything.output


def test_plugins_as_json_list_every_plugin_with_its_fields(registry):
    out = CliRunner().invoke(cli, ["plugins", "--format", "json"])
    assert out.exit_code == 0, out.output
    listed = json.loads(out.output)
    assert listed["schema"] == 1
    by_name = {(p["kind"], p["name"]): p for p in listed["plugins"]}
    assert len(by_name) == len(listed["plugins"]) == len(registry.all())
    for entry in registry.all():
        shown = by_name[(entry.kind, entry.name)]
        assert (shown["distribution"], shown["version"]) == (entry.distribution, entry.version)
        fields = [f for f in dataclasses.fields(entry.cls) if f.init]
        assert [p["name"] for p in shown["parameters"]] == [f.name for f in fields]
        for f, p in zip(fields, shown["parameters"]):
            assert ("default" in p) == (
                f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            )
    badnets = {p["name"]: p for p in by_name[("attack", "badnets")]["parameters"]}
    assert badnets["poison_rate"] == {
        "name": "poison_rate",
        "type": "float",
        "default": 0.1,
        "help": "fraction of the training images stamped and relabelled, in (0, 1)",
    }
    assert badnets["color"]["default"] == [255, 255, 255]
    attack = {p["name"]: p for p in by_name[("metric", "robust_accuracy")]["parameters"]}["attack"]
    assert attack["default"]["name"] == "pgd"


def test_the_example_third_party_plugin_is_found_and_runs(registry, write_yaml, tmp_path):
    try:
        entry = registry.get("attack", "checkerboard")
    except KeyError:
        pytest.fail(
            "the example plugin is not installed: pip install -e examples/checkerboard-attack"
        )
    assert entry.distribution == "mcbench-checkerboard"
    path = write_yaml(
        TINY.replace(
            "{name: badnets, target: 0, poison_rate: 0.1, patch_size: 3}",
            "{name: checkerboard, target: 1, size: 4}",
        ).replace("connections: [linear, bezier]", "connections: [bezier]")
    )
    out = CliRunner().invoke(
        cli,
        [
            "run",
            str(path),
            "--results",
            str(tmp_path / "r"),
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
    )
    assert out.exit_code == 0, out.output
    assert "checkerboard" in out.output
