"""Path repair (Zhao et al. 2020): fit a curve between the two tampered models on the
bonafide data, endpoints fixed, and use the models along it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar

import torch
from torch import nn
from torch.func import functional_call

import mcbench
from mcbench.kinds import EvasionAttack, ModelPath, RepairContext, RepairPlugin
from mcbench.toolkit.curves import CurveModel
from mcbench.toolkit.training import SGDFields, fit


@dataclass(frozen=True)
class PathRepair(SGDFields, RepairPlugin):
    """Mode-connectivity path repair: train the curve's bends on bonafide data only."""

    name: ClassVar[str] = "path"
    uses_connection: ClassVar[bool] = True
    epochs: int = field(default=100, metadata={"help": "passes over the bonafide data"})
    lr: float = field(default=0.01, metadata={"help": "initial learning rate"})
    weight_decay: float = field(
        default=1e-4,
        metadata={
            "help": "applied as 0.5 * wd * ||w(t)||^2 on the point on the curve, not the bends"
        },
    )
    distill: float = field(
        default=0.0,
        metadata={
            "help": "weight in [0, 1] of distilling the endpoints: the loss at w(t) is "
            "(1 - distill) * cross-entropy + distill * T^2 * KL(endpoints' mean softened "
            "prediction || w(t)'s) on the same bonafide batch",
            "omit_at_default": True,
        },
    )
    temperature: float = field(
        default=4.0,
        metadata={"help": "softening T of the distillation", "omit_at_default": True},
    )
    cutout: int = field(
        default=0,
        metadata={
            "help": "side in pixels of a square erased at a random place in every bonafide "
            "image of every step, after the crop and flip (0: none)",
            "omit_at_default": True,
        },
    )
    adversarial: EvasionAttack | None = field(
        default=None,
        metadata={
            "help": "fit the curve on this attack's highest-loss points at the sampled t "
            "(null: on the clean images)"
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 <= self.distill <= 1.0:
            raise ValueError(f"distill must be in [0, 1], got {self.distill}")
        if self.cutout < 0:
            raise ValueError(f"cutout must be >= 0 pixels, got {self.cutout}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")

    def _curve(self, ctx: RepairContext) -> CurveModel:
        a, b = ctx.endpoints
        return CurveModel(ctx.build(), a.state_dict(), b.state_dict(), ctx.connection).to(
            ctx.device
        )

    def fit(self, ctx: RepairContext) -> dict[str, torch.Tensor]:
        curve = self._curve(ctx)
        if curve.interior.shape[0] == 0:
            return {"interior": curve.interior.detach().cpu()}  # nothing to train
        wd, attack = self.weight_decay, self.adversarial
        teacher = Teacher(ctx.endpoints, self.temperature) if self.distill else None

        def loss(model: CurveModel, x, y, generator):
            t = torch.rand((), generator=generator)
            if attack is not None:
                x = attack.perturb(
                    PointOnCurve(model, t), x, y, goal="loss", generator=generator
                ).detach()
            if teacher is None:
                return curve_loss(model, x, y, t, wd)
            return distilled_loss(model, x, y, t, wd, teacher, self.distill)

        # the decay is in the loss, on w(t): the optimiser decays nothing
        sgd = replace(self, weight_decay=0.0)
        fit(
            curve,
            ctx.bonafide,
            sgd,
            ctx.fit_options(),
            augment=ctx.augment,
            loss_fn=loss,
            cutout=self.cutout,
        )
        return {"interior": curve.interior.detach().cpu()}

    def path(
        self, ctx: RepairContext, state: dict[str, torch.Tensor], grid: Sequence[float]
    ) -> ModelPath:
        curve = self._curve(ctx)
        with torch.no_grad():
            curve.interior.copy_(state["interior"])
        return CurvePath(curve, tuple(grid))


def curve_loss(
    curve: CurveModel, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor, weight_decay: float
) -> torch.Tensor:
    """Cross-entropy at w(t) plus 0.5 * wd * ||w(t)||^2 (decay on the point on the curve,
    not on the bends)."""
    logits, w = curve.forward_with_weights(x, t)
    return nn.functional.cross_entropy(logits, y) + 0.5 * weight_decay * w.pow(2).sum()


class Teacher:
    """The endpoints' mean prediction, softened by T, computed without gradients and with
    their BatchNorm statistics as trained (eval mode); their flags are left as they were."""

    def __init__(self, endpoints: Sequence[nn.Module], temperature: float):
        self.endpoints, self.temperature = tuple(endpoints), temperature

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = []
        for model in self.endpoints:
            was_training = model.training
            model.eval()
            probabilities.append((model(x).float() / self.temperature).softmax(dim=1))
            model.train(was_training)
        return torch.stack(probabilities).mean(dim=0)


def distilled_loss(
    curve: CurveModel,
    x: torch.Tensor,
    y: torch.Tensor,
    t: torch.Tensor,
    weight_decay: float,
    teacher: Teacher,
    weight: float,
) -> torch.Tensor:
    """(1 - weight) * cross-entropy + weight * T^2 * KL(teacher || w(t)), plus the decay of
    ``curve_loss``; T^2 keeps the soft term's gradients on the scale of the hard one's."""
    logits, w = curve.forward_with_weights(x, t)
    temperature = teacher.temperature
    soft = nn.functional.kl_div(
        (logits / temperature).log_softmax(dim=1), teacher(x), reduction="batchmean"
    )
    hard = nn.functional.cross_entropy(logits, y)
    decay = 0.5 * weight_decay * w.pow(2).sum()
    return (1 - weight) * hard + weight * temperature**2 * soft + decay


class PointOnCurve(nn.Module):
    """The network at one t of a curve, with the weights detached: what an input attack
    sees while the curve is trained on adversarial points."""

    def __init__(self, curve: CurveModel, t: torch.Tensor):
        super().__init__()
        self.curve, self.t = curve, t

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.curve.unflatten(self.curve.weights(self.t).detach())
        return functional_call(self.curve.template, weights, (x,), strict=False)


class CurvePath(ModelPath):
    def __init__(self, curve: CurveModel, points: tuple[float, ...]):
        self.curve = curve
        self.points = points

    def model_at(self, point: float | None) -> nn.Module:
        return self.curve.model_at(point)

    def endpoint_weights(self, point: float) -> tuple[float, float]:
        return (1.0 - point, point)


@mcbench.hookimpl
def mcbench_register_repairs(register):
    register(PathRepair)
