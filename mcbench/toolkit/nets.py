"""The network inside a model: input normalisation in front of it, and its parameter
layers by name."""

from __future__ import annotations

import torch
from torch import nn


def parameter_layers(network: nn.Module) -> dict[str, nn.Module]:
    """The modules that own parameters, by their name in ``network`` (in module order)."""
    return {
        name: m
        for name, m in network.named_modules()
        if name and any(True for _ in m.parameters(recurse=False))
    }


def find_layer(network: nn.Module, name: str | None) -> tuple[str, nn.Module]:
    """The layer called ``name`` (None: the last layer that has a weight), or a ValueError
    that lists the layer names there are."""
    layers = parameter_layers(network)
    if name is None:
        weighted = [
            n for n, m in layers.items() if isinstance(getattr(m, "weight", None), torch.Tensor)
        ]
        if not weighted:
            raise ValueError("the network has no layer with a weight")
        name = weighted[-1]
    if name not in layers:
        raise ValueError(f"no layer named {name!r}; the network's layers are: {', '.join(layers)}")
    return name, layers[name]


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std
