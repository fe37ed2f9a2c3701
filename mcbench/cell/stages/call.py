"""What a stage's compute function is handed: the cell, its data, where it computes, which
of the cell's stages it is, and the stored results of the stages it declared as inputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from mcbench.bench.cells import Cell
from mcbench.cell.models import ProgressFactory, quiet
from mcbench.cell.stage_id import StageId
from mcbench.kinds.data import Dataset
from mcbench.toolkit.checkpoint import Checkpoint


@dataclass(frozen=True)
class Artifact:
    """A stage's stored result: its tensors (None for a stage without any), the JSON stored
    with them (``meta``), and whether it came from the store."""

    tensors: dict[str, torch.Tensor] | None
    meta: Mapping[str, Any]
    cached: bool


Inputs = Mapping[str, Artifact | tuple[Artifact, ...]]
"""A stage's inputs by the names its definition declares them under."""


@dataclass(frozen=True)
class StageCall:
    cell: Cell
    data: Dataset
    device: torch.device
    id: StageId
    progress: ProgressFactory = quiet
    checkpoint: Checkpoint | None = None
    """Where a training may keep per-epoch state (tensor stages only)."""

    @property
    def role(self) -> str:
        return self.id.endpoint


def one(inputs: Inputs, name: str) -> Artifact:
    value = inputs[name]
    assert isinstance(value, Artifact), f"input {name!r} is a tuple of artifacts"
    return value


def many(inputs: Inputs, name: str) -> tuple[Artifact, ...]:
    value = inputs[name]
    assert isinstance(value, tuple), f"input {name!r} is one artifact"
    return value
