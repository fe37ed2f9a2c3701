"""The plugin API: what each kind of plugin implements (one module per kind) and the data
types it receives. With ``mcbench.toolkit`` (torch helpers a plugin may use) and
``mcbench.hookimpl`` this is everything a plugin imports from mcbench.

A plugin is a frozen dataclass that subclasses one of these bases. Its dataclass fields are
its parameters (type annotation + default; ``field(metadata={"help": ...})`` documents one),
``name`` is how benchmarks.yaml refers to it, and the first line of its docstring is the
one-line description ``mcbench plugins`` prints. ``__post_init__`` may raise ``ValueError``
for values out of range: mcbench reports it against the YAML key before anything runs.
"""

from mcbench.kinds.architectures import ArchitecturePlugin
from mcbench.kinds.attacks import (
    AttackPlugin,
    EvasionAttack,
    Goal,
    Injection,
    PoisonAttack,
    Poisoned,
    TamperAttack,
    TamperContext,
    TargetedTamper,
)
from mcbench.kinds.base import Plugin
from mcbench.kinds.connections import ConnectionPlugin
from mcbench.kinds.data import Dataset, ImageSet, as_batch, to_float
from mcbench.kinds.datasets import DatasetPlugin
from mcbench.kinds.metrics import MetricContext, MetricPlugin
from mcbench.kinds.repairs import ModelPath, RepairContext, RepairPlugin

# The base class of each kind, by kind name.
BASES: dict[str, type] = {
    "dataset": DatasetPlugin,
    "architecture": ArchitecturePlugin,
    "attack": AttackPlugin,
    "connection": ConnectionPlugin,
    "repair": RepairPlugin,
    "metric": MetricPlugin,
}

__all__ = [
    "ArchitecturePlugin",
    "AttackPlugin",
    "BASES",
    "ConnectionPlugin",
    "Dataset",
    "DatasetPlugin",
    "EvasionAttack",
    "Goal",
    "ImageSet",
    "Injection",
    "MetricContext",
    "MetricPlugin",
    "ModelPath",
    "Plugin",
    "PoisonAttack",
    "Poisoned",
    "RepairContext",
    "RepairPlugin",
    "TamperAttack",
    "TamperContext",
    "TargetedTamper",
    "as_batch",
    "to_float",
]
