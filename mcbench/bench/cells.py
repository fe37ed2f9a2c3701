"""Frozen descriptions of what to run: settings sections, plugin choices, and cells.

A cell's stages are keyed by hashes of exactly what determines them, so cells sharing
endpoints (they differ only in repair, connection or budget) train them once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

from mcbench.bench.nested import Nested, nested_versions
from mcbench.bench.settings import (
    AdversarialTraining,
    ComputeSettings,
    EvalSettings,
    SplitSettings,
    TrainSettings,
)
from mcbench.hashing import content_hash
from mcbench.registry.params import to_plain
from mcbench.registry.registry import Entry
from mcbench.vocabulary import CORNER_ROLES, PLUGIN_AXES

if TYPE_CHECKING:
    from mcbench.kinds import AttackPlugin, RepairPlugin


@dataclass(frozen=True, eq=False)
class PluginSpec:
    """One named, parameterised plugin as the YAML chose it. ``label`` tells apart two
    entries of one plugin with different parameters (e.g. two robust accuracies);
    ``nested`` are the plugins its parameters hold (e.g. a metric's attack).

    Two specs are equal when they are of one kind and have one identity: the same
    plugin, parameters, versions and label."""

    kind: str
    entry: Entry
    instance: Any
    label: str | None = None
    nested: tuple[Nested, ...] = ()

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def key(self) -> str:
        """How results name it: the label, or the plugin's name."""
        return self.label or self.entry.name

    @property
    def params(self) -> dict[str, Any]:
        return to_plain(self.instance)

    def identity(self) -> dict[str, Any]:
        out = {"name": self.name, "params": self.params, "version": self.entry.cache_version}
        if self.label:
            out["label"] = self.label
        versions = nested_versions(self.nested)
        if versions:
            out["nested_versions"] = versions
        return out

    def _digest(self) -> tuple[str, str]:
        return self.kind, content_hash(self.identity())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PluginSpec):
            return NotImplemented
        return self._digest() == other._digest()

    def __hash__(self) -> int:
        return hash(self._digest())


def _provided_by(entry: Entry) -> str:
    return f"{entry.distribution} {entry.version}"


def _identity(spec: PluginSpec | None) -> dict[str, Any] | None:
    return spec.identity() if spec else None


def evaluate_settings(evaluate: EvalSettings) -> dict[str, Any]:
    """The evaluate section as cells are keyed and recorded: only the settings its t rule
    uses, so that a fixed-rule cell keys exactly as before the rule had settings (and the
    published records keep their ids)."""
    unused = EvalSettings.RULE_FIELDS if evaluate.t_rule == "fixed" else ("report_t",)
    return {k: v for k, v in to_plain(evaluate).items() if k not in unused}


@dataclass(frozen=True)
class Cell:
    track: str
    dataset: PluginSpec
    architecture: PluginSpec
    attack: PluginSpec | None
    repair: PluginSpec
    connection: PluginSpec | None
    budget: int
    seed: int
    metrics: tuple[PluginSpec, ...]
    train: TrainSettings
    split: SplitSettings
    evaluate: EvalSettings
    adversarial: AdversarialTraining = AdversarialTraining()
    compute: ComputeSettings = ComputeSettings(precision="fp32")
    """Resolved: fp32 or bf16, never auto."""
    settings_plugins: tuple[Nested, ...] = field(default=(), compare=False)
    """The plugins the settings sections hold, e.g. at "adversarial.attack"."""

    @property
    def attack_stage(self) -> str | None:
        return cast("type[AttackPlugin]", self.attack.entry.cls).stage if self.attack else None

    @property
    def roles(self) -> tuple[str, ...]:
        """The endpoints the cell's repair joins: A and B, or a surface's 3 or 4 corners."""
        return CORNER_ROLES[: self.repair.instance.endpoint_count]

    @property
    def yields_points(self) -> bool:
        """Whether the repair yields many models (a path, a surface) rather than one."""
        return self._repair_class.uses_connection or len(self.roles) > 2

    @property
    def _repair_class(self) -> type[RepairPlugin]:
        return cast("type[RepairPlugin]", self.repair.entry.cls)

    @property
    def holdout(self) -> float | None:
        """The fraction of the bonafide budget held out from the repair to choose t by;
        None where the repair fits on the whole budget (the fixed rule, or a repair that
        yields one model)."""
        if self.evaluate.t_rule == "bonafide" and self.yields_points:
            return self.evaluate.holdout
        return None

    def endpoint_identity(self, role: str) -> dict[str, Any]:
        poison = self.attack if self.attack_stage == "poison" else None
        identity = {
            "stage": "endpoint",
            "dataset": _identity(self.dataset),
            "architecture": _identity(self.architecture),
            "attack": _identity(poison),
            "train": to_plain(self.train),
            "seed": self.seed,
            "role": role,
            **self._compute_identity(),
        }
        if role in self.adversarial.endpoints:
            attack = self.adversarial.attack
            assert attack is not None  # AdversarialTraining requires one with endpoints
            identity["adversarial"] = {"name": attack.name, "params": to_plain(attack)}
            versions = nested_versions(self.settings_plugins, within="adversarial")
            if versions:
                identity["adversarial"]["nested_versions"] = versions
        return identity

    def endpoint_key(self, role: str) -> str:
        return content_hash(self.endpoint_identity(role))

    def tamper_identity(self, role: str) -> dict[str, Any]:
        # the targets are drawn from the evaluation images, hence the split
        return {
            "stage": "tamper",
            "endpoint": self.endpoint_key(role),
            "attack": _identity(self.attack),
            "split": to_plain(self.split),
            "seed": self.seed,
        }

    def tamper_key(self, role: str) -> str:
        return content_hash(self.tamper_identity(role))

    def attacked_key(self, role: str) -> str:
        """The key of the model the repair starts from: tampered, or as trained."""
        return self.tamper_key(role) if self.attack_stage == "tamper" else self.endpoint_key(role)

    def endpoint_eval_key(self, role: str, untampered: bool = False) -> str:
        key = self.endpoint_key(role) if untampered else self.attacked_key(role)
        return content_hash(
            {
                "stage": "endpoint-eval",
                "endpoint": key,
                "split": to_plain(self.split),
                # an endpoint's scores do not depend on how t is chosen, nor on how the
                # points' statistics are anchored to the endpoints'
                "evaluate": self._eval_identity(
                    replace(self.evaluate, t_rule="fixed", recalibrate_anchored=False)
                ),
                **({"injection": _identity(self.attack)} if untampered else {}),
            }
        )

    def repair_identity(self) -> dict[str, Any]:
        identity = {
            "stage": "repair",
            "endpoints": [self.attacked_key(r) for r in self.roles],
            "repair": _identity(self.repair),
            "connection": _identity(self.connection),
            "budget": self.budget,
            "split": to_plain(self.split),
            "seed": self.seed,
            **self._compute_identity(self.repair_compute),
        }
        if self.holdout is not None:
            identity["holdout"] = self.holdout
        return identity

    def repair_key(self) -> str:
        return content_hash(self.repair_identity())

    def _eval_identity(self, evaluate: EvalSettings | None = None) -> dict[str, Any]:
        return {
            "evaluate": evaluate_settings(self.evaluate if evaluate is None else evaluate),
            "metrics": [m.identity() for m in self.metrics],
            **self._compute_identity(),
        }

    @property
    def repair_compute(self) -> ComputeSettings:
        """How the repair computes: the cell's compute settings, less compilation where the
        repair's class does not declare that it ``compiles`` (a curve's fit runs through
        its functional forward pass, which nothing compiles)."""
        if self._repair_class.compiles:
            return self.compute
        return replace(self.compute, compile=False)

    @property
    def compiled_stages(self) -> tuple[str, ...]:
        """The kinds of stage that train through torch.compile: none without
        ``compute.compile``; else the endpoints, and the repair where it compiles."""
        if not self.compute.compile:
            return ()
        return ("endpoint", "repair") if self.repair_compute.compile else ("endpoint",)

    def _compute_identity(self, compute: ComputeSettings | None = None) -> dict[str, Any]:
        """The compute settings (the cell's, or those of one stage) as a stage key holds
        them: absent for fp32 without compilation, so those stages keep the keys they had
        before the settings existed, and an fp32 and a bf16 result never share a key."""
        compute = self.compute if compute is None else compute
        if compute.precision == "auto":
            raise ValueError("a cell's compute.precision must be resolved (fp32 or bf16)")
        return {} if compute.is_default else {"compute": to_plain(compute)}

    @property
    def cell_id(self) -> str:
        return content_hash(
            {
                "stage": "evaluate",
                "track": self.track,
                "repair": self.repair_key(),
                **self._eval_identity(),
            }
        )

    def config(self) -> dict[str, Any]:
        """The resolved configuration, as recorded with the result."""
        return {
            "track": self.track,
            "dataset": _identity(self.dataset),
            "architecture": _identity(self.architecture),
            "attack": _identity(self.attack),
            "repair": _identity(self.repair),
            "connection": _identity(self.connection),
            "budget": self.budget,
            "seed": self.seed,
            "metrics": [m.identity() for m in self.metrics],
            "train": to_plain(self.train),
            "split": to_plain(self.split),
            "evaluate": evaluate_settings(self.evaluate),
            "adversarial": to_plain(self.adversarial),
            "compute": to_plain(self.compute),
        }

    def plugin_specs(self) -> list[PluginSpec]:
        """The plugins the cell names, in axis order, then its metrics."""
        specs = [getattr(self, axis) for axis in PLUGIN_AXES] + list(self.metrics)
        return [s for s in specs if s is not None]

    def plugin_provenance(self) -> dict[str, str]:
        """Which distribution and version provides each plugin, ``"dist ver"``, by where
        it sits: ``"kind:name"`` for the plugins the cell names, ``"kind:name.param:name"``
        for one a plugin's parameter holds (``"metric:robust_accuracy.attack:pgd"``) and
        ``"settings:section.param:name"`` for one a settings section holds
        (``"settings:adversarial.attack:pgd"``)."""
        out = {}
        for spec in self.plugin_specs():
            out[f"{spec.kind}:{spec.name}"] = _provided_by(spec.entry)
            for n in spec.nested:
                out[f"{spec.kind}:{spec.name}.{n.at}:{n.entry.name}"] = _provided_by(n.entry)
        for n in self.settings_plugins:
            out[f"settings:{n.at}:{n.entry.name}"] = _provided_by(n.entry)
        return out

    def label(self) -> str:
        parts = [
            self.track,
            self.dataset.name,
            self.architecture.name,
            self.attack.name if self.attack else "clean",
            self.repair.name,
        ]
        if self.connection:
            parts.append(self.connection.name)
        parts += [f"n={self.budget}", f"seed={self.seed}"]
        return " ".join(parts)
