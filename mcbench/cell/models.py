"""The networks a cell builds: its architecture behind the dataset's normalisation, fresh
or from a stored state."""

from __future__ import annotations

from collections.abc import Callable

import torch

from mcbench.bench.cells import Cell
from mcbench.kinds.data import Dataset
from mcbench.toolkit.nets import Normalize, NormalizedNetwork

ProgressFactory = Callable[[str, int], Callable[[int, float], None]]
"""(description, total) -> the callback a training calls after each epoch with its loss."""
State = dict[str, torch.Tensor]


def quiet(description: str, total: int) -> Callable[[int, float], None]:
    """A progress factory that reports nothing."""
    return lambda epoch, loss: None


def build_model(cell: Cell, data: Dataset, device: torch.device) -> NormalizedNetwork:
    """A fresh model of the cell's architecture, initialised from the global RNG."""
    net = cell.architecture.instance.build(data.num_classes, data.channels, data.image_size)
    return NormalizedNetwork(Normalize(data.mean, data.std), net).to(device)


def model_from(cell: Cell, data: Dataset, device: torch.device, state: State) -> NormalizedNetwork:
    model = build_model(cell, data, device)
    model.load_state_dict(state)
    return model
