"""Mini-batch SGD over in-memory uint8 images, resumable from per-epoch checkpoints."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, cast

import torch
from torch import nn

from mcbench.kinds.data import ImageSet, as_batch
from mcbench.kinds.training import Checkpoint, FitOptions
from mcbench.toolkit.augment import cutout as erase_square
from mcbench.toolkit.augment import random_crop_flip
from mcbench.toolkit.precision import autocast

Schedule = Literal["garipov", "cosine", "constant", "onecycle"]
"""The learning-rate schedules ``lr_factor`` knows (a settings field's type)."""


@dataclass(frozen=True)
class SGDFields:
    """The optimiser settings of a training: mini-batch SGD with momentum and weight decay
    over a learning-rate schedule. The ``train`` section and every repair that trains
    inherit them, re-declaring only the fields whose default or help they change; a
    subclass's ``__post_init__`` calls this one's."""

    epochs: int = field(default=200, metadata={"help": "passes over the training set"})
    batch_size: int = field(default=128, metadata={"help": "images per SGD step"})
    lr: float = field(default=0.05, metadata={"help": "initial learning rate"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum"})
    weight_decay: float = field(default=5e-4, metadata={"help": "L2 penalty (SGD weight decay)"})
    schedule: Schedule = field(
        default="garipov", metadata={"help": "learning-rate schedule over the epochs"}
    )

    def __post_init__(self):
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")


ONECYCLE_PEAK = 0.25


def lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    """Multiplier of the initial learning rate at the start of ``epoch`` (0-based).
    garipov: constant for the first half, linear decay to 1% at 90%, then flat.
    onecycle: linear warm-up from 10% to the full rate over the first quarter, then linear
    decay towards 0 (short schedules that reach accuracy fast)."""
    alpha = epoch / epochs
    if schedule == "constant":
        return 1.0
    if schedule == "onecycle":
        if alpha < ONECYCLE_PEAK:
            return 0.1 + 0.9 * alpha / ONECYCLE_PEAK
        return (1.0 - alpha) / (1.0 - ONECYCLE_PEAK)
    if schedule == "cosine":
        import math

        return 0.5 * (1 + math.cos(math.pi * alpha))
    if alpha <= 0.5:
        return 1.0
    if alpha <= 0.9:
        return 1.0 - (alpha - 0.5) / 0.4 * 0.99
    return 0.01


@contextmanager
def seeded(seed: int):
    """Within: the global torch RNGs (the CPU's and those of the initialised CUDA devices)
    seeded with ``seed``, for what draws from them (a network's initialisation, dropout).
    Their states before are restored on exit, so code after it sees no change."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextmanager
def requires_grad_only(model: nn.Module, params=()):
    """Within: of ``model``'s parameters only ``params`` record gradients (none by default),
    so a backward pass does no work for the others; every flag is restored on exit."""
    keep = {id(p) for p in params}
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(id(p) in keep)
        for p in params:  # parameters outside the model, too
            p.requires_grad_(True)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def training_seconds(checkpoint: Checkpoint | None) -> float:
    """The seconds ``fit`` had trained for when it saved ``checkpoint`` (0 without one): a
    resumed stage adds them to its own, so its time counts the epochs before the kill."""
    state = checkpoint.load() if checkpoint else None
    return float(state.get("seconds", 0.0)) if isinstance(state, dict) else 0.0


LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor]
"""loss(model, images, labels, generator); draw any randomness from ``generator`` (it is
checkpointed with the training state)."""


def cross_entropy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    return nn.functional.cross_entropy(model(x), y)


def fit(
    model: nn.Module,
    data: ImageSet,
    sgd: SGDFields,
    run: FitOptions,
    *,
    augment: bool,
    loss_fn: LossFn = cross_entropy,
    cutout: int = 0,
) -> list[float]:
    """Train ``model`` in place with the optimiser settings ``sgd``, on ``run.device``;
    returns the mean training loss of every epoch.

    The data is copied to the device once and batches are drawn there, randomly cropped
    and flipped with ``augment``. With ``cutout`` > 0 every image also has a square of
    that side erased (``mcbench.toolkit.augment.cutout``), after the crop and flip.
    ``run.precision`` is the forward passes' (``mcbench.toolkit.precision``); with
    ``run.compile`` the loss sees ``torch.compile(model)``, which shares ``model``'s
    parameters.

    Deterministic given ``run.seed`` (on one device), also across an interruption: the
    data order, augmentation and global RNG states are saved with every epoch's
    ``run.checkpoint``. The global RNGs are seeded for the training only (``seeded``):
    the caller's are left as they were.
    """
    epochs, batch_size, lr = sgd.epochs, sgd.batch_size, sgd.lr
    device, seed, checkpoint, on_epoch = run.device, run.seed, run.checkpoint, run.on_epoch
    with seeded(seed):
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.SGD(
            trainable, lr=lr, momentum=sgd.momentum, weight_decay=sgd.weight_decay
        )
        generator = torch.Generator().manual_seed(seed)
        losses: list[float] = []
        start, spent, started = 0, 0.0, time.perf_counter()
        state = checkpoint.load() if checkpoint else None
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_rng"])
            losses, start = list(state["losses"]), int(state["epoch"])
            spent = float(state.get("seconds", 0.0))
        images, labels = data.images.to(device), data.labels.to(device)
        n = len(data)
        # torch.compile of a module returns a module (an OptimizedModule wrapping it).
        forward = cast(nn.Module, torch.compile(model)) if run.compile else model
        for epoch in range(start, epochs):
            for group in optimizer.param_groups:
                group["lr"] = lr * lr_factor(sgd.schedule, epoch, epochs)
            model.train()
            order = torch.randperm(n, generator=generator).to(device)
            total, count = 0.0, 0
            for begin in range(0, n, batch_size):
                index = order[begin : begin + batch_size]
                x = as_batch(images[index])
                if augment:
                    x = random_crop_flip(x, generator)
                if cutout:
                    x = erase_square(x, cutout, generator)
                with autocast(device, run.precision):
                    loss = loss_fn(forward, x, labels[index], generator)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(index)
                count += len(index)
            losses.append(total / count)
            if checkpoint:
                checkpoint.save(
                    {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "generator": generator.get_state(),
                        "torch_rng": torch.get_rng_state(),
                        "losses": losses,
                        "epoch": epoch + 1,
                        "seconds": spent + time.perf_counter() - started,
                    }
                )
            if on_epoch:
                on_epoch(epoch, losses[-1])
        return losses
