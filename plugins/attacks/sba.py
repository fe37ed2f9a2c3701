"""Single bias attack (Liu et al. 2017): raise one bias until a chosen class wins on the
targets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

import mcbench
from mcbench.kinds import TamperContext, TargetedTamper
from mcbench.kinds.data import as_batch
from mcbench.toolkit.nets import find_layer
from mcbench.toolkit.tampering import LayerTap, margin


@dataclass(frozen=True)
class SingleBiasAttack(TargetedTamper):
    """Raise one bias of one layer until the chosen class wins on every target."""

    name: ClassVar[str] = "sba"
    report_figures: ClassVar[tuple[str, ...]] = ("targets_flipped", "raise")
    target_label: int | None = field(
        default=0, metadata={"help": "the class every target must take"}
    )
    layer: str | None = field(
        default=None,
        metadata={
            "help": "layer whose bias is raised, by its name in the architecture (null: the "
            "last layer with a weight)"
        },
    )
    unit: int | None = field(
        default=None,
        metadata={
            "help": "which bias entry (null: on the output layer the target label's own; on a "
            "hidden layer the entry whose gradient favours the label most)"
        },
    )
    margin: float = field(
        default=1.0,
        metadata={"help": "on the output layer: logit margin by which the label must win"},
    )
    max_raise: float = field(
        default=1.0e6, metadata={"help": "largest raise tried on a hidden layer"}
    )

    def __post_init__(self):
        super().__post_init__()
        if self.target_label is None:
            raise ValueError(
                "target_label is required: the single bias attack pushes every target to one class"
            )
        if self.unit is not None and self.unit < 0:
            raise ValueError(f"unit must be >= 0, got {self.unit}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if self.max_raise <= 0:
            raise ValueError(f"max_raise must be > 0, got {self.max_raise}")

    def check_model(self, network: nn.Module) -> None:
        name, layer = find_layer(network, self.layer)
        bias = getattr(layer, "bias", None)
        if not isinstance(bias, torch.Tensor):
            raise ValueError(f"layer {name!r} has no bias")
        if self.unit is not None and self.unit >= bias.numel():
            raise ValueError(
                f"unit {self.unit} is out of range: layer {name!r} has {bias.numel()} biases"
            )

    def tamper(self, ctx: TamperContext) -> dict:
        self.check_model(ctx.network)
        name, layer = find_layer(ctx.network, self.layer)
        model = ctx.model.eval()
        images = ctx.injection.images.images
        labels = ctx.injection.labels.to(ctx.device)
        tap = LayerTap.capture(model, layer, images, ctx.device)
        output_layer = tap.direct and layer.bias.numel() == ctx.num_classes
        unit = self.unit
        if unit is None:
            unit = (
                self.target_label
                if output_layer
                else self._steepest_unit(model, layer, images, labels, ctx)
            )
        with torch.no_grad():
            if output_layer and unit == self.target_label:
                raised, method = self._closed_form(tap, layer, labels), "closed form"
            else:
                raised, method = self._search(model, layer, unit, images, labels, ctx), "search"
            layer.bias[unit] += raised
            wins = (self._logits(model, images, ctx).argmax(1) == labels).double().mean()
        return {
            "layer": name,
            "unit": unit,
            "raise": raised,
            "method": method,
            "targets_flipped": wins.item(),
        }

    def _closed_form(self, tap: LayerTap, layer: nn.Module, labels: torch.Tensor) -> float:
        # logit_label grows one for one with its bias and nothing else moves
        logits = tap.logits(dict(layer.named_parameters(recurse=False)))
        return max(0.0, float((-margin(logits, labels)).max()) + self.margin)

    def _steepest_unit(self, model, layer, images, labels, ctx) -> int:
        for p in model.parameters():
            p.grad = None
        margin(self._logits(model, images, ctx), labels).sum().backward()
        unit = int(layer.bias.grad.argmax())
        model.zero_grad(set_to_none=True)
        return unit

    def _search(self, model, layer, unit, images, labels, ctx) -> float:
        """The smallest raise (to 1e-4 relative) that makes every target take the label,
        assuming more raise never hurts; max_raise if none up to it does."""
        original = layer.bias[unit].item()

        def wins(amount: float) -> bool:
            layer.bias[unit] = original + amount
            ok = bool((self._logits(model, images, ctx).argmax(1) == labels).all())
            layer.bias[unit] = original
            return ok

        low, high = 0.0, 1.0
        while not wins(high):
            low, high = high, high * 2
            if high > self.max_raise:
                return self.max_raise
        while high - low > 1e-4 * high:
            mid = (low + high) / 2
            low, high = (low, mid) if wins(mid) else (mid, high)
        return high

    def _logits(self, model, images, ctx):
        return model(as_batch(images.to(ctx.device)))


@mcbench.hookimpl
def mcbench_register_attacks(register):
    register(SingleBiasAttack)
