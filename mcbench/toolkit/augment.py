"""Batch data augmentation on tensors (runs on whatever device the batch is on)."""

from __future__ import annotations

import torch


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Per-image random crop after zero padding by ``pad``, and random horizontal flip."""
    n, _, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator).to(x.device)
    flips = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = offsets[:, 0:1] + torch.arange(h, device=x.device)  # [n, h]
    cols = offsets[:, 1:2] + torch.arange(w, device=x.device)  # [n, w]
    cols = torch.where(flips[:, None], cols.flip(1), cols)
    batch = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # [n, h, w, c]
    return out.permute(0, 3, 1, 2)  # channels-last memory order


def cutout(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Cutout (DeVries & Taylor 2017): per image, a ``size`` x ``size`` square centred on
    a uniformly drawn pixel, clipped at the borders, is set to zero in every channel."""
    n, _, h, w = x.shape
    top = torch.randint(0, h, (n,), generator=generator).to(x.device) - size // 2
    left = torch.randint(0, w, (n,), generator=generator).to(x.device) - size // 2
    r = torch.arange(h, device=x.device)[None, :, None] - top[:, None, None]  # [n, h, 1]
    c = torch.arange(w, device=x.device)[None, None, :] - left[:, None, None]  # [n, 1, w]
    hole = (r >= 0) & (r < size) & (c >= 0) & (c < size)  # [n, h, w]
    return x.masked_fill(hole[:, None], 0.0)
