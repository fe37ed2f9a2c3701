"""Numeric precision of a run's forward passes: fp32, or bf16 autocast.

Under bf16 only the operations autocast lists (convolutions, matrix products) run in
bfloat16; parameters, BatchNorm statistics, a curve's weight vectors and the losses stay
in float32, and backward passes run outside the autocast region."""

from __future__ import annotations

from contextlib import nullcontext

import torch

PRECISIONS = ("fp32", "bf16")
CHOICES = ("auto", *PRECISIONS)


def resolve_precision(name: str, device_type: str) -> str:
    """``auto`` is bf16 on CUDA and fp32 elsewhere; fp32 and bf16 are themselves."""
    if name == "auto":
        return "bf16" if device_type == "cuda" else "fp32"
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(CHOICES)}, got {name!r}")
    return name


def autocast(device: torch.device | str, precision: str):
    """The context forward passes run in at ``precision`` on ``device``."""
    if precision == "fp32":
        return nullcontext()
    if precision == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
