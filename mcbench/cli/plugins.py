"""`mcbench plugins`."""

from __future__ import annotations

import dataclasses

import click

from mcbench.cli.common import registry
from mcbench.vocabulary import KIND_NAMES


@click.command()
@click.argument("kind", required=False, type=click.Choice(KIND_NAMES))
def plugins(kind):
    """List plugins: name, kind, provider, description and parameters."""
    from mcbench.registry.params import describe, is_plugin_type, to_plain

    for entry in registry().all(kind):
        click.echo(f"{entry.name}  [{entry.kind}]  {entry.distribution} {entry.version}")
        click.echo(f"    {entry.description}")
        for p in describe(entry.cls):
            value = p.default
            if is_plugin_type(type(value)):
                value = {"name": value.name, **to_plain(value)}
            default = "" if value is dataclasses.MISSING else f" = {value!r}"
            click.echo(
                f"    - {p.name}: {p.type_name}{default}" + (f"  {p.help}" if p.help else "")
            )
