"""How a run trains, beside the optimiser settings: the device, seed, precision and
compilation of a fit, and where it keeps its per-epoch state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch


class Checkpoint(Protocol):
    """Where a fit keeps its per-epoch state, so that a killed run resumes at its last
    epoch (``mcbench.toolkit.checkpoint.Checkpoint`` keeps it in a file)."""

    def load(self) -> Any | None:
        """The state last saved, or None."""
        ...

    def save(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class FitOptions:
    """What ``mcbench.toolkit.training.fit`` is told besides the optimiser settings: the
    run's choices, the same for every training in it (a repair gets them from
    ``RepairContext.fit_options()``)."""

    device: torch.device
    seed: int
    precision: str = "fp32"
    """The forward passes' precision, fp32 or bf16 (``mcbench.toolkit.precision``)."""
    compile: bool = False
    """Whether the loss sees ``torch.compile(model)``."""
    checkpoint: Checkpoint | None = None
    on_epoch: Callable[[int, float], None] | None = None
    """Called after every epoch with (epoch, mean loss): drives progress bars and logs."""
