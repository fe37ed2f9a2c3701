"""Import paths: mcbench, its plugins, benchmarks and examples import only mcbench modules
that exist; the example plugin imports only the public plugin API; every mcbench name
docs/plugins.md mentions exists."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PUBLIC_NAMES = {"mcbench", "mcbench.hookimpl", "mcbench.__version__"}
PUBLIC_PACKAGES = ("mcbench.kinds", "mcbench.toolkit", "mcbench.testing")
EXAMPLE = ROOT / "examples" / "checkerboard-attack"


def mcbench_imports(source: str, targets: bool = True) -> set[str]:
    """The mcbench modules a source file imports, with the names its ``from`` imports
    take from them unless not ``targets``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if targets:
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "mcbench" or name.startswith("mcbench.")}


def imported_modules(source: str) -> set[str]:
    """The mcbench modules a source file names as modules (``import M``, ``from M import``)."""
    return mcbench_imports(source, targets=False)


def private(names: set[str]) -> set[str]:
    """Those of ``names`` outside the public plugin API (``from mcbench.kinds import X``
    gives both mcbench.kinds and mcbench.kinds.X)."""

    def public(name: str) -> bool:
        return name in PUBLIC_NAMES or any(
            name == p or name.startswith(p + ".") for p in PUBLIC_PACKAGES
        )

    return {name for name in names if not public(name)}


def test_mcbench_its_plugins_benchmarks_and_example_import_only_existing_modules():
    for folder in ("mcbench", "plugins", "benchmarks", "timings", "experiments", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for module in imported_modules(path.read_text()):
                assert importlib.util.find_spec(module) is not None, f"{path}: {module}"


def test_the_example_plugin_imports_only_the_public_plugin_api():
    files = sorted(EXAMPLE.rglob("*.py"))
    assert len(files) >= 2
    for path in files:
        assert private(mcbench_imports(path.read_text())) == set(), path


def test_the_import_scan_sees_private_paths():
    source = (
        "import mcbench\n"
        "from mcbench import hookimpl\n"
        "from mcbench.kinds import PoisonAttack\n"
        "from mcbench.toolkit.nets import find_layer\n"
        "from mcbench.testing import check_plugin\n"
        "from mcbench.registry import load_registry\n"
        "import mcbench.run.store\n"
        "from mcbench.tampering import margin\n"
    )
    assert private(mcbench_imports(source)) == {
        "mcbench.registry",
        "mcbench.registry.load_registry",
        "mcbench.run.store",
        "mcbench.tampering",
        "mcbench.tampering.margin",
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


def test_every_mcbench_name_in_the_plugin_guide_exists():
    text = (ROOT / "docs" / "plugins.md").read_text()
    for number, line in enumerate(text.splitlines(), 1):
        for name in re.findall(r"\bmcbench(?:\.\w+)+", line):
            assert resolves(name), f"line {number}: {name} does not exist"


def test_the_name_check_sees_a_missing_name():
    assert resolves("mcbench.toolkit.nets.find_layer") and resolves("mcbench.hookimpl")
    assert not resolves("mcbench.no_such_module")
    assert not resolves("mcbench.toolkit.nets.no_such_helper")
    assert not resolves("mcbench.kinds.find_layer")
