"""Attack success rate: how often the trigger makes the model predict the attacker's label."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import mcbench
from mcbench.kinds import MetricContext, MetricPlugin


@dataclass(frozen=True)
class AttackSuccessRate(MetricPlugin):
    """Fraction of triggered evaluation images classified as the attacker's label."""

    name: ClassVar[str] = "attack_success_rate"
    needs: ClassVar[tuple[str, ...]] = ("triggered",)
    percent: ClassVar[bool] = True
    higher_is_better: ClassVar[bool | None] = False

    def compute(self, ctx: MetricContext) -> float:
        # the triggered set carries the attacker's labels and excludes images already
        # of that class, so hitting the label is exactly a successful attack
        logits, attacker_labels = ctx.logits("triggered")
        if len(attacker_labels) == 0:
            return float("nan")
        hits = logits.argmax(dim=1) == attacker_labels.to(logits.device)
        return hits.double().mean().item()


@mcbench.hookimpl
def mcbench_register_metrics(register):
    register(AttackSuccessRate)
