"""Carlini-Wagner L2 (Carlini & Wagner 2017): a minimum-norm evasion attack.

Per image it minimises ``||x' - x||_2^2 + c * f(x')`` over ``w`` with
``x' = (tanh(w) + 1) / 2``, so every iterate lies in [0, 1] without clipping, using Adam.
``f`` is the logit margin of ``cw_margin``. A binary search over ``c`` per image finds the
smallest constant that still succeeds, and the smallest-norm successful iterate over the
whole search is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

import mcbench
from mcbench.kinds import EvasionAttack, Goal

BOX_SHRINK = 1 - 1e-6
"""Pixels are mapped into (-1, 1) shrunk by this factor before atanh, so pixels that are
exactly 0 or 1 get a finite ``w`` and a nonzero gradient, and can move."""

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
STALL_TOLERANCE = 1e-4
"""Abort early: a sample stops when its loss improved by less than this fraction of its
value since the previous check (checks are ``steps // 10`` iterations apart)."""


def cw_margin(
    logits: torch.Tensor, labels: torch.Tensor, kappa: float = 0.0, targeted: bool = False
) -> torch.Tensor:
    """The Carlini-Wagner objective ``f`` on raw logits ``[N, K]``, one value per row.

    Untargeted (``labels`` are the true classes y): ``max(z_y - max_{j != y} z_j, -kappa)``,
    which falls to ``-kappa`` once some other class beats y by ``kappa``. Targeted
    (``labels`` are the targets t): ``max(max_{j != t} z_j - z_t, -kappa)``. The maximum
    over ``j != y`` masks ``z_y`` with -inf, so it is right for negative logits too."""
    labels = labels.view(-1, 1)
    own = logits.gather(1, labels).squeeze(1)
    other = logits.scatter(1, labels, float("-inf")).amax(dim=1)
    gap = other - own if targeted else own - other
    return gap.clamp(min=-kappa)


def cw_success(
    logits: torch.Tensor, labels: torch.Tensor, kappa: float = 0.0, targeted: bool = False
) -> torch.Tensor:
    """Whether each row is adversarial: another class strictly beats y (untargeted), or t
    strictly beats every other class (targeted), by at least ``kappa`` in both cases."""
    labels = labels.view(-1, 1)
    own = logits.gather(1, labels).squeeze(1)
    other = logits.scatter(1, labels, float("-inf")).amax(dim=1)
    lead = own - other if targeted else other - own
    return (lead > 0) & (lead >= kappa)


def to_tanh_space(images: torch.Tensor) -> torch.Tensor:
    """``w`` with ``from_tanh_space(w)`` within ~1e-6 of ``images``, finite at 0 and 1."""
    return torch.atanh((2 * images - 1) * BOX_SHRINK)


def from_tanh_space(w: torch.Tensor) -> torch.Tensor:
    return (torch.tanh(w) + 1) / 2


class _Adam:
    """Adam on the rows of ``w`` named by an index, so that samples that are done stop
    moving and their moment estimates are not touched."""

    def __init__(self, w: torch.Tensor, lr: float):
        self.lr = lr
        self.m = torch.zeros_like(w)
        self.v = torch.zeros_like(w)

    def step(self, w: torch.Tensor, idx: torch.Tensor, grad: torch.Tensor, t: int) -> None:
        beta1, beta2 = ADAM_BETAS
        m = self.m[idx] * beta1 + grad * (1 - beta1)
        v = self.v[idx] * beta2 + grad.square() * (1 - beta2)
        self.m[idx], self.v[idx] = m, v
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        w[idx] = w[idx] - self.lr * m_hat / (v_hat.sqrt() + ADAM_EPS)


@dataclass(frozen=True)
class CarliniWagnerL2(EvasionAttack):
    """Carlini-Wagner L2: minimum-norm adversarial examples by tanh-space optimisation."""

    name: ClassVar[str] = "cw"
    norm: ClassVar[str] = "l2"  # the threat model: an L2 ball of radius eps, when eps is set
    kappa: float = field(
        default=0.0,
        metadata={"help": "confidence: the adversarial class must win by this logit margin (>= 0)"},
    )
    c: float = field(
        default=1e-3,
        metadata={"help": "initial trade-off constant between distance and margin (> 0)"},
    )
    search_steps: int = field(
        default=9, metadata={"help": "binary-search steps over the constant c, per sample (>= 1)"}
    )
    steps: int = field(
        default=100, metadata={"help": "Adam iterations per binary-search step (>= 1)"}
    )
    lr: float = field(default=0.01, metadata={"help": "Adam step size in tanh space (> 0)"})
    abort_early: bool = field(
        default=True,
        metadata={"help": "stop a sample's optimisation once its loss stops improving"},
    )
    eps: float | None = field(
        default=None,
        metadata={
            "help": "L2 radius: adversarials farther than this are dropped and the original "
            "returned, so robust accuracy is accuracy at L2 radius eps (null: no limit)"
        },
    )
    targeted: bool = field(
        default=False,
        metadata={"help": "aim at the given target labels instead of any wrong label"},
    )

    def __post_init__(self):
        if not (math.isfinite(self.kappa) and self.kappa >= 0):
            raise ValueError(f"kappa must be a finite number >= 0, got {self.kappa}")
        if not (math.isfinite(self.c) and self.c > 0):
            raise ValueError(f"c must be a finite number > 0, got {self.c}")
        if self.search_steps < 1:
            raise ValueError(f"search_steps must be >= 1, got {self.search_steps}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if self.eps is not None and not self.eps > 0:
            raise ValueError(f"eps must be > 0 or null, got {self.eps}")

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
        """Per image, the smallest-L2 adversarial found (within ``eps`` when set), else the
        image itself; images that are already adversarial come back unchanged.

        Carlini-Wagner is a minimum-norm attack with no loss to maximise, so
        ``goal="loss"`` returns the same points as ``goal="misclassify"``. It is
        deterministic: ``generator`` is not used. ``targets`` is required when
        ``targeted``."""
        if goal not in ("misclassify", "loss"):
            raise ValueError(f"goal must be 'misclassify' or 'loss', got {goal!r}")
        classes = self._attack_labels(labels, targets)
        result = images.detach().clone()
        if len(images) == 0:
            return result
        with torch.no_grad():
            already = cw_success(model(result), classes, 0.0, self.targeted)
        todo = torch.nonzero(~already).flatten()
        if len(todo) == 0:
            return result
        adv, norm_sq = self._search(model, result[todo], classes[todo])
        accepted = torch.isfinite(norm_sq)
        if self.eps is not None:
            accepted &= norm_sq.sqrt() <= self.eps
        result[todo[accepted]] = adv[accepted]
        return result

    def _attack_labels(self, labels: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        if not self.targeted:
            return labels
        if targets is None:
            raise ValueError("cw with targeted=true needs target labels (targets=...)")
        if targets.shape != labels.shape:
            raise ValueError(
                f"targets has shape {tuple(targets.shape)}, labels {tuple(labels.shape)}"
            )
        return targets.to(labels.device)

    def _search(
        self, model: nn.Module, images: torch.Tensor, classes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Binary search over c per sample: the smallest-norm successful point over all
        search steps and its squared L2 distance (inf where none was found)."""
        n, dtype, device = len(images), images.dtype, images.device
        const = torch.full((n,), self.c, dtype=dtype, device=device)
        lower = torch.zeros(n, dtype=dtype, device=device)
        upper = torch.full((n,), math.inf, dtype=dtype, device=device)
        best_adv = images.clone()
        best_norm = torch.full((n,), math.inf, dtype=dtype, device=device)
        for _ in range(self.search_steps):
            adv, norm_sq = self._optimise(model, images, classes, const)
            better = norm_sq < best_norm
            best_adv[better], best_norm[better] = adv[better], norm_sq[better]
            found = torch.isfinite(norm_sq)
            upper = torch.where(found, torch.minimum(upper, const), upper)
            lower = torch.where(found, lower, torch.maximum(lower, const))
            bounded = torch.isfinite(upper)
            const = torch.where(bounded, (lower + upper) / 2, const * 10)
        return best_adv, best_norm

    def _optimise(
        self, model: nn.Module, images: torch.Tensor, classes: torch.Tensor, const: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Adam from the original images at fixed per-sample constants: the smallest-norm
        successful iterate per sample and its squared distance (inf where none)."""
        n = len(images)
        w = to_tanh_space(images)
        adam = _Adam(w, self.lr)
        best_adv = images.clone()
        best_norm = torch.full((n,), math.inf, dtype=images.dtype, device=images.device)
        active = torch.ones(n, dtype=torch.bool, device=images.device)
        last_loss = torch.full_like(best_norm, math.inf)
        check_every = max(self.steps // 10, 1)
        for step in range(1, self.steps + 1):
            idx = torch.nonzero(active).flatten()
            if len(idx) == 0:
                break
            loss, grad, adv, logits, norm_sq = self._loss_and_grad(
                model, w[idx], images[idx], classes[idx], const[idx]
            )
            better = cw_success(logits, classes[idx], self.kappa, self.targeted)
            better &= norm_sq < best_norm[idx]
            best_adv[idx[better]], best_norm[idx[better]] = adv[better], norm_sq[better]
            adam.step(w, idx, grad, step)
            if self.abort_early and step % check_every == 0:
                previous = last_loss[idx]
                stalled = torch.isfinite(previous) & (
                    loss > previous - STALL_TOLERANCE * previous.abs()
                )
                active[idx[stalled]] = False
                last_loss[idx] = loss
        return best_adv, best_norm

    def _loss_and_grad(
        self,
        model: nn.Module,
        w: torch.Tensor,
        images: torch.Tensor,
        classes: torch.Tensor,
        const: torch.Tensor,
    ):
        """Per-sample loss and its gradient with respect to ``w`` only (the model's
        parameters and their ``.grad`` are left alone), plus the iterate, its logits and
        its squared distance, detached."""
        with torch.enable_grad():
            w = w.detach().requires_grad_(True)
            adv = from_tanh_space(w)
            logits = model(adv)
            norm_sq = (adv - images).flatten(1).square().sum(dim=1)
            loss = norm_sq + const * cw_margin(logits, classes, self.kappa, self.targeted)
            (grad,) = torch.autograd.grad(loss.sum(), w)
        return loss.detach(), grad, adv.detach(), logits.detach(), norm_sq.detach()


@mcbench.hookimpl
def mcbench_register_attacks(register):
    register(CarliniWagnerL2)
