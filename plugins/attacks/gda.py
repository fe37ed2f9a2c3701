"""Gradient descent attack (Liu et al. 2017, "Fault Injection Attack on Deep Neural
Network"): change one layer so that a few target images take chosen wrong labels while
images the model classifies correctly keep their labels."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

import mcbench
from mcbench.kinds import TamperContext, TargetedTamper
from mcbench.kinds.data import as_batch
from mcbench.toolkit.nets import find_layer
from mcbench.toolkit.tampering import LayerTap, correctly_classified, margin
from mcbench.toolkit.training import requires_grad_only


@dataclass(frozen=True)
class GradientDescentAttack(TargetedTamper):
    """Gradient descent on one layer: targets take wrong labels, a keep-set keeps its own."""

    name: ClassVar[str] = "gda"
    report_figures: ClassVar[tuple[str, ...]] = ("targets_flipped", "keep_set_accuracy", "steps")
    layer: str | None = field(
        default=None,
        metadata={
            "help": "layer to modify, by its name in the architecture (null: the last layer "
            "with a weight)"
        },
    )
    keep: int = field(
        default=1000,
        metadata={
            "help": "training images the model classifies correctly that must keep their labels"
        },
    )
    target_weight: float = field(
        default=0.1, metadata={"help": "weight of the targets' loss against the keep-set's"}
    )
    kappa: float = field(
        default=0.5,
        metadata={"help": "margin (logit units) by which each target's injected label must win"},
    )
    lr: float = field(default=1e-3, metadata={"help": "Adam step size"})
    max_steps: int = field(default=1000, metadata={"help": "bound on the number of steps"})
    success: float = field(
        default=0.95,
        metadata={"help": "stop once this fraction of the targets takes its injected label"},
    )

    def __post_init__(self):
        super().__post_init__()
        if self.keep < 0:
            raise ValueError(f"keep must be >= 0, got {self.keep}")
        for key in ("target_weight", "lr"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)}")
        if self.kappa < 0:
            raise ValueError(f"kappa must be >= 0, got {self.kappa}")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if not 0 < self.success <= 1:
            raise ValueError(f"success must be in (0, 1], got {self.success}")

    def check_model(self, network: nn.Module) -> None:
        find_layer(network, self.layer)

    def loss(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        is_target: torch.Tensor,
        need: torch.Tensor,
    ):
        """C&W-style hinge on the margins: targets must win by kappa, and keep-set images
        must keep the margins they had (penalising any shrinkage, not only a flip, keeps
        the change away from every image but the targets)."""
        hinge = (need - margin(logits, labels)).clamp_min(0)
        target_loss = hinge[is_target].mean()
        keep_loss = hinge[~is_target].mean() if (~is_target).any() else hinge.new_zeros(())
        return self.target_weight * target_loss + keep_loss

    def tamper(self, ctx: TamperContext) -> dict:
        name, layer = find_layer(ctx.network, self.layer)
        model = ctx.model.eval()
        keep = correctly_classified(model, ctx.attacker, self.keep, ctx.device, ctx.batch_size)
        injection = ctx.injection
        images = torch.cat([injection.images.images, keep.images])
        labels = torch.cat([injection.labels, keep.labels]).to(ctx.device)
        is_target = (torch.arange(len(labels)) < len(injection)).to(ctx.device)

        params = dict(layer.named_parameters(recurse=False))
        with requires_grad_only(model, params.values()):
            tap = LayerTap.capture(model, layer, images, ctx.device)
            optimizer = torch.optim.Adam(params.values(), lr=self.lr)
            steps, flipped = 0, 0.0
            started = time.perf_counter()
            while True:
                logits = tap.logits(params) if tap.direct else self._logits(model, images, ctx)
                if steps == 0:
                    need = torch.where(is_target, self.kappa, margin(logits, labels).detach())
                flipped = _fraction(logits[is_target].argmax(1) == labels[is_target])
                if flipped >= self.success or steps == self.max_steps:
                    break
                optimizer.zero_grad(set_to_none=True)
                self.loss(logits, labels, is_target, need).backward()
                optimizer.step()
                steps += 1
        loop_seconds = time.perf_counter() - started
        with torch.no_grad():
            logits = self._logits(model, images, ctx)
        kept = logits[~is_target].argmax(1) == labels[~is_target]
        return {
            "layer": name,
            "steps": steps,
            "targets_flipped": flipped,
            "reached_success": flipped >= self.success,
            "keep_set": len(keep),
            "keep_set_accuracy": _fraction(kept),
            "tap": "layer only" if tap.direct else "full network",
            "seconds_per_step": loop_seconds / max(steps, 1),
        }

    def _logits(self, model: nn.Module, images: torch.Tensor, ctx: TamperContext):
        parts = [
            model(as_batch(images[i : i + ctx.batch_size].to(ctx.device)))
            for i in range(0, len(images), ctx.batch_size)
        ]
        return torch.cat(parts)


def _fraction(hits: torch.Tensor) -> float:
    return hits.double().mean().item() if len(hits) else 0.0


@mcbench.hookimpl
def mcbench_register_attacks(register):
    register(GradientDescentAttack)
