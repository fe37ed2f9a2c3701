"""The model mcbench builds: input normalisation in front of the architecture's network
(``NormalizedNetwork``), and the network's parameter layers by name."""

from __future__ import annotations

from typing import cast

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
    """(x - mean) / std per channel, with fixed buffers: nothing is learnt."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class NormalizedNetwork(nn.Module):
    """``network(normalize(x))``: what a model of a cell is. The submodules are registered
    under the names "0" and "1", so that the state_dict keys ("0.mean", "0.std",
    "1.<network's keys>") are those of ``nn.Sequential(normalize, network)``, the layout
    every stored artifact has."""

    def __init__(self, normalize: Normalize, network: nn.Module):
        super().__init__()
        self.add_module("0", normalize)
        self.add_module("1", network)

    @property
    def normalize(self) -> Normalize:
        return cast(Normalize, self._modules["0"])

    @property
    def network(self) -> nn.Module:
        """The architecture's network, which weight attacks change and measure."""
        return cast(nn.Module, self._modules["1"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(self.normalize(x))
