"""Shared pieces of the single-model repair baselines (fine-tuning, training from scratch,
noisy endpoints, fine-pruning): each yields one model, evaluated as the path's only point
``t = None``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from torch import nn

from mcbench.kinds import ModelPath, RepairContext, RepairPlugin
from mcbench.toolkit.training import Schedule, SGDFields, fit, seeded

ENDPOINTS = ("A", "B")


class SingleModelPath(ModelPath):
    """A path of one model at the point ``None``."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.points = (None,)

    def model_at(self, point: float | None) -> nn.Module:
        if point is not None:
            raise ValueError(f"a single-model repair has only the point None, asked for {point}")
        return self.model


def tensors_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state_dict as detached CPU copies."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def fit_on_bonafide(model: nn.Module, ctx: RepairContext, sgd: SGDFields) -> None:
    """Train MODEL in place on the bonafide data with a repair's optimiser settings."""
    fit(model, ctx.bonafide, sgd, ctx.fit_options(), augment=ctx.augment)


def endpoint_index(endpoint: str) -> int:
    if endpoint not in ENDPOINTS:
        raise ValueError(f"endpoint must be 'A' or 'B', got {endpoint!r}")
    return ENDPOINTS.index(endpoint)


def copy_of_endpoint(ctx: RepairContext, endpoint: str) -> nn.Module:
    """A fresh network holding a copy of an endpoint's weights (the endpoint is untouched)."""
    with seeded(ctx.seed):  # whatever the build draws does not depend on the global RNG
        model = ctx.build()
    model.load_state_dict(ctx.endpoints[endpoint_index(endpoint)].state_dict())
    return model


class SingleModelRepair(RepairPlugin):
    """A repair whose ``fit`` returns the repaired model's state_dict, plus the
    bookkeeping tensors named in ``extra_keys`` (stripped before loading)."""

    uses_connection: ClassVar[bool] = False
    extra_keys: ClassVar[tuple[str, ...]] = ()

    def path(
        self, ctx: RepairContext, state: dict[str, torch.Tensor], grid: Sequence[float]
    ) -> ModelPath:
        model = ctx.build()
        model.load_state_dict({k: v for k, v in state.items() if k not in self.extra_keys})
        model.eval()
        return SingleModelPath(model)


@dataclass(frozen=True)
class FinetuneFields(SGDFields):
    """The fine-tuning settings shared by ``finetune`` and ``fineprune``."""

    epochs: int = field(default=20, metadata={"help": "passes over the bonafide data"})
    lr: float = field(default=0.01, metadata={"help": "learning rate"})
    schedule: Schedule = field(
        default="constant", metadata={"help": "learning-rate schedule over the epochs"}
    )
    endpoint: Literal["A", "B"] = field(
        default="A", metadata={"help": "which tampered endpoint to start from"}
    )

    def __post_init__(self):
        super().__post_init__()
        endpoint_index(self.endpoint)
