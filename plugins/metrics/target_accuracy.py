"""Target accuracy: how many of an injection's targets are classified correctly again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import mcbench
from mcbench.kinds import MetricContext, MetricPlugin


@dataclass(frozen=True)
class TargetAccuracy(MetricPlugin):
    """Fraction of the injection's target images classified as their true label."""

    name: ClassVar[str] = "target_accuracy"
    needs: ClassVar[tuple[str, ...]] = ("injection",)
    percent: ClassVar[bool] = True
    higher_is_better: ClassVar[bool | None] = True

    def compute(self, ctx: MetricContext) -> float:
        # a repaired target may leave the injected label without returning to its own
        logits, _ = ctx.logits("injection")
        true = ctx.injection.images.labels
        return (logits.argmax(dim=1) == true).double().mean().item()


@mcbench.hookimpl
def mcbench_register_metrics(register):
    register(TargetAccuracy)
