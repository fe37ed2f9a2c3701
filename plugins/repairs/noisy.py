"""Noisy-model baseline: Gaussian noise added to an endpoint's (or the endpoints'
average's) parameters, with no training."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch

import mcbench
from mcbench.kinds import RepairContext
from mcbench_plugins.repairs._single_model import SingleModelRepair

SOURCES = ("A", "B", "average")


def relative_std(tensor: torch.Tensor) -> float:
    """The population std (correction 0) of a tensor's entries; 0 for a single entry."""
    return float(tensor.double().std(correction=0)) if tensor.numel() > 1 else 0.0


@dataclass(frozen=True)
class NoisyRepair(SingleModelRepair):
    """Gaussian noise on an endpoint or on the endpoints' average, no training (t = None)."""

    name: ClassVar[str] = "noisy"
    source: Literal["A", "B", "average"] = field(
        default="average",
        metadata={"help": "the weights perturbed: endpoint A, endpoint B, or their average"},
    )
    scale: float = field(
        default=0.01,
        metadata={
            "help": "relative noise: each parameter tensor p gets N(0, (scale * std(p))^2) "
            "noise, std(p) the population std of p's entries in the source; >= 0"
        },
    )

    def __post_init__(self):
        if self.source not in SOURCES:
            raise ValueError(f"source must be 'A', 'B' or 'average', got {self.source!r}")
        if not self.scale >= 0:
            raise ValueError(f"scale must be >= 0, got {self.scale}")

    def source_state(self, ctx: RepairContext) -> tuple[dict[str, torch.Tensor], set[str]]:
        """(the unperturbed source state_dict on the CPU, the names of its parameters).
        For "average", floating-point buffers are averaged too; integer buffers (BatchNorm's
        num_batches_tracked) are copied from endpoint A."""
        a, b = ctx.endpoints
        params = {name for name, _ in a.named_parameters()}
        sa = {k: v.detach().cpu().clone() for k, v in a.state_dict().items()}
        if self.source == "A":
            return sa, params
        sb = {k: v.detach().cpu().clone() for k, v in b.state_dict().items()}
        if self.source == "B":
            return sb, params
        avg = {k: (sa[k] + sb[k]) / 2 if sa[k].is_floating_point() else sa[k] for k in sa}
        return avg, params

    def fit(self, ctx: RepairContext) -> dict[str, torch.Tensor]:
        state, params = self.source_state(ctx)
        generator = torch.Generator().manual_seed(ctx.seed)
        out = {}
        for key, value in state.items():  # state_dict order: the noise draws are fixed
            if key in params and value.is_floating_point():
                noise = torch.randn(value.shape, generator=generator, dtype=torch.float64)
                std = self.scale * relative_std(value)
                value = (value.double() + std * noise).to(value.dtype)
            out[key] = value
        return out


@mcbench.hookimpl
def mcbench_register_repairs(register):
    register(NoisyRepair)
