"""AutoAttack (Croce & Hein 2020), the robust accuracy RobustBench reports, through
torchattacks (the official package is not on PyPI).

The standard version runs APGD-CE, APGD-T, FAB-T and Square one after another, each on the
points the previous ones did not fool, and keeps per point the first adversarial found.
torchattacks runs APGD and FAB for 10 iterations and targets every other class; the
official versions run 100 iterations (``steps``) and target the 9 most likely other
classes, and so does this plugin by default (Square's 5000 queries are ``queries``). The
number of classes is read off the model's output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from torch import nn

import mcbench
from mcbench.kinds import EvasionAttack, Goal
from mcbench_plugins.attacks.torchattacks_attack import (
    TORCHATTACKS_NORMS,
    import_torchattacks,
    run_torchattacks,
    seed_from,
)

NORMS = ("linf", "l2")
MIN_CLASSES = {"standard": 4, "plus": 4, "rand": 3}
"""The DLR losses compare the 3rd (targeted: 3rd and 4th) largest logits."""
TARGET_CLASSES = 9
"""The official versions aim APGD-T and FAB-T at the 9 most likely other classes."""


@dataclass(frozen=True)
class AutoAttack(EvasionAttack):
    """AutoAttack (Croce & Hein): APGD-CE, APGD-T, FAB-T and Square, worst case per point."""

    name: ClassVar[str] = "autoattack"
    norm: Literal["linf", "l2"] = field(
        default="linf", metadata={"help": "threat model: linf or l2"}
    )
    eps: float = field(
        default=8 / 255,
        metadata={"help": "radius of the ball around each image, in 0..1 pixel units"},
    )
    version: Literal["standard", "plus", "rand"] = field(
        default="standard",
        metadata={
            "help": "standard (APGD-CE, APGD-T, FAB-T, Square), plus (those with restarts, "
            "APGD-DLR and untargeted FAB) or rand (APGD-CE and APGD-DLR with 20-sample "
            "expectation over transformation, for randomised defences)"
        },
    )
    steps: int = field(
        default=100,
        metadata={"help": "iterations of each APGD and FAB run (100 in the official versions)"},
    )
    queries: int = field(
        default=5000,
        metadata={"help": "model evaluations of each Square run (5000 in the official versions)"},
    )
    seed: int | None = field(
        default=None,
        metadata={
            "help": "seed of the random starts and of Square's search (null: drawn from the "
            "metric's seed)"
        },
    )

    def __post_init__(self):
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if not (math.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"eps must be a positive number, got {self.eps}")
        if self.version not in MIN_CLASSES:
            raise ValueError(
                f"version must be one of {', '.join(MIN_CLASSES)}, got {self.version!r}"
            )
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.queries < 1:
            raise ValueError(f"queries must be at least 1, got {self.queries}")
        if self.seed is not None and self.seed < 0:
            raise ValueError(f"seed must be >= 0 or null, got {self.seed}")
        import_torchattacks()  # a missing dependency is reported when the benchmark is read

    def check_dataset(self, num_classes: int, channels: int, image_size: int) -> None:
        if num_classes < MIN_CLASSES[self.version]:
            raise ValueError(
                f"AutoAttack {self.version} needs at least {MIN_CLASSES[self.version]} "
                f"classes, the data has {num_classes}"
            )

    def perturb(
        self,
        model: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        goal: Goal = "misclassify",
        targets: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Per image, the first adversarial point the attacks find in the ball, else the
        image itself; images already misclassified come back unchanged.

        AutoAttack looks for a misclassified point, not for the highest loss, so
        ``goal="loss"`` returns the same points as ``goal="misclassify"``. It is
        untargeted: ``targets`` are not used."""
        goal = "misclassify" if goal == "loss" else goal
        seed = self.seed if self.seed is not None else seed_from(generator)
        return run_torchattacks(
            lambda net, n_classes: self._build(net, n_classes, seed),
            model,
            images,
            labels,
            goal=goal,
            seed=seed,
            norm=self.norm,
            eps=self.eps,
        )

    def _build(self, model: nn.Module, n_classes: int, seed: int):
        self.check_dataset(n_classes, 0, 0)
        torchattacks = import_torchattacks()
        attack = torchattacks.AutoAttack(
            model,
            norm=TORCHATTACKS_NORMS[self.norm],
            eps=self.eps,
            version=self.version,
            n_classes=n_classes,
            seed=seed,
        )
        for part in attack._autoattack.attacks:  # the official budgets, or the ones asked for
            if hasattr(part, "steps"):
                part.steps = self.steps
            if hasattr(part, "n_queries"):
                part.n_queries = self.queries
            if hasattr(part, "n_target_classes"):
                part.n_target_classes = min(TARGET_CLASSES, n_classes - 1)
        return attack


@mcbench.hookimpl
def mcbench_register_attacks(register):
    register(AutoAttack)
