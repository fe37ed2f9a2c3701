"""Adversarial loss: cross-entropy on the evaluation images after an evasion attack."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import mcbench
from mcbench.adversarial import adversarial_logits, cross_entropy, first
from mcbench.kinds import EvasionAttack, MetricContext, MetricPlugin
from mcbench_plugins.attacks.pgd import PGD


@dataclass(frozen=True)
class AdversarialLoss(MetricPlugin):
    """Mean cross-entropy at each point's highest-loss attack iterate (robustness loss)."""

    name: ClassVar[str] = "adversarial_loss"
    higher_is_better: ClassVar[bool | None] = False
    attack: EvasionAttack = field(default_factory=PGD, metadata={
        "help": "the evasion attack, e.g. {name: pgd, eps: 0.0314, steps: 10}"})
    samples: int = field(default=1000, metadata={
        "help": "the first this many evaluation images are attacked (0: all)"})
    seed: int = field(default=0, metadata={"help": "seed of the attack's random starts"})
    batch_size: int = field(default=250, metadata={"help": "images attacked at once"})

    def __post_init__(self):
        if self.samples < 0:
            raise ValueError(f"samples must be >= 0, got {self.samples}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    def compute(self, ctx: MetricContext) -> float:
        logits, labels = adversarial_logits(ctx.model, first(ctx.clean, self.samples),
                                            self.attack, "loss", ctx.device,
                                            self.batch_size, self.seed)
        return cross_entropy(logits, labels)


@mcbench.hookimpl
def mcbench_register_metrics(register):
    register(AdversarialLoss)
