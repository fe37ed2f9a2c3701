"""`mcbench new KIND NAME`: for every kind (and every attack stage), the package it writes
holds the entry point, a plugin module subclassing the kind's base that passes
mcbench.testing's checks, tests that run them, a README quoting a benchmark file that uses
it, and copier's answers; bad names and occupied folders are refused. The slow tests install
each package, run its own tests and its benchmark file, and uninstall it."""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import copier
import pytest
import yaml
from click.testing import CliRunner

import mcbench.kinds
from mcbench.cli import cli
from mcbench.registry import load_registry
from mcbench.scaffold import TEMPLATE, plugin_names
from mcbench.testing import check_plugin
from tests.test_public_imports import mcbench_imports, private

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

# (kind, stage, NAME, the base class the plugin subclasses)
VARIANTS = [
    ("dataset", None, "new-stripes", "DatasetPlugin"),
    ("architecture", None, "new-mlp", "ArchitecturePlugin"),
    ("attack", "poison", "new-frame", "PoisonAttack"),
    ("attack", "tamper", "new-noise", "TamperAttack"),
    ("attack", "evasion", "new-fgsm", "EvasionAttack"),
    ("connection", None, "new-lagrange", "ConnectionPlugin"),
    ("repair", None, "new-average", "RepairPlugin"),
    ("metric", None, "new-top-k", "MetricPlugin"),
]
IDS = [stage or kind for kind, stage, _, _ in VARIANTS]
NAMES = [name for _, _, name, _ in VARIANTS]


def new(*args: str):
    return CliRunner().invoke(cli, ["new", *args])


def generate(root: Path, kind: str, stage: str | None, name: str) -> Path:
    out = root / name
    result = new(kind, name, "--out", str(out), *(["--stage", stage] if stage else []))
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, Path]:
    """Every variant's package, by NAME, written once for the module's tests."""
    root = tmp_path_factory.mktemp("new-plugins")
    return {name: generate(root, kind, stage, name) for kind, stage, name, _ in VARIANTS}


def pyproject(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text())


def import_file(path: Path, monkeypatch):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, path.stem, module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("kind", "stage", "name", "base"), VARIANTS, ids=IDS)
def test_the_package_declares_its_entry_point_module_and_tests(packages, kind, stage, name, base):
    names = plugin_names(name)
    folder = packages[name]
    project = pyproject(folder)
    assert project["project"]["name"] == names.distribution
    assert project["project"]["entry-points"]["mcbench"] == {names.plugin: names.module}
    assert project["tool"]["setuptools"]["py-modules"] == [names.module]

    module = ast.parse((folder / f"{names.module}.py").read_text())
    classes = {node.name: node for node in module.body if isinstance(node, ast.ClassDef)}
    assert [b.id for b in classes[names.cls].bases] == [base]
    hooks = [node.name for node in module.body if isinstance(node, ast.FunctionDef)]
    assert hooks == [f"mcbench_register_{kind}s"]

    tests = (folder / "tests" / f"test_{names.plugin}.py").read_text()
    called = {
        node.func.id
        for node in ast.walk(ast.parse(tests))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert {"check_plugin", "check_registered"} <= called
    for path in (folder / f"{names.module}.py", folder / "tests" / f"test_{names.plugin}.py"):
        assert private(mcbench_imports(path.read_text())) == set(), path


@pytest.mark.parametrize(("kind", "stage", "name", "base"), VARIANTS, ids=IDS)
def test_the_readme_quotes_the_benchmark_file_that_uses_the_plugin(
    packages, kind, stage, name, base
):
    plugin = plugin_names(name).plugin
    folder = packages[name]
    benchmark = (folder / "benchmark.yaml").read_text()
    body = benchmark[benchmark.index("version: 1") :]
    assert f"```yaml\n{body}```" in (folder / "README.md").read_text()
    track = yaml.safe_load(benchmark)["tracks"][plugin]
    axis = "metrics" if stage == "evasion" else f"{kind}s"
    assert re.search(rf"\b{plugin}\b", yaml.safe_dump(track[axis]))


@pytest.mark.parametrize(("kind", "stage", "name", "base"), VARIANTS, ids=IDS)
def test_the_plugin_passes_its_contract_checks_and_registers(
    packages, monkeypatch, kind, stage, name, base
):
    names = plugin_names(name)
    folder = packages[name]
    module = import_file(folder / f"{names.module}.py", monkeypatch)
    cls = getattr(module, names.cls)
    assert issubclass(cls, getattr(mcbench.kinds, base))
    check_plugin(cls)
    assert load_registry(extra=(module,)).get(kind, names.plugin).cls is cls


@pytest.mark.parametrize(("kind", "stage", "name", "base"), VARIANTS, ids=IDS)
def test_the_package_is_lint_clean_and_formatted(packages, kind, stage, name, base):
    folder = packages[name]
    for command in (["check", "."], ["format", "--check", "."]):
        ruff = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--no-cache"],
            cwd=folder,
            capture_output=True,
            text=True,
        )
        assert ruff.returncode == 0, ruff.stdout + ruff.stderr


def test_copier_answers_are_recorded_for_copier_update(tmp_path):
    folder = generate(tmp_path, "attack", "tamper", "My_Noise")
    answers = yaml.safe_load((folder / ".copier-answers.yml").read_text())
    assert answers == {
        "_src_path": str(TEMPLATE),
        "kind": "attack",
        "stage": "tamper",
        "plugin_name": "my_noise",
        "class_name": "MyNoise",
        "module_name": "mcbench_my_noise",
        "distribution": "mcbench-my-noise",
    }


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)


def test_copier_update_merges_a_fix_of_a_git_tracked_template_and_keeps_edits(
    tmp_path, monkeypatch
):
    for variable in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{variable}_NAME", "mcbench tests")
        monkeypatch.setenv(f"GIT_{variable}_EMAIL", "tests@mcbench.invalid")
    template = tmp_path / "template"
    shutil.copytree(TEMPLATE, template)
    git(template, "init", "-q")
    git(template, "add", "-A")
    git(template, "commit", "-qm", "first")
    git(template, "tag", "v1.0.0")
    result = new("metric", "top-k", "--out", str(tmp_path / "top-k"), "--template", str(template))
    assert result.exit_code == 0, result.output
    project = tmp_path / "top-k"
    module = project / "mcbench_top_k.py"
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "generated")
    module.write_text(module.read_text() + "# an edit of the author's\n")
    git(project, "commit", "-qam", "edited")

    readme = template / "project" / "README.md.jinja"
    readme.write_text(readme.read_text() + "\nA fix from the template.\n")
    git(template, "commit", "-qam", "fix")
    git(template, "tag", "v1.1.0")
    copier.run_update(project, defaults=True, overwrite=True, quiet=True)
    assert "A fix from the template." in (project / "README.md").read_text()
    assert module.read_text().endswith("# an edit of the author's\n")
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "v1.1.0"


@pytest.mark.parametrize(
    ("given", "plugin", "module", "cls", "distribution"),
    [
        ("my-trigger", "my_trigger", "mcbench_my_trigger", "MyTrigger", "mcbench-my-trigger"),
        ("My.Trigger", "my_trigger", "mcbench_my_trigger", "MyTrigger", "mcbench-my-trigger"),
        (
            "mcbench-my__trigger",
            "my_trigger",
            "mcbench_my_trigger",
            "MyTrigger",
            "mcbench-my-trigger",
        ),
        ("fgsm2", "fgsm2", "mcbench_fgsm2", "Fgsm2", "mcbench-fgsm2"),
    ],
)
def test_every_name_comes_from_the_one_given(given, plugin, module, cls, distribution):
    names = plugin_names(given)
    assert (names.plugin, names.module, names.cls, names.distribution) == (
        plugin,
        module,
        cls,
        distribution,
    )


@pytest.mark.parametrize("name", ["3d-trigger", "my trigger", "_trigger", "trigger-", "tür", ""])
def test_a_bad_name_is_one_error_line(tmp_path, name):
    result = new("attack", name, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_name_an_installed_plugin_has_is_refused(tmp_path):
    result = new("attack", "badnets", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "mcbench already has a plugin entry point named 'badnets'" in result.output


def test_a_folder_that_holds_something_is_refused_and_left_alone(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    result = new("metric", "top-k", "--out", str(tmp_path / "taken"))
    assert result.exit_code == 2 and "is not empty" in result.output
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["notes.txt"]
    (tmp_path / "empty").mkdir()
    assert new("metric", "top-k", "--out", str(tmp_path / "empty")).exit_code == 0


def test_a_file_in_place_of_the_folder_is_refused(tmp_path):
    (tmp_path / "a-file").write_text("")
    result = new("metric", "top-k", "--out", str(tmp_path / "a-file"))
    assert result.exit_code == 2 and "is a file" in result.output


def test_the_default_folder_is_the_name_in_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert new("connection", "my-curve").exit_code == 0
    assert (tmp_path / "my-curve" / "mcbench_my_curve.py").is_file()


def test_a_stage_is_for_attacks_only(tmp_path):
    result = new("metric", "top-k", "--stage", "poison", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "for attacks only" in result.output


def test_an_attack_is_a_poison_attack_unless_told(tmp_path):
    folder = generate(tmp_path, "attack", None, "my-trigger")
    assert "(PoisonAttack)" in (folder / "mcbench_my_trigger.py").read_text()


# -- installed: the package's own tests, `mcbench plugins`, its benchmark file ---------------


def run(*args: str, cwd: Path | None = None, timeout: int = 300):
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def installed(packages):
    """Every variant's package, pip-installed into this environment for the module's tests."""
    pip = ["-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    distributions = [plugin_names(name).distribution for _, _, name, _ in VARIANTS]
    try:
        result = run(*pip, *map(str, packages.values()))
        assert result.returncode == 0, result.stdout + result.stderr
        yield packages
    finally:
        run("-m", "pip", "uninstall", "--quiet", "--yes", *distributions)


@pytest.mark.slow
def test_installed_packages_are_listed_by_mcbench_plugins(installed):
    result = run("-m", "mcbench", "plugins")
    assert result.returncode == 0, result.stderr
    for kind, _, name, _ in VARIANTS:
        names = plugin_names(name)
        assert f"{names.plugin}  [{kind}]  {names.distribution} 0.1.0" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES, ids=IDS)
def test_an_installed_package_passes_its_own_tests(installed, name):
    result = run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=installed[name])
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b3 passed\b", result.stdout), result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES, ids=IDS)
def test_an_installed_package_runs_its_benchmark_file(installed, name, tmp_path):
    folder = installed[name]
    result = run(
        "-m",
        "mcbench",
        "run",
        "benchmark.yaml",
        "--results",
        str(tmp_path / "results"),
        "--cache-dir",
        str(tmp_path / "cache"),
        cwd=folder,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    plugin = pyproject(folder)["project"]["entry-points"]["mcbench"]
    assert re.search(rf"\b{next(iter(plugin))}\b", result.stdout), result.stdout
