"""Training-from-scratch baseline: a freshly initialised network trained on the bonafide
data alone; the tampered endpoints are never read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

import mcbench
from mcbench.kinds import RepairContext
from mcbench.toolkit.training import SGDFields, seeded
from mcbench_plugins.repairs._single_model import SingleModelRepair, fit_on_bonafide, tensors_of


@dataclass(frozen=True)
class ScratchRepair(SGDFields, SingleModelRepair):
    """Train a fresh network on the bonafide data only, ignoring the endpoints (t = None)."""

    name: ClassVar[str] = "scratch"
    compiles: ClassVar[bool] = True
    epochs: int = field(default=100, metadata={"help": "passes over the bonafide data"})

    def fit(self, ctx: RepairContext) -> dict[str, torch.Tensor]:
        with seeded(ctx.seed):  # the random initialisation depends on the seed only
            model = ctx.build()
        fit_on_bonafide(model, ctx, self)
        return tensors_of(model)


@mcbench.hookimpl
def mcbench_register_repairs(register):
    register(ScratchRepair)
