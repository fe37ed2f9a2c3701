"""Adversarial loss: cross-entropy on the evaluation images after an evasion attack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import mcbench
from mcbench.kinds import MetricContext
from mcbench.toolkit.adversarial import cross_entropy
from mcbench_plugins.metrics._attacked import AttackedMetric


@dataclass(frozen=True)
class AdversarialLoss(AttackedMetric):
    """Mean cross-entropy at each point's highest-loss attack iterate (robustness loss)."""

    name: ClassVar[str] = "adversarial_loss"
    higher_is_better: ClassVar[bool | None] = False
    correlate_with: ClassVar[tuple[str, ...]] = ("input_hessian_eig",)

    def compute(self, ctx: MetricContext) -> float:
        return cross_entropy(*self.attacked(ctx, "loss"))


@mcbench.hookimpl
def mcbench_register_metrics(register):
    register(AdversarialLoss)
