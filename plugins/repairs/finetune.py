"""Fine-tuning baseline: keep training one tampered endpoint on the bonafide data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

import mcbench
from mcbench.kinds import RepairContext
from mcbench_plugins.repairs._single_model import (
    FinetuneFields,
    SingleModelRepair,
    copy_of_endpoint,
    fit_on_bonafide,
    tensors_of,
)


@dataclass(frozen=True)
class FinetuneRepair(FinetuneFields, SingleModelRepair):
    """Fine-tune one tampered endpoint on the bonafide data (single model, t = None)."""

    name: ClassVar[str] = "finetune"
    compiles: ClassVar[bool] = True

    def fit(self, ctx: RepairContext) -> dict[str, torch.Tensor]:
        model = copy_of_endpoint(ctx, self.endpoint)
        fit_on_bonafide(model, ctx, self)
        return tensors_of(model)


@mcbench.hookimpl
def mcbench_register_repairs(register):
    register(FinetuneRepair)
