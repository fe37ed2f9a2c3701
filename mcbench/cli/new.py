"""`mcbench new`."""

from __future__ import annotations

from pathlib import Path

import click

from mcbench.cli.common import Folder
from mcbench.scaffold import STAGES, TEMPLATE, plugin_names, write_package
from mcbench.vocabulary import KIND_NAMES


@click.command()
@click.argument("kind", type=click.Choice(KIND_NAMES))
@click.argument("name")
@click.option(
    "--stage",
    type=click.Choice(STAGES),
    default=None,
    help="for an attack, the base it subclasses: poison (training data, the default), "
    "tamper (trained weights) or evasion (test inputs)",
)
@click.option(
    "--out",
    type=Folder("a new or empty folder for the package"),
    default=None,
    help="the folder to write, missing or empty [default: ./NAME]",
)
@click.option(
    "--template",
    default=str(TEMPLATE),
    show_default="the one installed with mcbench",
    help="a copier template to render instead (a git-tracked copy, for `copier update`)",
)
def new(kind: str, name: str, stage: str | None, out: str | Path | None, template: str) -> None:
    """Write a new plugin package of KIND named NAME.

    It holds pyproject.toml with the plugin's entry point, the plugin module, tests that run
    mcbench.testing's checks on it, a README, and a small benchmark file that uses it."""
    names = plugin_names(name)
    out = Path(out if out is not None else name)
    write_package(kind, names, out, stage=stage, template=template)
    click.echo(f"wrote {names.distribution} ({kind} {names.plugin!r}) to {out}/")
    click.echo(f"    pip install -e {out}")
    click.echo(f"    pytest {out}/tests")
    click.echo(f"    mcbench run {out}/benchmark.yaml --results {out}/results")
