"""Bezier curves (Garipov et al. 2018; Zhao et al. 2020 use the quadratic one)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch

import mcbench
from mcbench.kinds import ConnectionPlugin


@dataclass(frozen=True)
class Bezier(ConnectionPlugin):
    """Bezier curve through the endpoints, shaped by trained interior control points."""

    name: ClassVar[str] = "bezier"
    bends: int = field(
        default=3,
        metadata={"help": "control points including both endpoints (3 = quadratic curve)"},
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
        """Bernstein polynomials C(K-1, k) t^k (1-t)^(K-1-k)."""
        t = torch.as_tensor(t, dtype=torch.float32)
        degree = self.bends - 1
        k = torch.arange(self.bends, dtype=torch.float32, device=t.device)
        binomials = torch.tensor(
            [math.comb(degree, i) for i in range(self.bends)], dtype=torch.float32, device=t.device
        )
        return binomials * t.pow(k) * (1 - t).pow(degree - k)


@mcbench.hookimpl
def mcbench_register_connections(register):
    register(Bezier)
