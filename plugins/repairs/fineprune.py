"""Fine-Pruning (Liu et al. 2018): prune the least active channels of the last
convolution on the bonafide data, then fine-tune with them held at zero."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

import mcbench
from mcbench.kinds import RepairContext
from mcbench.kinds.data import ImageSet
from mcbench.toolkit.evaluation import batches
from mcbench_plugins.repairs._single_model import (
    FinetuneFields,
    SingleModelRepair,
    copy_of_endpoint,
    fit_on_bonafide,
    tensors_of,
)


def last_conv(model: nn.Module) -> nn.Conv2d:
    """The last nn.Conv2d in ``model.modules()`` order."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("fineprune needs a network with at least one nn.Conv2d")
    return convs[-1]


def following_batchnorm(model: nn.Module, conv: nn.Conv2d) -> nn.BatchNorm2d | None:
    """The BatchNorm2d applied right after ``conv`` (its next sibling in a Sequential), if
    any: pruning a channel must silence it too, or its shift keeps the channel alive."""
    for parent in model.modules():
        if isinstance(parent, nn.Sequential):
            children = list(parent.children())
            for i, child in enumerate(children[:-1]):
                after = children[i + 1]
                if (
                    child is conv
                    and isinstance(after, nn.BatchNorm2d)
                    and after.num_features == conv.out_channels
                ):
                    return after
    return None


@torch.no_grad()
def mean_activations(
    model: nn.Module, site: nn.Module, data: ImageSet, device: torch.device, batch_size: int = 500
) -> torch.Tensor:
    """Each channel's mean of ``site``'s output (the last conv, or the BatchNorm right
    after it) over all images and positions, with ``model`` in eval mode; float64."""
    channels = site.out_channels if isinstance(site, nn.Conv2d) else site.num_features
    total = torch.zeros(channels, dtype=torch.float64)
    count = 0

    def hook(module, inputs, output):
        nonlocal total, count
        total += output.double().sum(dim=(0, 2, 3)).cpu()
        count += output.shape[0] * output.shape[2] * output.shape[3]

    was_training = model.training
    model.eval()
    handle = site.register_forward_hook(hook)
    try:
        for x, _ in batches(data, batch_size, device):
            model(x)
    finally:
        handle.remove()
        model.train(was_training)
    return total / max(count, 1)


def pruned_count(fraction: float, channels: int) -> int:
    """floor(fraction * channels): never more than the asked fraction."""
    return math.floor(fraction * channels)


@dataclass(frozen=True)
class FinepruneRepair(FinetuneFields, SingleModelRepair):
    """Fine-Pruning: zero the last conv's least active channels, then fine-tune (t = None)."""

    name: ClassVar[str] = "fineprune"
    compiles: ClassVar[bool] = True
    extra_keys: ClassVar[tuple[str, ...]] = ("pruned_channels",)
    prune_fraction: float = field(
        default=0.2,
        metadata={
            "help": "fraction of the last convolution's output channels pruned, in [0, 1); "
            "floor(fraction * channels) channels with the lowest mean activation "
            "(output of the last conv, or of the BatchNorm right after it, over the "
            "bonafide images, eval mode) are zeroed, that BatchNorm's channels too"
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.prune_fraction < 1:
            raise ValueError(f"prune_fraction must be in [0, 1), got {self.prune_fraction}")

    def fit(self, ctx: RepairContext) -> dict[str, torch.Tensor]:
        model = copy_of_endpoint(ctx, self.endpoint)
        conv = last_conv(model)
        norm = following_batchnorm(model, conv)
        activation = mean_activations(model, norm or conv, ctx.bonafide, ctx.device)
        k = pruned_count(self.prune_fraction, conv.out_channels)
        # ties are broken by channel index (stable sort)
        pruned = torch.sort(torch.sort(activation, stable=True).indices[:k]).values
        keep = torch.ones(conv.out_channels, dtype=torch.bool)
        keep[pruned] = False
        keep = keep.to(ctx.device)
        targets = [conv.weight] + ([conv.bias] if conv.bias is not None else [])
        if norm is not None and norm.affine:
            targets += [norm.weight, norm.bias]

        def apply_mask():
            with torch.no_grad():
                for p in targets:
                    p.mul_(keep.view(-1, *[1] * (p.dim() - 1)).to(p.dtype))

        # Zero weights with always-zero gradients stay exactly zero under SGD with momentum
        # and weight decay (decay adds wd * 0, the momentum buffer stays 0).
        handles = [
            p.register_hook(lambda g, p=p: g.masked_fill(~keep.view(-1, *[1] * (p.dim() - 1)), 0.0))
            for p in targets
        ]
        apply_mask()
        try:
            fit_on_bonafide(model, ctx, self)
        finally:
            for h in handles:
                h.remove()
        apply_mask()  # a no-op unless something bypassed the gradients
        state = tensors_of(model)
        state["pruned_channels"] = pruned.to(torch.int64)
        return state


@mcbench.hookimpl
def mcbench_register_repairs(register):
    register(FinepruneRepair)
