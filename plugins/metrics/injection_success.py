"""Injection success: how many of an injection's targets take the label it injected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import mcbench
from mcbench.kinds import MetricContext, MetricPlugin


@dataclass(frozen=True)
class InjectionSuccess(MetricPlugin):
    """Fraction of the injection's target images classified as their injected label."""

    name: ClassVar[str] = "injection_success"
    needs: ClassVar[tuple[str, ...]] = ("injection",)
    percent: ClassVar[bool] = True
    higher_is_better: ClassVar[bool | None] = False

    def compute(self, ctx: MetricContext) -> float:
        logits, injected = ctx.logits("injection")
        return (logits.argmax(dim=1) == injected).double().mean().item()


@mcbench.hookimpl
def mcbench_register_metrics(register):
    register(InjectionSuccess)
