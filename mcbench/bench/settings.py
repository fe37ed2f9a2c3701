"""The settings sections of a benchmark file: train, split, evaluate, adversarial, compute."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal, cast

from mcbench.kinds import EvasionAttack
from mcbench.toolkit.precision import resolve_precision
from mcbench.toolkit.training import SGDFields
from mcbench.vocabulary import ROLES


@dataclass(frozen=True)
class TrainSettings(SGDFields):
    """How the endpoints are trained."""

    name: ClassVar[str] = "train"
    augment: bool = field(default=True, metadata={"help": "random crop (pad 4) and flip"})


@dataclass(frozen=True)
class SplitSettings:
    """How the test set is divided between the defender and the evaluation."""

    name: ClassVar[str] = "split"
    defender_pool: int = field(
        default=5000,
        metadata={
            "help": "test images given to the defender; bonafide budgets are drawn from these"
        },
    )
    eval_size: int = field(
        default=0,
        metadata={
            "help": "evaluation images taken from the rest of the test set (0: all the rest)"
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of the split (fixed across cells)"})

    def __post_init__(self) -> None:
        if self.defender_pool < 1:
            raise ValueError(f"defender_pool must be >= 1, got {self.defender_pool}")
        if self.eval_size < 0:
            raise ValueError(f"eval_size must be >= 0, got {self.eval_size}")


@dataclass(frozen=True)
class EvalSettings:
    """Where along the path models are scored, and which t the leaderboard reports."""

    RULE_FIELDS: ClassVar[tuple[str, ...]] = ("t_rule", "holdout", "tolerance")

    name: ClassVar[str] = "evaluate"
    grid: int = field(default=11, metadata={"help": "evenly spaced points t in [0, 1]"})
    report_t: float = field(default=0.5, metadata={"help": "t reported in the leaderboard"})
    batch_size: int = field(default=500, metadata={"help": "images per evaluation batch"})
    recalibrate_bn: bool = field(
        default=True,
        metadata={
            "help": "recompute BatchNorm statistics on the bonafide data at every evaluated model"
        },
    )
    recalibrate_augmented: int = field(
        default=0,
        metadata={
            "help": "0: recompute BatchNorm statistics in one pass over the bonafide images as "
            "they are; k > 0: in k passes over them randomly cropped and flipped, as in "
            "training",
            "omit_at_default": True,
        },
    )
    recalibrate_anchored: bool = field(
        default=False,
        metadata={
            "help": "correct the recomputed BatchNorm statistics at every point of a path or "
            "surface by the error recomputing makes at the endpoints, weighted by each "
            "endpoint's share of the point: the endpoints keep their statistics as trained",
            "omit_at_default": True,
        },
    )
    t_rule: Literal["fixed", "bonafide"] = field(
        default="fixed",
        metadata={
            "help": "how the reported t is chosen: fixed (report_t), or bonafide (from held-out "
            "bonafide data alone: the point farthest from the endpoints whose held-out accuracy "
            "is within tolerance of theirs)"
        },
    )
    holdout: float = field(
        default=0.2,
        metadata={
            "help": "bonafide rule: the fraction of the budget held out from the path repair's "
            "fitting and BatchNorm recalibration, used only to score each evaluated t; in (0, 1)"
        },
    )
    tolerance: float = field(
        default=0.02,
        metadata={
            "help": "bonafide rule: a t qualifies when its held-out accuracy is at least the "
            "endpoints' minus this (a fraction: 0.02 is 2 points)"
        },
    )

    def __post_init__(self) -> None:
        if self.grid < 2:
            raise ValueError(f"grid must be >= 2, got {self.grid}")
        if not 0.0 <= self.report_t <= 1.0:
            raise ValueError(f"report_t must be in [0, 1], got {self.report_t}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0 <= self.recalibrate_augmented <= 100:
            raise ValueError(
                f"recalibrate_augmented must be 0 to 100 passes, got {self.recalibrate_augmented}"
            )
        if self.recalibrate_anchored and not self.recalibrate_bn:
            raise ValueError(
                "recalibrate_anchored corrects recomputed BatchNorm statistics: it needs "
                "recalibrate_bn: true"
            )
        if self.t_rule not in ("fixed", "bonafide"):
            raise ValueError(f"t_rule must be 'fixed' or 'bonafide', got {self.t_rule!r}")
        if not 0.0 < self.holdout < 1.0:
            raise ValueError(f"holdout must be in (0, 1), got {self.holdout}")
        if not (math.isfinite(self.tolerance) and self.tolerance >= 0.0):
            raise ValueError(f"tolerance must be a finite number >= 0, got {self.tolerance}")

    @property
    def points(self) -> tuple[float, ...]:
        return tuple(round(i / (self.grid - 1), 10) for i in range(self.grid))

    def reported_point(self) -> float:
        return min(self.points, key=lambda t: abs(t - self.report_t))

    def holdout_sizes(self, budget: int) -> tuple[int, int]:
        """How many of a budget's bonafide images the repair fits on, and how many are held
        out to choose t by."""
        held = round(self.holdout * budget)
        if not 1 <= held <= budget - 1:
            raise ValueError(
                f"evaluate.holdout {self.holdout:g} of a budget of {budget} images holds out "
                f"{held}: "
                f"the bonafide t rule needs at least 1 image held out and 1 left to fit on"
            )
        return budget - held, held


@dataclass(frozen=True)
class AdversarialTraining:
    """Which endpoints are trained adversarially (on the attack's highest-loss points
    instead of the clean images), and with which attack."""

    name: ClassVar[str] = "adversarial"
    endpoints: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "endpoints trained adversarially: [] (none), [B] (regular ~ robust), [A, B]"
        },
    )
    attack: EvasionAttack | None = field(
        default=None,
        metadata={"help": "the inner attack, e.g. {name: pgd, steps: 1, step_size: 0.0314}"},
    )

    def __post_init__(self) -> None:
        for role in self.endpoints:
            if role not in ROLES:
                raise ValueError(f"endpoints must name A and/or B, got {role!r}")
        if len(set(self.endpoints)) != len(self.endpoints):
            raise ValueError("an endpoint is listed twice")
        if self.endpoints and self.attack is None:
            raise ValueError("attack is required when endpoints are trained adversarially")


@dataclass(frozen=True)
class ComputeSettings:
    """How the stages compute: the numeric precision of forward passes, and compilation.
    ``auto`` is resolved for the run's device when the benchmark is loaded; cells hold
    fp32 or bf16."""

    name: ClassVar[str] = "compute"
    precision: Literal["auto", "fp32", "bf16"] = field(
        default="auto",
        metadata={
            "help": "forward passes in fp32, or in bf16 autocast (weights, BatchNorm "
            "statistics and losses stay fp32); auto: bf16 on CUDA, fp32 on the CPU"
        },
    )
    compile: bool = field(
        default=False,
        metadata={
            "help": "train networks through torch.compile: the endpoints, and the repairs "
            "that declare it (fine-tuning, fine-pruning, training from scratch; not the "
            "curve and surface fits)"
        },
    )

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")

    def resolved(self, device_type: str) -> ComputeSettings:
        """These settings with ``auto`` replaced by the precision it means on
        ``device_type`` ("cpu", "cuda")."""
        # resolve_precision returns one of the names it is given, or fp32 or bf16
        precision = cast(Literal["fp32", "bf16"], resolve_precision(self.precision, device_type))
        return replace(self, precision=precision)

    @property
    def is_default(self) -> bool:
        """fp32 without compilation: how every stage computed before these settings, so
        such stages keep their keys."""
        return self.precision == "fp32" and not self.compile
