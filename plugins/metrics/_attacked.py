"""What the metrics scored under an evasion attack share: the attack as a parameter, how
many evaluation images it runs on, and its seed."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mcbench.kinds import EvasionAttack, Goal, MetricContext, MetricPlugin
from mcbench.toolkit.adversarial import adversarial_logits, first
from mcbench_plugins.attacks.pgd import PGD


@dataclass(frozen=True)
class AttackedMetric(MetricPlugin):
    attack: EvasionAttack = field(
        default_factory=PGD,
        metadata={
            "help": "the evasion attack, e.g. {name: pgd, eps: 0.0314, steps: 10} or "
            "{name: cw, eps: 0.5}"
        },
    )
    samples: int = field(
        default=1000,
        metadata={"help": "the first this many evaluation images are attacked (0: all)"},
    )
    seed: int = field(default=0, metadata={"help": "seed of the attack's random starts"})
    batch_size: int = field(default=250, metadata={"help": "images attacked at once"})

    def __post_init__(self):
        if self.samples < 0:
            raise ValueError(f"samples must be >= 0, got {self.samples}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    def attacked(self, ctx: MetricContext, goal: Goal) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits on the attacked images, their true labels)."""
        return adversarial_logits(
            ctx.model,
            first(ctx.clean, self.samples),
            self.attack,
            goal,
            ctx.device,
            self.batch_size,
            self.seed,
        )
