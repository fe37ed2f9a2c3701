"""Running an evasion attack over evaluation images: shared by the robustness metrics."""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from mcbench.kinds import EvasionAttack, Goal
from mcbench.kinds.data import ImageSet, as_batch
from mcbench.toolkit.training import LossFn, requires_grad_only


@contextmanager
def frozen(model: nn.Module):
    """The model in eval mode with no parameter recording gradients (an input attack then
    differentiates through the network only for the input); restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with requires_grad_only(model):
            yield model
    finally:
        model.train(was_training)


def first(data: ImageSet, samples: int) -> ImageSet:
    return data if samples == 0 or samples >= len(data) else data.subset(torch.arange(samples))


def adversarial_logits(
    model: nn.Module,
    data: ImageSet,
    attack: EvasionAttack,
    goal: Goal,
    device: torch.device,
    batch_size: int,
    seed: int,
):
    """(logits on the attacked images, true labels), both on the CPU; the attack's random
    starts come from one generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    outputs, labels = [], []
    with frozen(model):
        for start in range(0, len(data), batch_size):
            x = as_batch(data.images[start : start + batch_size].to(device))
            y = data.labels[start : start + batch_size].to(device)
            adversarial = attack.perturb(model, x, y, goal=goal, generator=generator)
            with torch.no_grad():
                outputs.append(model(adversarial).float().cpu())
            labels.append(y.cpu())
    return torch.cat(outputs), torch.cat(labels)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return F.cross_entropy(logits.double(), labels).item()


def adversarial_training_loss(attack: EvasionAttack) -> LossFn:
    """A training loss (mcbench.toolkit.training.LossFn): cross-entropy on the attack's highest-loss
    points. The attack runs on the model as it is being trained (BatchNorm on batch
    statistics, as Madry et al. generate their training points) with no parameter
    recording gradients, so only the final forward pass trains the model."""

    def loss(
        model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        with requires_grad_only(model):
            adversarial = attack.perturb(model, x, y, goal="loss", generator=generator)
        return F.cross_entropy(model(adversarial.detach()), y)

    return loss
