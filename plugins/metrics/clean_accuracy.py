"""Accuracy on the clean evaluation images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import mcbench
from mcbench.kinds import MetricContext, MetricPlugin


@dataclass(frozen=True)
class CleanAccuracy(MetricPlugin):
    """Fraction of clean evaluation images classified correctly."""

    name: ClassVar[str] = "clean_accuracy"
    needs: ClassVar[tuple[str, ...]] = ("clean",)
    percent: ClassVar[bool] = True
    higher_is_better: ClassVar[bool | None] = True

    def compute(self, ctx: MetricContext) -> float:
        logits, labels = ctx.logits("clean")
        if len(labels) == 0:
            return float("nan")
        return (logits.argmax(dim=1) == labels.to(logits.device)).double().mean().item()


@mcbench.hookimpl
def mcbench_register_metrics(register):
    register(CleanAccuracy)
