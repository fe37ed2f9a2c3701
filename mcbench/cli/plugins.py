"""`mcbench plugins`."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import click

from mcbench.cli.common import registry
from mcbench.vocabulary import KIND_NAMES

if TYPE_CHECKING:
    from mcbench.registry import Entry

SCHEMA = 1
"""Of ``--format json``: bumped when a field changes meaning or goes away."""


@click.command()
@click.argument("kind", required=False, type=click.Choice(KIND_NAMES))
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def plugins(kind: str | None, fmt: str) -> None:
    """List plugins: name, kind, provider, description and parameters."""
    entries = [_entry(e) for e in registry().all(kind)]
    if fmt == "json":
        click.echo(json.dumps({"schema": SCHEMA, "plugins": entries}, indent=1))
        return
    for entry in entries:
        click.echo(
            f"{entry['name']}  [{entry['kind']}]  {entry['distribution']} {entry['version']}"
        )
        click.echo(f"    {entry['description']}")
        for p in entry["parameters"]:
            default = f" = {p['default']!r}" if "default" in p else ""
            click.echo(
                f"    - {p['name']}: {p['type']}{default}" + (f"  {p['help']}" * bool(p["help"]))
            )


def _entry(entry: Entry) -> dict[str, Any]:
    """A registered plugin as plain values: what both formats print."""
    from mcbench.registry.params import describe, is_plugin_type, to_plain

    parameters = []
    for p in describe(entry.cls):
        shown: dict[str, Any] = {"name": p.name, "type": p.type_name, "help": p.help}
        value = p.default
        if value is not dataclasses.MISSING:
            if is_plugin_type(type(value)):
                value = {"name": value.name, **to_plain(value)}
            shown["default"] = list(value) if isinstance(value, tuple) else value
        parameters.append(shown)
    return {
        "name": entry.name,
        "kind": entry.kind,
        "distribution": entry.distribution,
        "version": entry.version,
        "description": entry.description,
        "parameters": parameters,
    }
