"""The hooks a plugin may implement: one per kind of plugin, plus CLI commands.

Each ``mcbench_register_<kind>`` hook receives a ``register`` callable; the plugin calls it
once per plugin class it provides, e.g.::

    @mcbench.hookimpl
    def mcbench_register_attacks(register):
        register(Checkerboard)

Hooks are called through pluggy, one implementation at a time, so an implementation may
leave out arguments it does not use and may be a wrapper or marked tryfirst/trylast. An
installed plugin whose hook raises is skipped with a warning.
"""

from collections.abc import Callable

import pluggy

from mcbench.vocabulary import KINDS

hookspec = pluggy.HookspecMarker("mcbench")

Register = Callable[[type], None]


@hookspec
def mcbench_register_datasets(register: Register) -> None:
    """Register dataset plugin classes (subclasses of mcbench.kinds.DatasetPlugin)."""


@hookspec
def mcbench_register_architectures(register: Register) -> None:
    """Register architecture plugin classes (subclasses of mcbench.kinds.ArchitecturePlugin)."""


@hookspec
def mcbench_register_attacks(register: Register) -> None:
    """Register attack plugin classes (subclasses of mcbench.kinds.PoisonAttack, ...)."""


@hookspec
def mcbench_register_connections(register: Register) -> None:
    """Register connection plugin classes (subclasses of mcbench.kinds.ConnectionPlugin)."""


@hookspec
def mcbench_register_repairs(register: Register) -> None:
    """Register repair plugin classes (subclasses of mcbench.kinds.RepairPlugin)."""


@hookspec
def mcbench_register_metrics(register: Register) -> None:
    """Register metric plugin classes (subclasses of mcbench.kinds.MetricPlugin)."""


@hookspec
def mcbench_register_commands(cli) -> None:
    """Add click commands to the ``mcbench`` command group (``cli.add_command(...)``)."""


KIND_HOOKS = {kind.name: kind.hook for kind in KINDS}
