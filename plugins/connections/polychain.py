"""Polygonal chains (Garipov et al. 2018): straight segments joining consecutive bends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

import mcbench
from mcbench.kinds import ConnectionPlugin


@dataclass(frozen=True)
class Polychain(ConnectionPlugin):
    """Polygonal chain: piecewise-linear path through evenly spaced trained bends."""

    name: ClassVar[str] = "polychain"
    bends: int = field(
        default=3,
        metadata={
            "help": "bends including both endpoints (3 = two segments through one trained bend)"
        },
    )

    def __post_init__(self):
        if self.bends < 3:
            raise ValueError(
                f"bends must be at least 3 (2 is the linear connection), got {self.bends}"
            )

    @property
    def num_bends(self) -> int:
        return self.bends

    def coefficients(self, t: torch.Tensor | float) -> torch.Tensor:
        """Hat functions max(0, 1 - |t (K-1) - k|): bend k sits at t = k / (K-1)."""
        t = torch.as_tensor(t, dtype=torch.float32)
        k = torch.arange(self.bends, dtype=torch.float32, device=t.device)
        return torch.clamp(1 - (t * (self.bends - 1) - k).abs(), min=0)


@mcbench.hookimpl
def mcbench_register_connections(register):
    register(Polychain)
