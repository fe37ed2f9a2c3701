"""Training-from-scratch baseline: a freshly initialised network trained on the bonafide
data alone; the tampered endpoints are never read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

import mcbench
from mcbench.kinds import RepairContext
from mcbench.toolkit.training import Schedule, check_optimiser_values, seeded
from mcbench_plugins.repairs._single_model import SingleModelRepair, fit_on_bonafide, tensors_of


@dataclass(frozen=True)
class ScratchRepair(SingleModelRepair):
    """Train a fresh network on the bonafide data only, ignoring the endpoints (t = None)."""

    name: ClassVar[str] = "scratch"
    epochs: int = field(default=100, metadata={"help": "passes over the bonafide data"})
    batch_size: int = field(default=128, metadata={"help": "images per SGD step"})
    lr: float = field(default=0.05, metadata={"help": "initial learning rate"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum"})
    weight_decay: float = field(default=5e-4, metadata={"help": "L2 penalty (SGD weight decay)"})
    schedule: Schedule = field(
        default="garipov", metadata={"help": "learning-rate schedule over the epochs"}
    )

    def __post_init__(self):
        check_optimiser_values(self)

    def fit(self, ctx: RepairContext) -> dict[str, torch.Tensor]:
        with seeded(ctx.seed):  # the random initialisation depends on the seed only
            model = ctx.build()
        fit_on_bonafide(model, ctx, self)
        return tensors_of(model)


@mcbench.hookimpl
def mcbench_register_repairs(register):
    register(ScratchRepair)
