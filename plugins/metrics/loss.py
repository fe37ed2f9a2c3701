"""Cross-entropy on the clean evaluation images: the loss along a connection path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch.nn.functional as F

import mcbench
from mcbench.kinds import MetricContext, MetricPlugin


@dataclass(frozen=True)
class Loss(MetricPlugin):
    """Mean cross-entropy of the model on the clean evaluation images."""

    name: ClassVar[str] = "loss"
    needs: ClassVar[tuple[str, ...]] = ("clean",)
    higher_is_better: ClassVar[bool | None] = False

    def compute(self, ctx: MetricContext) -> float:
        logits, labels = ctx.logits("clean")
        if len(labels) == 0:
            return float("nan")
        return F.cross_entropy(logits.double(), labels.to(logits.device)).item()


@mcbench.hookimpl
def mcbench_register_metrics(register):
    register(Loss)
