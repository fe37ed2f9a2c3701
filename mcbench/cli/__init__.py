"""The ``mcbench`` command: one module per command group. Heavy modules (torch, plugins)
are imported inside the commands that need them, so ``mcbench leaderboard`` stays light."""

import click

from mcbench.cli.common import Group
from mcbench.cli.leaderboard import leaderboard
from mcbench.cli.new import new
from mcbench.cli.plot import plot
from mcbench.cli.plugins import plugins
from mcbench.cli.run import run, validate
from mcbench.cli.status import status


@click.group(cls=Group)
@click.version_option(package_name="mcbench")
def cli() -> None:
    """mcbench: mode connectivity as a robustness benchmark."""


for command in (validate, run, status, leaderboard, plot, plugins, new):
    cli.add_command(command)


def main() -> None:
    cli()
