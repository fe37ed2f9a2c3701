"""The clean_accuracy, attack_success_rate and loss metrics on a hand-built linear model."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mcbench.kinds import MetricContext
from mcbench.kinds.data import ImageSet
from mcbench.toolkit.evaluation import predict
from mcbench_plugins.metrics.attack_success_rate import AttackSuccessRate
from mcbench_plugins.metrics.clean_accuracy import CleanAccuracy
from mcbench_plugins.metrics.loss import Loss

# Two-pixel images (p0, p1) in 0..255; mcbench feeds the model p / 255, so with the weights
# below the logits are (p0/100, p1/100, 1 - (p0 + p1)/100).
CLEAN_PIXELS = [(200, 50), (10, 250), (0, 0), (150, 20), (30, 10), (5, 90)]
CLEAN_LABELS = [0, 1, 2, 1, 0, 1]
# predictions:   0  1  2  0  2  1  -> 4 of 6 correct
TRIGGERED_PIXELS = [(0, 0), (200, 50), (30, 10), (5, 5), (100, 0)]
# predictions:      2       0          2         2       0


def hand_logits(pixels) -> torch.Tensor:
    return torch.tensor(
        [[p0 / 100, p1 / 100, 1 - (p0 + p1) / 100] for p0, p1 in pixels], dtype=torch.float64
    )


def make_model() -> nn.Module:
    layer = nn.Linear(2, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]) * 2.55)
        layer.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))
    return nn.Sequential(nn.Flatten(), layer)


def image_set(pixels, labels) -> ImageSet:
    images = torch.tensor(pixels, dtype=torch.uint8).view(len(pixels), 2, 1, 1)
    return ImageSet(images, torch.tensor(labels, dtype=torch.int64))


def context(model=None, triggered_labels=(2, 2, 2, 2, 2), batch_size=4) -> MetricContext:
    triggered = (
        image_set(TRIGGERED_PIXELS, list(triggered_labels))
        if triggered_labels is not None
        else None
    )
    return MetricContext(
        model=model or make_model(),
        clean=image_set(CLEAN_PIXELS, CLEAN_LABELS),
        triggered=triggered,
        num_classes=3,
        device=torch.device("cpu"),
        batch_size=batch_size,
        predict=predict,
    )


def test_hand_logits_match_the_model():
    model = make_model()
    images = image_set(CLEAN_PIXELS, CLEAN_LABELS).images.float() / 255
    assert torch.allclose(model(images).double(), hand_logits(CLEAN_PIXELS), atol=1e-5)


def test_clean_accuracy_counts_correct_predictions():
    value = CleanAccuracy().compute(context())
    assert isinstance(value, float)
    assert value == pytest.approx(4 / 6, abs=1e-12)


@pytest.mark.parametrize(
    "labels, hits", [((2, 2, 2, 2, 2), 3), ((2, 0, 0, 2, 0), 4), ((1, 1, 1, 1, 1), 0)]
)
def test_attack_success_rate_counts_hits_on_the_attacker_label(labels, hits):
    value = AttackSuccessRate().compute(context(triggered_labels=labels))
    assert isinstance(value, float)
    assert value == pytest.approx(hits / 5, abs=1e-12)


def test_loss_is_the_mean_cross_entropy():
    value = Loss().compute(context())
    assert isinstance(value, float)
    labels = torch.tensor(CLEAN_LABELS)
    model = make_model()
    images = image_set(CLEAN_PIXELS, CLEAN_LABELS).images.float() / 255
    assert value == pytest.approx(F.cross_entropy(model(images), labels).item(), abs=1e-5)
    logits = hand_logits(CLEAN_PIXELS)
    log_softmax = logits - logits.exp().sum(dim=1, keepdim=True).log()
    manual = -log_softmax[torch.arange(len(labels)), labels].mean().item()
    assert value == pytest.approx(manual, abs=1e-5)
    by_hand = (
        sum(
            math.log(sum(math.exp(v) for v in row)) - row[y]
            for row, y in zip(hand_logits(CLEAN_PIXELS).tolist(), CLEAN_LABELS)
        )
        / 6
    )
    assert value == pytest.approx(by_hand, abs=1e-5)


def test_metrics_share_one_forward_pass_per_data_set():
    model = make_model()
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(len(out)))
    ctx = context(model, batch_size=100)
    CleanAccuracy().compute(ctx)
    Loss().compute(ctx)
    assert calls == [len(CLEAN_PIXELS)]
    AttackSuccessRate().compute(ctx)
    assert calls == [len(CLEAN_PIXELS), len(TRIGGERED_PIXELS)]


def test_empty_triggered_set_gives_nan():
    empty = ImageSet(torch.zeros(0, 2, 1, 1, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64))
    ctx = dataclasses.replace(context(), triggered=empty)
    assert math.isnan(AttackSuccessRate().compute(ctx))


def test_the_context_is_frozen_and_notes_go_through_its_callback():
    noted = {}
    ctx = dataclasses.replace(context(), note=noted.__setitem__)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.model = make_model()
    ctx.note("clean_accuracy", {"method": "count"})
    assert noted == {"clean_accuracy": {"method": "count"}}
