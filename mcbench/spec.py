"""Frozen descriptions of what to run: settings sections, plugin choices, and cells.

A cell's stages are keyed by hashes of exactly what determines them, so cells sharing
endpoints (they differ only in repair, connection or budget) train them once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from mcbench.hashing import content_hash
from mcbench.kinds import EvasionAttack
from mcbench.params import to_plain
from mcbench.registry import Entry
from mcbench.training import TrainSettings

ROLES = ("A", "B")


@dataclass(frozen=True)
class SplitSettings:
    """How the test set is divided between the defender and the evaluation."""

    name: ClassVar[str] = "split"
    defender_pool: int = field(default=5000, metadata={
        "help": "test images given to the defender; bonafide budgets are drawn from these"})
    eval_size: int = field(default=0, metadata={
        "help": "evaluation images taken from the rest of the test set (0: all the rest)"})
    seed: int = field(default=0, metadata={"help": "seed of the split (fixed across cells)"})

    def __post_init__(self):
        if self.defender_pool < 1:
            raise ValueError(f"defender_pool must be >= 1, got {self.defender_pool}")
        if self.eval_size < 0:
            raise ValueError(f"eval_size must be >= 0, got {self.eval_size}")


@dataclass(frozen=True)
class EvalSettings:
    """Where along the path models are scored, and which t the leaderboard reports."""

    name: ClassVar[str] = "evaluate"
    grid: int = field(default=11, metadata={"help": "evenly spaced points t in [0, 1]"})
    report_t: float = field(default=0.5, metadata={"help": "t reported in the leaderboard"})
    batch_size: int = field(default=500, metadata={"help": "images per evaluation batch"})
    recalibrate_bn: bool = field(default=True, metadata={
        "help": "recompute BatchNorm statistics on the bonafide data at every evaluated model"})

    def __post_init__(self):
        if self.grid < 2:
            raise ValueError(f"grid must be >= 2, got {self.grid}")
        if not 0.0 <= self.report_t <= 1.0:
            raise ValueError(f"report_t must be in [0, 1], got {self.report_t}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    @property
    def points(self) -> tuple[float, ...]:
        return tuple(round(i / (self.grid - 1), 10) for i in range(self.grid))

    def reported_point(self) -> float:
        return min(self.points, key=lambda t: abs(t - self.report_t))


@dataclass(frozen=True)
class AdversarialTraining:
    """Which endpoints are trained adversarially (on the attack's highest-loss points
    instead of the clean images), and with which attack."""

    name: ClassVar[str] = "adversarial"
    endpoints: tuple[str, ...] = field(default=(), metadata={
        "help": "endpoints trained adversarially: [] (none), [B] (regular ~ robust), [A, B]"})
    attack: EvasionAttack | None = field(default=None, metadata={
        "help": "the inner attack, e.g. {name: pgd, steps: 1, step_size: 0.0314}"})

    def __post_init__(self):
        for role in self.endpoints:
            if role not in ROLES:
                raise ValueError(f"endpoints must name A and/or B, got {role!r}")
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ValueError("an endpoint is listed twice")
        if self.endpoints and self.attack is None:
            raise ValueError("attack is required when endpoints are trained adversarially")


@dataclass(frozen=True)
class PluginSpec:
    """One named, parameterised plugin as the YAML chose it. ``label`` tells apart two
    entries of one plugin with different parameters (e.g. two robust accuracies)."""

    kind: str
    entry: Entry = field(compare=False)
    instance: Any = field(compare=False)
    label: str | None = None

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
        return out


def _identity(spec: PluginSpec | None):
    return spec.identity() if spec else None


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

    @property
    def attack_stage(self) -> str | None:
        return self.attack.entry.cls.stage if self.attack else None

    def endpoint_identity(self, role: str) -> dict[str, Any]:
        poison = self.attack if self.attack_stage == "poison" else None
        identity = {"stage": "endpoint", "dataset": _identity(self.dataset),
                    "architecture": _identity(self.architecture), "attack": _identity(poison),
                    "train": to_plain(self.train), "seed": self.seed, "role": role}
        if role in self.adversarial.endpoints:
            attack = self.adversarial.attack
            identity["adversarial"] = {"name": attack.name, "params": to_plain(attack)}
        return identity

    def endpoint_key(self, role: str) -> str:
        return content_hash(self.endpoint_identity(role))

    def tamper_identity(self, role: str) -> dict[str, Any]:
        # the targets are drawn from the evaluation images, hence the split
        return {"stage": "tamper", "endpoint": self.endpoint_key(role),
                "attack": _identity(self.attack), "split": to_plain(self.split),
                "seed": self.seed}

    def tamper_key(self, role: str) -> str:
        return content_hash(self.tamper_identity(role))

    def attacked_key(self, role: str) -> str:
        """The key of the model the repair starts from: tampered, or as trained."""
        return self.tamper_key(role) if self.attack_stage == "tamper" else self.endpoint_key(role)

    def endpoint_eval_key(self, role: str, untampered: bool = False) -> str:
        key = self.endpoint_key(role) if untampered else self.attacked_key(role)
        return content_hash({"stage": "endpoint-eval", "endpoint": key,
                             "split": to_plain(self.split), "evaluate": self._eval_identity(),
                             **({"injection": _identity(self.attack)} if untampered else {})})

    def repair_identity(self) -> dict[str, Any]:
        return {"stage": "repair", "endpoints": [self.attacked_key(r) for r in ROLES],
                "repair": _identity(self.repair), "connection": _identity(self.connection),
                "budget": self.budget, "split": to_plain(self.split), "seed": self.seed}

    def repair_key(self) -> str:
        return content_hash(self.repair_identity())

    def _eval_identity(self) -> dict[str, Any]:
        return {"evaluate": to_plain(self.evaluate),
                "metrics": [m.identity() for m in self.metrics]}

    @property
    def cell_id(self) -> str:
        return content_hash({"stage": "evaluate", "track": self.track,
                             "repair": self.repair_key(), **self._eval_identity()})

    def config(self) -> dict[str, Any]:
        """The resolved configuration, as recorded with the result."""
        return {"track": self.track, "dataset": _identity(self.dataset),
                "architecture": _identity(self.architecture), "attack": _identity(self.attack),
                "repair": _identity(self.repair), "connection": _identity(self.connection),
                "budget": self.budget, "seed": self.seed,
                "metrics": [m.identity() for m in self.metrics],
                "train": to_plain(self.train), "split": to_plain(self.split),
                "evaluate": to_plain(self.evaluate), "adversarial": to_plain(self.adversarial)}

    def label(self) -> str:
        parts = [self.track, self.dataset.name, self.architecture.name,
                 self.attack.name if self.attack else "clean", self.repair.name]
        if self.connection:
            parts.append(self.connection.name)
        parts += [f"n={self.budget}", f"seed={self.seed}"]
        return " ".join(parts)
