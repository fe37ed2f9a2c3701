"""The path repair's distillation term: its loss against a hand computation, the teacher
leaving the endpoints as they were, and the parameters that stay out of cache keys while
at their defaults (so earlier path results keep their keys)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mcbench.registry.params import to_plain
from mcbench.toolkit.curves import CurveModel
from mcbench_plugins.connections.bezier import Bezier
from mcbench_plugins.repairs.path import PathRepair, Teacher, curve_loss, distilled_loss


def net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def test_the_distilled_loss_is_the_weighted_sum_computed_by_hand():
    a, b = net(1).eval(), net(2).eval()
    curve = CurveModel(net(3), a.state_dict(), b.state_dict(), Bezier())
    x, y = (
        torch.randn(5, 6, generator=torch.Generator().manual_seed(0)),
        torch.tensor([0, 1, 2, 0, 1]),
    )
    t, wd, weight, temperature = torch.tensor(0.3), 1e-3, 0.7, 2.5
    got = distilled_loss(curve, x, y, t, wd, Teacher((a, b), temperature), weight).item()

    with torch.no_grad():
        logits, w = curve.forward_with_weights(x, t)
        teacher = (torch.softmax(a(x) / temperature, 1) + torch.softmax(b(x) / temperature, 1)) / 2
        student = torch.log_softmax(logits / temperature, 1)
        kl = sum(
            sum(p * (math.log(p) - q) for p, q in zip(row_p.tolist(), row_q.tolist()))
            for row_p, row_q in zip(teacher, student)
        ) / len(x)
        hard = -sum(float(torch.log_softmax(logits, 1)[i, c]) for i, c in enumerate(y)) / len(x)
        expected = (
            (1 - weight) * hard + weight * temperature**2 * kl + 0.5 * wd * float(w.pow(2).sum())
        )
    assert got == pytest.approx(expected, rel=1e-5)
    # at weight 0 it is the plain curve loss
    plain = distilled_loss(curve, x, y, t, wd, Teacher((a, b), temperature), 0.0)
    assert plain.item() == pytest.approx(curve_loss(curve, x, y, t, wd).item(), rel=1e-6)


def test_the_teacher_leaves_the_endpoints_train_flags_and_has_no_gradient():
    a, b = net(1).train(), net(2).eval()
    probabilities = Teacher((a, b), 4.0)(torch.randn(4, 6))
    assert a.training and not b.training
    assert not probabilities.requires_grad
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(4))


def test_new_path_parameters_stay_out_of_the_key_at_their_defaults():
    assert "distill" not in to_plain(PathRepair()) and "temperature" not in to_plain(PathRepair())
    assert to_plain(PathRepair(distill=0.5))["distill"] == 0.5
    assert "temperature" not in to_plain(PathRepair(distill=0.5))
    assert to_plain(PathRepair(distill=0.5, temperature=2.0))["temperature"] == 2.0


@pytest.mark.parametrize("values", [{"distill": 1.5}, {"distill": -0.1}, {"temperature": 0.0}])
def test_out_of_range_distillation_is_refused(values):
    with pytest.raises(ValueError):
        PathRepair(**values)
