"""Robust accuracy: accuracy on the evaluation images after an evasion attack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import mcbench
from mcbench.kinds import MetricContext
from mcbench_plugins.metrics._attacked import AttackedMetric


@dataclass(frozen=True)
class RobustAccuracy(AttackedMetric):
    """Accuracy on evaluation images attacked one by one (worst case per point)."""

    name: ClassVar[str] = "robust_accuracy"
    percent: ClassVar[bool] = True
    higher_is_better: ClassVar[bool | None] = True

    def compute(self, ctx: MetricContext) -> float:
        logits, labels = self.attacked(ctx, "misclassify")
        return (logits.argmax(1) == labels).double().mean().item()


@mcbench.hookimpl
def mcbench_register_metrics(register):
    register(RobustAccuracy)
