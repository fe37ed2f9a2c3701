"""The connection engine on real networks: exact endpoints, closed-form midpoints, and
gradients that reach only the trainable bends."""

import copy

import torch
from torch import nn

from mcbench.toolkit.curves import CurveModel
from mcbench_plugins.connections.bezier import Bezier
from mcbench_plugins.connections.linear import Linear
from mcbench_plugins.connections.polychain import Polychain


def small_bn_net():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )


def endpoints(seed=0):
    torch.manual_seed(seed)
    a, b = small_bn_net(), small_bn_net()
    return a, b


def params_of(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_curve_passes_exactly_through_both_endpoints():
    a, b = endpoints()
    for connection in (Linear(), Bezier(bends=3), Bezier(bends=5), Polychain(bends=4)):
        curve = CurveModel(small_bn_net(), a.state_dict(), b.state_dict(), connection)
        with torch.no_grad():
            curve.interior.normal_()  # the endpoints must not depend on the bends
        for t, ref in ((0.0, a), (1.0, b)):
            got = params_of(curve.model_at(t))
            for name, value in params_of(ref).items():
                assert torch.equal(got[name], value), (connection, t, name)


def test_bezier_and_polychain_midpoints_match_closed_forms():
    a, b = endpoints()
    pa = torch.cat([p.flatten() for p in params_of(a).values()])
    pb = torch.cat([p.flatten() for p in params_of(b).values()])
    bez = CurveModel(small_bn_net(), a.state_dict(), b.state_dict(), Bezier(bends=3))
    theta = torch.randn_like(bez.interior[0])
    with torch.no_grad():
        bez.interior[0] = theta
    # (1-t)^2 w0 + 2t(1-t) theta + t^2 w2 at t = 0.3
    expected = 0.49 * pa + 0.42 * theta + 0.09 * pb
    assert torch.allclose(bez.weights(0.3), expected, atol=1e-6)
    poly = CurveModel(small_bn_net(), a.state_dict(), b.state_dict(), Polychain(bends=3))
    with torch.no_grad():
        poly.interior[0] = theta
    assert torch.allclose(poly.weights(0.5), theta)  # the bend itself
    assert torch.allclose(poly.weights(0.25), 0.5 * pa + 0.5 * theta, atol=1e-6)


def test_interior_bends_start_evenly_between_the_endpoints():
    a, b = endpoints()
    curve = CurveModel(small_bn_net(), a.state_dict(), b.state_dict(), Polychain(bends=4))
    pa, pb = curve.start, curve.end
    assert torch.allclose(curve.interior[0], 2 / 3 * pa + 1 / 3 * pb, atol=1e-6)
    assert torch.allclose(curve.interior[1], 1 / 3 * pa + 2 / 3 * pb, atol=1e-6)


def test_functional_forward_equals_the_materialised_model():
    a, b = endpoints()
    curve = CurveModel(small_bn_net(), a.state_dict(), b.state_dict(), Bezier(bends=3))
    with torch.no_grad():
        curve.interior.add_(0.1 * torch.randn_like(curve.interior))
    x = torch.randn(5, 3, 8, 8)
    curve.eval()
    model = curve.model_at(0.37)
    model.eval()
    assert torch.allclose(curve(x, 0.37), model(x), atol=1e-6)


def test_gradients_reach_only_the_interior_bends():
    a, b = endpoints()
    curve = CurveModel(small_bn_net(), a.state_dict(), b.state_dict(), Bezier(bends=3))
    curve.train()
    logits, w = curve.forward_with_weights(torch.randn(4, 3, 8, 8), 0.5)
    (logits.sum() + w.pow(2).sum()).backward()
    trainable = [n for n, p in curve.named_parameters() if p.requires_grad]
    assert trainable == ["interior"]
    assert curve.interior.grad is not None and curve.interior.grad.abs().sum() > 0


def test_works_on_a_timm_model():
    import timm

    torch.manual_seed(0)
    make = lambda: timm.create_model("resnet10t", pretrained=False, num_classes=3)
    a, b = make(), make()
    curve = CurveModel(make(), a.state_dict(), b.state_dict(), Bezier(bends=3))
    x = torch.randn(2, 3, 32, 32)
    curve.eval()
    model = curve.model_at(0.5)
    model.eval()
    assert torch.allclose(curve(x, 0.5), model(x), atol=1e-5)
    start = copy.deepcopy(a).eval()
    end_model = curve.model_at(0.0).eval()
    assert all(torch.equal(p, q) for p, q in zip(start.parameters(), end_model.parameters()))
