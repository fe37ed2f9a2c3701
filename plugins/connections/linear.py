"""The straight segment between the two endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

import mcbench
from mcbench.kinds import ConnectionPlugin


@dataclass(frozen=True)
class Linear(ConnectionPlugin):
    """Linear interpolation w(t) = (1 - t) w_0 + t w_1, with nothing to train."""

    name: ClassVar[str] = "linear"

    @property
    def num_bends(self) -> int:
        return 2

    def coefficients(self, t: torch.Tensor | float) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float32)
        return torch.stack([1 - t, t])


@mcbench.hookimpl
def mcbench_register_connections(register):
    register(Linear)
