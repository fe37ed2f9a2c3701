"""The words a benchmark is made of, defined once: the kinds of plugin (each with its hook,
its YAML axis and its record field), the axes of a cell, and the endpoint roles. The hooks,
the benchmark-file loader, the records, the leaderboard and the CLI all read them from here.
Imports nothing, so the results layer can use it without torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str  # "attack": the record field, the error messages, `mcbench plugins attack`
    axis: str  # "attacks": the list in a track of benchmarks.yaml

    @property
    def hook(self) -> str:
        return f"mcbench_register_{self.axis}"


KINDS: tuple[Kind, ...] = tuple(
    Kind(name, name + "s")
    for name in ("dataset", "architecture", "attack", "connection", "repair", "metric")
)
KIND_NAMES: tuple[str, ...] = tuple(k.name for k in KINDS)
KIND_BY_AXIS: dict[str, str] = {k.axis: k.name for k in KINDS}

# The plugin axes of a cell, in the order tables and labels show them; with the budget and
# the seed they make a cell. Metrics are not an axis: every cell of a track scores them all.
PLUGIN_AXES: tuple[str, ...] = ("dataset", "architecture", "attack", "repair", "connection")
# The axes that make the attacked endpoints (what a repair is handed), before any repair.
ENDPOINT_AXES: tuple[str, ...] = PLUGIN_AXES[:3]
CELL_AXES: tuple[str, ...] = (*PLUGIN_AXES, "budget", "seed")

# The two endpoints of every path.
ROLES: tuple[str, ...] = ("A", "B")
# The endpoints of a repair that joins more (a surface's corners), trained alike.
CORNER_ROLES: tuple[str, ...] = ("A", "B", "C", "D")

STAGES: tuple[str, ...] = ("endpoint", "tamper", "endpoint-eval", "repair", "evaluate")
"""The kinds of stage a cell is made of, in the order they run."""
