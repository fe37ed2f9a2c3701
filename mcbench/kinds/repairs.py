"""What a repair plugin implements and receives."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from mcbench.kinds.base import Plugin
from mcbench.kinds.connections import ConnectionPlugin
from mcbench.kinds.data import ImageSet
from mcbench.kinds.training import Checkpoint, FitOptions


@dataclass(frozen=True)
class RepairContext:
    """Everything a repair may use. Only ``bonafide`` data: the evaluation set never
    reaches a repair."""

    endpoints: tuple[nn.Module, ...]
    """The attacked models the repair joins: two for a path, ``endpoint_count`` of them."""
    build: Callable[[], nn.Module]
    """Builds a fresh network of the endpoints' architecture (its input normalisation
    included), initialised from the global torch RNG: build it inside
    ``mcbench.toolkit.training.seeded(seed)`` where the initial weights matter."""
    bonafide: ImageSet
    connection: ConnectionPlugin | None
    num_classes: int
    device: torch.device
    seed: int
    augment: bool
    checkpoint: Checkpoint | None = None
    """Where an iterative repair keeps its per-epoch state (``fit_options()`` passes it to
    ``mcbench.toolkit.training.fit``)."""
    on_epoch: Callable[[int, float], None] | None = None
    """Call after every epoch with (epoch, mean loss): drives progress bars and logs."""
    precision: str = "fp32"
    """The run's precision of forward passes, fp32 or bf16: ``fit_options()`` passes it to
    ``mcbench.toolkit.training.fit``; elsewhere run forward passes in
    ``mcbench.toolkit.precision.autocast(device, precision)``."""
    compile: bool = False
    """Whether to train through torch.compile: true only where the run asks for it and
    the repair's class declares ``compiles``."""

    def fit_options(self) -> FitOptions:
        """The options of ``mcbench.toolkit.training.fit`` for a training on
        ``bonafide``: this context's device, seed, precision, compilation, checkpoint and
        progress."""
        return FitOptions(
            device=self.device,
            seed=self.seed,
            precision=self.precision,
            compile=self.compile,
            checkpoint=self.checkpoint,
            on_epoch=self.on_epoch,
        )


Point = float | tuple[float, ...] | None
"""Where a model lies on what a repair yields: t on a path, (u, v) on a surface, None for
a repair that yields a single model."""


class ModelPath:
    """What a repair produces: the models to evaluate, keyed by their position (a float t
    on a path, a tuple on a surface, None for a repair that yields a single model)."""

    points: Sequence[Point]

    def model_at(self, point: Point) -> nn.Module:
        raise NotImplementedError

    def endpoint_weights(self, point: Point) -> tuple[float, ...] | None:
        """Each endpoint's share of ``point`` when the endpoints are joined in the simplest
        way (a straight line, a flat triangle or square), in ``ctx.endpoints`` order and
        summing to 1; None where the model has no place between the endpoints. Used only to
        anchor BatchNorm statistics to the endpoints' (``evaluate: recalibrate_anchored``)."""
        return None


class RepairPlugin(Plugin):
    kind = "repair"
    uses_connection: ClassVar[bool] = False
    compiles: ClassVar[bool] = False
    """Whether ``fit`` trains through torch.compile when the run asks for it (``--compile``),
    passing ``ctx.fit_options()`` to every network it trains. Only then is ``ctx.compile``
    true, and the repair's key and record name the compilation."""

    @property
    def endpoint_count(self) -> int:
        """How many attacked models the repair joins: ``ctx.endpoints`` holds that many,
        trained alike from seeds A, B, C, D."""
        return 2

    def corner_positions(self) -> tuple[Point, ...]:
        """Where the endpoints lie among ``path``'s points, in ``ctx.endpoints`` order."""
        return (0.0, 1.0)

    def fit(self, ctx: RepairContext) -> dict[str, torch.Tensor]:
        """Do the (expensive) repair; return the tensors that define its result."""
        raise NotImplementedError

    def path(
        self, ctx: RepairContext, state: dict[str, torch.Tensor], grid: Sequence[float]
    ) -> ModelPath:
        """Rebuild the result from ``fit``'s tensors (which may come from the cache)."""
        raise NotImplementedError
