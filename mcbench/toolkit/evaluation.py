"""Forward passes for evaluation and BatchNorm recalibration."""

from __future__ import annotations

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
