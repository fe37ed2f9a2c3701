"""PGD (Madry et al. 2018): projected gradient steps on the cross-entropy within an L-inf or
L2 ball around each image, from a random start in the ball.

Robust accuracy (goal "misclassify") keeps the worst case per point, AutoAttack style: a
point is dropped from the batch as soon as an iterate is misclassified, so later steps run
on fewer images and restarts only re-attack the points still standing. Adversarial loss
(goal "loss") keeps, per point, the iterate with the highest cross-entropy over all steps
and restarts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

import mcbench
from mcbench.kinds import EvasionAttack, Goal

NORMS = ("linf", "l2")
GOALS = ("misclassify", "loss")


@dataclass(frozen=True)
class PGD(EvasionAttack):
    """Projected gradient descent (Madry et al.): L-inf or L2 steps on the cross-entropy."""

    name: ClassVar[str] = "pgd"
    norm: Literal["linf", "l2"] = field(
        default="linf",
        metadata={
            "help": "threat model: linf (signed gradient steps) or l2 (normalised gradient steps)"
        },
    )
    eps: float = field(
        default=8 / 255,
        metadata={"help": "radius of the ball around each image, in 0..1 pixel units"},
    )
    step_size: float = field(default=2 / 255, metadata={"help": "length of each step"})
    steps: int = field(default=10, metadata={"help": "gradient steps per restart"})
    random_start: bool = field(
        default=True,
        metadata={"help": "start from a uniformly random point in the ball instead of the image"},
    )
    restarts: int = field(
        default=1,
        metadata={
            "help": "independent random starts (only with random_start; misclassify re-attacks "
            "only the points still correctly classified)"
        },
    )
    targeted: bool = field(
        default=False,
        metadata={
            "help": "descend the cross-entropy of the given targets instead of ascending the "
            "true label's"
        },
    )

    def __post_init__(self):
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        for key in ("eps", "step_size"):
            value = getattr(self, key)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{key} must be a positive number, got {value}")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.restarts < 1:
            raise ValueError(f"restarts must be at least 1, got {self.restarts}")

    def perturb(
        self,
        model: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        goal: Goal = "misclassify",
        targets: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Adversarial ``images`` (see ``EvasionAttack.perturb``). In targeted mode, goal
        "misclassify" prefers an iterate that reaches the target and otherwise returns one
        that is at least misclassified; goal "loss" keeps the iterate with the lowest
        cross-entropy of the target."""
        if goal not in GOALS:
            raise ValueError(f"goal must be one of {', '.join(GOALS)}, got {goal!r}")
        if self.targeted and targets is None:
            raise ValueError("a targeted PGD needs targets")
        aim = targets if self.targeted else labels
        with torch.no_grad():
            if goal == "misclassify":
                return self._misclassify(model, images, labels, aim, generator)
            return self._max_loss(model, images, aim, generator)

    # -- robust accuracy ---------------------------------------------------------------------

    def _misclassify(self, model, images, labels, aim, generator):
        result = images.clone()
        if not self.random_start:
            # the first iterate is the image itself: its forward pass doubles as the check
            # of which points are already misclassified
            self._fool_into(
                result,
                torch.arange(len(images), device=images.device),
                model,
                images,
                labels,
                aim,
                generator,
            )
            return result
        pred = model(images).argmax(1)
        pending = torch.nonzero((pred == labels) & ~self._reached(pred, labels, aim)).flatten()
        for _ in range(self.restarts):
            if pending.numel() == 0:
                break
            pending = self._fool_into(result, pending, model, images, labels, aim, generator)
        return result

    def _fool_into(self, result, index, model, images, labels, aim, generator):
        """One run on ``images[index]``: writes every point it fools into ``result`` and
        returns the part of ``index`` that is still to be attacked."""
        clean, labels, aim = images[index], labels[index], aim[index]
        bounds = self._bounds(clean)
        x = self._start(clean, bounds, generator)
        active = torch.arange(len(index), device=index.device)  # positions within index
        fooled = torch.zeros(len(index), dtype=torch.bool, device=index.device)
        done = torch.zeros_like(fooled)
        for step in range(self.steps + 1):
            last = step == self.steps
            if last:
                logits, grad = model(x), None
            else:
                logits, _, grad = self._logits_and_grad(model, x, aim, reduction="sum")
            pred = logits.argmax(1)
            wrong = pred != labels
            reached = self._reached(pred, labels, aim)
            # targeted: a misclassified iterate is kept until one reaches the target, and
            # the unattacked image counts as already misclassified
            record = reached | (wrong & ~fooled[active])
            stop = (reached | wrong) if step == 0 and not self.random_start else reached
            if record.any():
                result[index[active[record]]] = x[record]
                fooled[active[record]] = True
            done[active[stop]] = True
            if last:
                break
            keep = ~stop
            if not keep.all():
                active, x, grad, labels, aim = (t[keep] for t in (active, x, grad, labels, aim))
                bounds = tuple(b[keep] for b in bounds)
                if active.numel() == 0:
                    break
            self._advance(x, grad, bounds)
        return index[~done]

    def _reached(self, pred, labels, aim):
        return pred == aim if self.targeted else pred != labels

    # -- adversarial loss --------------------------------------------------------------------

    def _max_loss(self, model, images, aim, generator):
        bounds = self._bounds(images)
        best, best_objective = None, None
        for _ in range(self.restarts if self.random_start else 1):
            x = self._start(images, bounds, generator)
            for step in range(self.steps + 1):
                if step == self.steps:
                    loss, grad = F.cross_entropy(model(x), aim, reduction="none"), None
                else:
                    _, loss, grad = self._logits_and_grad(model, x, aim, reduction="none")
                objective = -loss if self.targeted else loss
                if best is None:
                    best, best_objective = x.clone(), objective
                else:
                    better = objective > best_objective
                    best = torch.where(better.view(-1, 1, 1, 1), x, best)
                    best_objective = torch.where(better, objective, best_objective)
                if grad is not None:
                    self._advance(x, grad, bounds)
        return best

    # -- the steps ---------------------------------------------------------------------------

    def _logits_and_grad(self, model, x, aim, reduction):
        x.requires_grad_(True)
        with torch.enable_grad():
            logits = model(x)
            loss = F.cross_entropy(logits, aim, reduction=reduction)
            (grad,) = torch.autograd.grad(loss.sum(), x)
        x.requires_grad_(False)
        return logits.detach(), loss.detach(), grad

    def _bounds(self, clean):
        """What the projection needs per point: the box [clean - eps, clean + eps] within
        [0, 1] for L-inf, the image itself for L2."""
        if self.norm == "linf":
            return (clean - self.eps).clamp_(min=0.0), (clean + self.eps).clamp_(max=1.0)
        return (clean,)

    def _start(self, clean, bounds, generator):
        if not self.random_start:
            return clean.clone()
        if self.norm == "linf":
            noise = self._draw(torch.rand, clean.shape, generator, clean)
            return noise.mul_(2 * self.eps).sub_(self.eps).add_(clean).clamp_(*bounds)
        # uniform in the L2 ball: a Gaussian direction, radius eps * U^(1/d)
        direction = self._draw(torch.randn, clean.shape, generator, clean)
        fraction = self._draw(torch.rand, (len(clean),), generator, clean)
        radius = fraction.pow_(1.0 / clean[0].numel()).mul_(self.eps)
        norm = torch.linalg.vector_norm(direction, dim=(1, 2, 3)).clamp_min_(1e-12)
        x = direction.mul_((radius / norm).view(-1, 1, 1, 1)).add_(clean)
        return x.clamp_(0.0, 1.0)

    @staticmethod
    def _draw(sample, shape, generator, like):
        """Random numbers from ``generator`` on its own device (the CPU when None), moved to
        ``like``'s device and memory layout: the same seed gives the same start anywhere."""
        device = generator.device if generator is not None else torch.device("cpu")
        # pinned memory lets the copy to a GPU run without stalling the host
        pin = device.type == "cpu" and like.device.type == "cuda"
        values = sample(shape, generator=generator, device=device, dtype=like.dtype, pin_memory=pin)
        if values.dim() < like.dim():
            return values.to(like.device, non_blocking=pin)
        return torch.empty_like(like).copy_(values, non_blocking=pin)

    def _advance(self, x, grad, bounds):
        """One step from ``x`` in place, projected back onto the ball and into [0, 1]."""
        direction = -self.step_size if self.targeted else self.step_size
        if self.norm == "linf":
            x.add_(grad.sign_(), alpha=direction)
            x.clamp_(*bounds)  # the ball and [0, 1] at once
            return
        (clean,) = bounds
        norm = torch.linalg.vector_norm(grad, dim=(1, 2, 3)).clamp_min_(1e-12)
        x.addcdiv_(grad, norm.view(-1, 1, 1, 1), value=direction)
        delta = x.sub_(clean)
        length = torch.linalg.vector_norm(delta, dim=(1, 2, 3)).clamp_min_(1e-12)
        delta.mul_((self.eps / length).clamp_(max=1.0).view(-1, 1, 1, 1))
        # clamping into [0, 1] moves each pixel towards the image: it stays in the ball
        delta.add_(clean).clamp_(0.0, 1.0)


@mcbench.hookimpl
def mcbench_register_attacks(register):
    register(PGD)
