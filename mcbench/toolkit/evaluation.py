"""Forward passes for evaluation and BatchNorm recalibration."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

from mcbench.kinds.data import ImageSet, as_batch
from mcbench.toolkit.augment import random_crop_flip


def batches(data: ImageSet, batch_size: int, device: torch.device):
    """DATA in order, BATCH_SIZE images at a time, as float batches on DEVICE. The uint8
    images cross to the device in one copy (none where they are already there) and are
    sliced there."""
    images, labels = data.images.to(device), data.labels.to(device)
    for start in range(0, len(data), batch_size):
        yield as_batch(images[start : start + batch_size]), labels[start : start + batch_size]


@torch.inference_mode()
def predict(
    model: nn.Module, data: ImageSet, device: torch.device, batch_size: int = 500
) -> torch.Tensor:
    """Logits of ``model`` (put in eval mode) on every image, returned on the CPU."""
    model.eval()
    out = [model(x).float().cpu() for x, _ in batches(data, batch_size, device)]
    return torch.cat(out) if out else torch.empty(0, 0)


def accuracy(
    model: nn.Module, data: ImageSet, device: torch.device, batch_size: int = 500
) -> float:
    """The fraction of DATA's images that ``model`` (put in eval mode) gives their label."""
    logits = predict(model, data, device, batch_size)
    return (logits.argmax(dim=1) == data.labels).double().mean().item()


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@torch.no_grad()
def recalibrate_batchnorm(
    model: nn.Module,
    data: ImageSet,
    device: torch.device,
    batch_size: int = 500,
    passes: int = 1,
    augment_seed: int | None = None,
) -> None:
    """Replace every BatchNorm's running statistics by their average over ``passes``
    passes of ``data``, each batch weighted by its size (other layers, dropout included,
    stay in eval mode). running_mean becomes the exact mean over all images; running_var
    the size-weighted mean of the per-batch unbiased variances. With ``augment_seed``,
    every pass sees the images randomly cropped and flipped (the training's augmentation,
    drawn from a generator of that seed)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    generator = None if augment_seed is None else torch.Generator().manual_seed(augment_seed)
    model.eval()
    saved = []
    for bn in norms:
        saved.append(bn.momentum)
        bn.reset_running_stats()
        bn.train()
    seen = 0
    for _ in range(passes):
        for x, _ in batches(data, batch_size, device):
            if generator is not None:
                x = random_crop_flip(x, generator)
            for bn in norms:
                bn.momentum = x.shape[0] / (seen + x.shape[0])
            model(x)
            seen += x.shape[0]
    for bn, momentum in zip(norms, saved):
        bn.momentum = momentum
    model.eval()


Statistics = dict[str, tuple[torch.Tensor, torch.Tensor]]
"""Every BatchNorm's running (mean, variance), by module name."""


def batchnorm_statistics(model: nn.Module) -> Statistics:
    """Copies of every BatchNorm's running mean and variance (layers without running
    statistics are left out)."""
    return {
        name: (m.running_mean.detach().clone(), m.running_var.detach().clone())
        for name, m in model.named_modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
        and m.running_mean is not None
        and m.running_var is not None  # set and unset with running_mean
    }


def endpoint_statistics(
    endpoints: Sequence[nn.Module], recalibrate: Callable[[nn.Module], None]
) -> tuple[list[Statistics], list[Statistics]]:
    """The endpoints' BatchNorm statistics as trained, and as ``recalibrate`` recomputes
    them on a copy of each (the endpoints are left as they are): what ``anchor_batchnorm``
    takes."""
    trained, recomputed = [], []
    for endpoint in endpoints:
        trained.append(batchnorm_statistics(endpoint))
        again = copy.deepcopy(endpoint)
        recalibrate(again)
        recomputed.append(batchnorm_statistics(again))
    return trained, recomputed


@torch.no_grad()
def anchor_batchnorm(
    model: nn.Module,
    weights: Sequence[float],
    trained: Sequence[Statistics],
    recomputed: Sequence[Statistics],
) -> None:
    """Correct MODEL's recomputed BatchNorm statistics by the error recomputing made at the
    endpoints, weighted by WEIGHTS (each endpoint's share of the point, summing to 1):
    mean += sum_i w_i (trained_i - recomputed_i) and var *= prod_i (trained_i /
    recomputed_i) ** w_i. TRAINED holds the endpoints' statistics as trained, RECOMPUTED
    theirs recomputed the way MODEL's were. At an endpoint (weight 1) the model gets that
    endpoint's statistics as trained; between them, the systematic part of the error (few
    images, a bonafide set unlike the training mix) is taken out as far as the endpoints
    show it."""
    if not len(weights) == len(trained) == len(recomputed):
        raise ValueError(
            f"{len(weights)} weights for {len(trained)} trained and {len(recomputed)} "
            "recomputed sets of statistics"
        )
    tiny = torch.finfo(torch.float32).tiny
    for name, m in model.named_modules():
        if (
            not isinstance(m, nn.modules.batchnorm._BatchNorm)
            or m.running_mean is None
            or m.running_var is None  # set and unset with running_mean
        ):
            continue
        shift = torch.zeros_like(m.running_mean)
        log_scale = torch.zeros_like(m.running_var)
        for w, done, redone in zip(weights, trained, recomputed):
            if w == 0:
                continue
            (mean, var), (mean_again, var_again) = done[name], redone[name]
            shift += w * (mean - mean_again).to(shift)
            log_scale += w * (var.clamp_min(tiny).log() - var_again.clamp_min(tiny).log()).to(
                log_scale
            )
        m.running_mean += shift
        m.running_var *= log_scale.exp()
