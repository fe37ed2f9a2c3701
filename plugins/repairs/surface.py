"""Surface repair: fit a Bezier surface through three or four tampered models on the
bonafide data, corners fixed, and use the models over it (the two-dimensional analogue of
the path repair)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal

import torch
from torch import nn

import mcbench
from mcbench.kinds import ModelPath, RepairContext, RepairPlugin
from mcbench.toolkit.surfaces import (
    SHAPES,
    Point,
    SurfaceModel,
    corner_positions,
    corner_weights,
    grid_points,
    num_corners,
    sample_point,
)
from mcbench.toolkit.training import SGDFields, fit


@dataclass(frozen=True)
class SurfaceRepair(SGDFields, RepairPlugin):
    """Mode-connectivity surface repair: train a Bezier surface through 3 or 4 models on
    bonafide data only."""

    name: ClassVar[str] = "surface"
    uses_connection: ClassVar[bool] = False
    shape: Literal["triangle", "square"] = field(
        default="triangle",
        metadata={"help": "triangle: through 3 models; square: through 4 models"},
    )
    degree: int = field(
        default=2, metadata={"help": "Bezier degree of the surface (1 = nothing to train)"}
    )
    epochs: int = field(default=100, metadata={"help": "passes over the bonafide data"})
    lr: float = field(default=0.01, metadata={"help": "initial learning rate"})
    weight_decay: float = field(
        default=1e-4,
        metadata={
            "help": "applied as 0.5 * wd * ||w(u, v)||^2 on the point on the surface, "
            "not the control points"
        },
    )
    grid: int = field(
        default=5, metadata={"help": "steps per side of the grid of (u, v) evaluated"}
    )

    def __post_init__(self):
        super().__post_init__()
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got {self.shape!r}")
        if self.degree < 1:
            raise ValueError(f"degree must be >= 1, got {self.degree}")
        if self.grid < 2:
            raise ValueError(f"grid must be >= 2, got {self.grid}")

    @property
    def endpoint_count(self) -> int:
        """How many endpoint models the surface joins: its corners."""
        return num_corners(self.shape)

    def corner_positions(self) -> tuple[Point, ...]:
        return corner_positions(self.shape)

    def _surface(self, ctx: RepairContext) -> SurfaceModel:
        if len(ctx.endpoints) != self.endpoint_count:
            raise ValueError(
                f"the {self.shape} surface repair joins {self.endpoint_count} endpoint models, "
                f"got {len(ctx.endpoints)}"
            )
        corners = [m.state_dict() for m in ctx.endpoints]
        return SurfaceModel(ctx.build(), corners, self.shape, self.degree).to(ctx.device)

    def fit(self, ctx: RepairContext) -> dict[str, torch.Tensor]:
        surface = self._surface(ctx)
        if surface.interior.shape[0] == 0:
            return {"interior": surface.interior.detach().cpu()}  # nothing to train
        shape, wd = self.shape, self.weight_decay

        def loss(model: SurfaceModel, x, y, generator):
            return surface_loss(model, x, y, sample_point(shape, generator), wd)

        sgd = replace(self, weight_decay=0.0)  # the decay is in the loss, on w(u, v)
        fit(surface, ctx.bonafide, sgd, ctx.fit_options(), augment=ctx.augment, loss_fn=loss)
        return {"interior": surface.interior.detach().cpu()}

    def path(
        self, ctx: RepairContext, state: dict[str, torch.Tensor], grid: Sequence[float]
    ) -> ModelPath:
        """The models over ``grid_points(shape, self.grid)``, keyed by (u, v); the
        benchmark's one-dimensional ``grid`` does not apply to a surface and is ignored."""
        surface = self._surface(ctx)
        with torch.no_grad():
            surface.interior.copy_(state["interior"])
        return SurfacePath(surface, grid_points(self.shape, self.grid))


def surface_loss(
    surface: SurfaceModel, x: torch.Tensor, y: torch.Tensor, uv, weight_decay: float
) -> torch.Tensor:
    """Cross-entropy at w(u, v) plus 0.5 * wd * ||w(u, v)||^2 (decay on the point on the
    surface, not on the control points)."""
    logits, w = surface.forward_with_weights(x, uv)
    return nn.functional.cross_entropy(logits, y) + 0.5 * weight_decay * w.pow(2).sum()


class SurfacePath(ModelPath):
    def __init__(self, surface: SurfaceModel, points: tuple[Point, ...]):
        self.surface = surface
        self.points = points

    def model_at(self, point: Point) -> nn.Module:
        return self.surface.model_at(point)

    def endpoint_weights(self, point: Point) -> tuple[float, ...]:
        return corner_weights(self.surface.shape, point)


@mcbench.hookimpl
def mcbench_register_repairs(register):
    register(SurfaceRepair)
