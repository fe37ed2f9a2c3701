"""Import paths: the plugin-facing module paths of the previous release still work for one
release and warn; mcbench, its plugins and benchmarks no longer import them; the example plugin imports
only the public plugin API; every mcbench name docs/plugins.md mentions exists."""

from __future__ import annotations

import ast
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

OLD_MODULES = {
    "mcbench.data": "mcbench.kinds.data",
    "mcbench.training": "mcbench.toolkit.training",
    "mcbench.evaluation": "mcbench.toolkit.evaluation",
    "mcbench.curves": "mcbench.toolkit.curves",
    "mcbench.adversarial": "mcbench.toolkit.adversarial",
    "mcbench.tampering": "mcbench.toolkit.tampering",
    "mcbench.hessian": "mcbench.toolkit.hessian",
    "mcbench.augment": "mcbench.toolkit.augment",
}
OLD_NAMES = {
    "mcbench.kinds.find_layer": "mcbench.toolkit.nets.find_layer",
    "mcbench.kinds.parameter_layers": "mcbench.toolkit.nets.parameter_layers",
}
PUBLIC_NAMES = {"mcbench", "mcbench.hookimpl", "mcbench.__version__"}
PUBLIC_PACKAGES = ("mcbench.kinds", "mcbench.toolkit", "mcbench.testing")
EXAMPLE = ROOT / "examples" / "checkerboard-attack"

# Run in a fresh interpreter: a module imported once (by another test) warns no more.
# Each old path in turn, recording what it warns and what it resolves to.
SCRIPT = """
import importlib, json, sys, warnings

OLD_MODULES, OLD_NAMES = json.loads(sys.argv[1])

def mcbench_warnings(caught):
    return [str(w.message) for w in caught
            if issubclass(w.category, DeprecationWarning) and "mcbench" in str(w.message)]

old = {}
for name, new in {**OLD_MODULES, **OLD_NAMES}.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if name in OLD_MODULES:
            module = importlib.import_module(name)
            same = module is importlib.import_module(new) and sys.modules[name] is module
        else:
            parent, attribute = name.rsplit(".", 1)
            value = getattr(importlib.import_module(parent), attribute)
            new_parent, new_attribute = new.rsplit(".", 1)
            same = value is getattr(importlib.import_module(new_parent), new_attribute)
    old[name] = {"same": same, "warnings": mcbench_warnings(caught)}
print(json.dumps(old))
"""


@pytest.fixture(scope="module")
def imported():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps([OLD_MODULES, OLD_NAMES])],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("old", [*OLD_MODULES, *OLD_NAMES])
def test_an_old_path_still_works_for_one_release_and_warns(imported, old):
    new = {**OLD_MODULES, **OLD_NAMES}[old]
    outcome = imported[old]
    assert outcome["same"], f"{old} does not resolve to {new}"
    assert len(outcome["warnings"]) == 1, outcome["warnings"]
    assert old in outcome["warnings"][0] and new in outcome["warnings"][0]


def mcbench_imports(source: str) -> set[str]:
    """The mcbench modules (and ``from`` targets) a source file imports."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "mcbench" or name.startswith("mcbench.")}


def private(names: set[str]) -> set[str]:
    """Those of ``names`` outside the public plugin API (``from mcbench.kinds import X``
    gives both mcbench.kinds and mcbench.kinds.X). The old paths are not public."""

    def public(name: str) -> bool:
        if old_paths({name}):
            return False
        return name in PUBLIC_NAMES or any(
            name == p or name.startswith(p + ".") for p in PUBLIC_PACKAGES
        )

    return {name for name in names if not public(name)}


def old_paths(names: set[str]) -> set[str]:
    old = {*OLD_MODULES, *OLD_NAMES}
    return {name for name in names if any(name == o or name.startswith(o + ".") for o in old)}


def test_mcbench_its_plugins_benchmarks_and_example_use_no_old_path():
    for folder in ("mcbench", "plugins", "benchmarks", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            assert old_paths(mcbench_imports(path.read_text())) == set(), path


def test_the_example_plugin_imports_only_the_public_plugin_api():
    files = sorted(EXAMPLE.rglob("*.py"))
    assert len(files) >= 2
    for path in files:
        assert private(mcbench_imports(path.read_text())) == set(), path


def test_the_import_scan_sees_private_and_old_paths():
    source = (
        "import mcbench\n"
        "from mcbench import hookimpl\n"
        "from mcbench.kinds import PoisonAttack\n"
        "from mcbench.toolkit.nets import find_layer\n"
        "from mcbench.testing import check_plugin\n"
        "from mcbench.registry import load_registry\n"
        "import mcbench.run.store\n"
        "from mcbench.tampering import margin\n"
        "from mcbench.kinds import find_layer\n"
    )
    assert private(mcbench_imports(source)) == {
        "mcbench.registry",
        "mcbench.registry.load_registry",
        "mcbench.run.store",
        "mcbench.tampering",
        "mcbench.tampering.margin",
        "mcbench.kinds.find_layer",
    }


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        try:
            for attribute in parts[cut:]:
                value = getattr(value, attribute)
        except AttributeError:
            return False
        return True
    return False


def test_every_mcbench_name_in_the_plugin_guide_exists_and_old_paths_appear_only_as_old():
    text = (ROOT / "docs" / "plugins.md").read_text()
    old = {*OLD_MODULES, *OLD_NAMES}
    for number, line in enumerate(text.splitlines(), 1):
        for name in re.findall(r"\bmcbench(?:\.\w+)+", line):
            if name in old:
                assert "DeprecationWarning" in line, f"line {number}: {name} is an old path"
            else:
                assert resolves(name), f"line {number}: {name} does not exist"


def test_the_name_check_sees_a_missing_name():
    assert resolves("mcbench.toolkit.nets.find_layer") and resolves("mcbench.hookimpl")
    assert not resolves("mcbench.toolkit.nets.no_such_helper")
    assert not resolves("mcbench.no_such_module")
