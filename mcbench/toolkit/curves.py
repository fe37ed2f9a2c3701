"""The connection engine: a curve of weights between two trained copies of ANY module.

All parameters of the network are flattened into one vector per bend, so a point on the
curve costs one fused weighted sum; the network is then called functionally with those
weights (torch.func.functional_call). Nothing is specific to a layer type.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call

from mcbench.kinds import ConnectionPlugin


def flatten(state: dict[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    return torch.cat([state[n].detach().reshape(-1).float() for n in names])


class CurveModel(nn.Module):
    """w(t) = sum_k c_k(t) w_k with w_0, w_{K-1} fixed (buffers) and the interior bends
    trainable, initialised evenly on the segment between the endpoints."""

    start: torch.Tensor  # buffers: the fixed end bends, flat [P]
    end: torch.Tensor

    def __init__(
        self,
        template: nn.Module,
        start: dict[str, torch.Tensor],
        end: dict[str, torch.Tensor],
        connection: ConnectionPlugin,
    ):
        super().__init__()
        self.template = template
        for p in template.parameters():
            p.requires_grad_(False)
        self.connection = connection
        self.names = [n for n, _ in template.named_parameters()]
        self.shapes = [p.shape for _, p in template.named_parameters()]
        self.sizes = [p.numel() for _, p in template.named_parameters()]
        self.register_buffer("start", flatten(start, self.names))
        self.register_buffer("end", flatten(end, self.names))
        k = connection.num_bends
        fractions = torch.arange(1, k - 1, dtype=torch.float32) / (k - 1)
        interior = (1 - fractions)[:, None] * self.start + fractions[:, None] * self.end
        self.interior = nn.Parameter(interior)  # [K-2, P]; empty for a linear connection

    def weights(self, t) -> torch.Tensor:
        """The flat parameter vector at ``t``."""
        c = self.connection.coefficients(torch.as_tensor(t, dtype=torch.float32)).to(self.start)
        w = c[0] * self.start + c[-1] * self.end
        if self.interior.shape[0]:
            w = w + c[1:-1] @ self.interior
        return w

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            n: chunk.view(shape)
            for n, chunk, shape in zip(self.names, torch.split(flat, self.sizes), self.shapes)
        }

    def forward_with_weights(self, x: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weights(t)
        return functional_call(self.template, self.unflatten(w), (x,), strict=False), w

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        return self.forward_with_weights(x, t)[0]

    @torch.no_grad()
    def model_at(self, t) -> nn.Module:
        """A plain, independent copy of the network with the weights at ``t`` (its
        BatchNorm statistics still need recomputing)."""
        model = copy.deepcopy(self.template)
        for (_name, param), value in zip(
            model.named_parameters(), self.unflatten(self.weights(t)).values()
        ):
            param.copy_(value)
            param.requires_grad_(True)
        return model

    def bends(self) -> torch.Tensor:
        """All K bends as one [K, P] tensor."""
        return torch.cat([self.start[None], self.interior.detach(), self.end[None]])
