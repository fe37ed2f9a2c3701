"""pyproject.toml lists what the source tree holds: every plugin module (a module under
plugins/ defining a ``mcbench_register_*`` hook) is an entry point of the ``mcbench``
group and every entry point is such a module, and every package folder under mcbench/
and plugins/ is in ``[tool.setuptools] packages`` (an explicit list, because plugins/ is
installed as ``mcbench_plugins``)."""

from __future__ import annotations

import ast
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# source folder -> the package it is installed as
PACKAGE_DIRS = {"mcbench": "mcbench", "plugins": "mcbench_plugins"}


def pyproject(root: Path) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text())


def dotted(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join((PACKAGE_DIRS[parts[0]], *parts[1:]))


def hook_modules(root: Path) -> set[str]:
    """Modules under plugins/ with a top-level ``mcbench_register_*`` function."""
    found = set()
    for path in sorted((root / "plugins").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        if any(
            isinstance(node, ast.FunctionDef) and node.name.startswith("mcbench_register_")
            for node in tree.body
        ):
            found.add(dotted(root, path))
    return found


def package_folders(root: Path) -> set[str]:
    return {
        dotted(root, init)
        for folder in PACKAGE_DIRS
        for init in (root / folder).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


def entry_point_mismatch(root: Path) -> tuple[set[str], set[str]]:
    """(plugin modules with no entry point, entry points that are no plugin module)."""
    declared = set(pyproject(root)["project"]["entry-points"]["mcbench"].values())
    modules = hook_modules(root)
    return modules - declared, declared - modules


def package_mismatch(root: Path) -> tuple[set[str], set[str]]:
    """(package folders not listed, listed packages with no folder)."""
    listed = set(pyproject(root)["tool"]["setuptools"]["packages"])
    folders = package_folders(root)
    return folders - listed, listed - folders


def test_every_plugin_module_is_an_entry_point_and_every_entry_point_a_plugin_module():
    assert entry_point_mismatch(ROOT) == (set(), set())


def test_every_package_folder_is_listed_and_every_listed_package_exists():
    assert package_mismatch(ROOT) == (set(), set())


def test_the_package_dirs_map_the_source_folders():
    package_dir = pyproject(ROOT)["tool"]["setuptools"]["package-dir"]  # package -> folder
    assert package_dir == {package: folder for folder, package in PACKAGE_DIRS.items()}


def test_the_checks_see_a_forgotten_entry_point_and_a_forgotten_package(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        "[project.entry-points.mcbench]\n"
        'old = "mcbench_plugins.attacks.gone"\n'
        'kept = "mcbench_plugins.attacks.kept"\n'
        "[tool.setuptools]\n"
        'packages = ["mcbench", "mcbench_plugins", "mcbench_plugins.attacks", "mcbench.gone"]\n'
    )
    attacks = tmp_path / "plugins" / "attacks"
    attacks.mkdir(parents=True)
    for folder in (tmp_path / "mcbench", tmp_path / "mcbench" / "run", tmp_path / "plugins"):
        folder.mkdir(exist_ok=True)
        (folder / "__init__.py").write_text("")
    (attacks / "__init__.py").write_text("")
    hook = "@mcbench.hookimpl\ndef mcbench_register_attacks(register):\n    pass\n"
    (attacks / "kept.py").write_text(hook)
    (attacks / "new.py").write_text(hook)
    (attacks / "_helper.py").write_text("def helper():\n    pass\n")
    assert entry_point_mismatch(tmp_path) == (
        {"mcbench_plugins.attacks.new"},
        {"mcbench_plugins.attacks.gone"},
    )
    assert package_mismatch(tmp_path) == ({"mcbench.run"}, {"mcbench.gone"})
