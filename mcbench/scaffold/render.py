"""Writing a new plugin package: the checks on where and under which name, then copier."""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from pathlib import Path

from mcbench.errors import ConfigError
from mcbench.scaffold.names import PluginNames

# Not a Python name, so that setuptools ships the folder as plain package data.
TEMPLATE = Path(__file__).resolve().parent / "plugin-template"
STAGES = ("poison", "tamper", "evasion")
"""The attack bases a new attack can subclass, by their ``stage``."""
ENTRY_POINT_GROUP = "mcbench"
"""The group mcbench.registry loads (not imported from there: that would import torch)."""


def write_package(
    kind: str,
    names: PluginNames,
    out: Path,
    *,
    stage: str | None = None,
    template: str | os.PathLike = TEMPLATE,
) -> None:
    """Render TEMPLATE (any copier source: a folder, a git checkout or URL) into OUT, a
    missing or empty folder, for a plugin of KIND (an attack of STAGE, poison by default)."""
    if stage is not None and kind != "attack":
        raise ConfigError(f"a stage is chosen for attacks only, not for a {kind}")
    if stage is not None and stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    _check_free(out, names.plugin)
    answers = {
        "kind": kind,
        "plugin_name": names.plugin,
        "class_name": names.cls,
        "module_name": names.module,
        "distribution": names.distribution,
    }
    if kind == "attack":
        answers["stage"] = stage or STAGES[0]
    # A local template by its absolute path: the answers file records it for `copier update`.
    source = Path(template).resolve() if Path(template).exists() else template
    _copy(str(source), out, answers)


def _check_free(out: Path, plugin: str) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError("is a file; expected a new folder for the package", file=str(out))
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError("is not empty; give a new or empty folder", file=str(out))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == plugin:
            owner = ep.dist.metadata["name"] if ep.dist else "an installed package"
            raise ConfigError(
                f"{owner} already has a plugin entry point named {plugin!r}; choose another name"
            )


def _copy(template: str, out: Path, answers: dict) -> None:
    try:
        import copier
        from copier.errors import CopierError
    except ModuleNotFoundError:
        raise ConfigError(
            '`mcbench new` renders its template with copier: pip install "mcbench[scaffold]"'
        ) from None
    try:
        copier.run_copy(template, out, data=answers, defaults=True, quiet=True)
    except (CopierError, ValueError) as e:
        raise ConfigError(f"copier could not render {template}: {e}") from None
