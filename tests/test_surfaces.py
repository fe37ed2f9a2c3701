"""The surface engine and the surface repair: exact corners, closed-form degree-1 surfaces,
Bernstein coefficients checked by brute force, gradients that reach only the trainable
control points, and the repair end to end."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from mcbench.kinds import RepairContext
from mcbench.kinds.data import ImageSet, as_batch
from mcbench.toolkit.surfaces import (
    SurfaceModel,
    coefficients,
    control_indices,
    corner_positions,
    grid_points,
    sample_point,
)
from mcbench_plugins.repairs.surface import SurfaceRepair

CPU = torch.device("cpu")
CORNERS = {"triangle": 3, "square": 4}
SHAPES_AND_DEGREES = [(s, d) for s in CORNERS for d in (1, 2, 3)]


def small_bn_net():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )


def corner_models(shape, seed=0):
    torch.manual_seed(seed)
    models = [small_bn_net() for _ in range(CORNERS[shape])]
    with torch.no_grad():  # non-trivial BatchNorm parameters and statistics, as if trained
        for bn in (m[1] for m in models):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_()
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
    return models


def surface_through(shape, degree, seed=0):
    models = corner_models(shape, seed)
    return SurfaceModel(small_bn_net(), [m.state_dict() for m in models], shape, degree), models


def params_of(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def in_triangle(u, v):
    return (u, v) if u + v <= 1 else (1 - u, 1 - v)


@pytest.mark.parametrize("shape, degree", SHAPES_AND_DEGREES)
def test_the_corners_are_the_endpoint_models_exactly(shape, degree):
    surface, models = surface_through(shape, degree)
    with torch.no_grad():
        surface.interior.normal_()  # the corners must not depend on the other control points
    surface.eval()
    x = torch.randn(2, 3, 8, 8)
    for uv, ref in zip(corner_positions(shape), models, strict=True):
        assert torch.equal(surface.weights(uv), flat(ref)), (shape, degree, uv)
        got = surface.model_at(uv)
        for name, value in params_of(ref).items():
            assert torch.equal(params_of(got)[name], value), (shape, degree, uv, name)
        # the same BatchNorm statistics, so the same outputs, bit for bit
        got.load_state_dict({k: v for k, v in ref.state_dict().items() if "running" in k}, False)
        assert torch.equal(got.eval()(x), ref.eval()(x))
    assert surface.corner_positions() == corner_positions(shape)


def test_a_degree_1_square_is_bilinear_interpolation():
    surface, models = surface_through("square", 1)
    assert surface.interior.shape == (0, surface.corners.shape[1])
    w0, w1, w2, w3 = (
        torch.cat([m.state_dict()[n].reshape(-1) for n in params_of(m)]) for m in models
    )
    g = torch.Generator().manual_seed(1)
    for _ in range(10):
        u, v = torch.rand(2, generator=g).tolist()
        expected = (1 - u) * (1 - v) * w0 + u * (1 - v) * w1 + (1 - u) * v * w2 + u * v * w3
        assert torch.allclose(surface.weights((u, v)), expected, atol=1e-6)


def test_a_degree_1_triangle_is_barycentric_interpolation():
    surface, models = surface_through("triangle", 1)
    assert surface.interior.shape[0] == 0  # nothing to train
    w0, w1, w2 = (torch.cat([m.state_dict()[n].reshape(-1) for n in params_of(m)]) for m in models)
    g = torch.Generator().manual_seed(2)
    for _ in range(10):
        u, v = in_triangle(*torch.rand(2, generator=g).tolist())
        expected = (1 - u - v) * w0 + u * w1 + v * w2
        assert torch.allclose(surface.weights((u, v)), expected, atol=1e-6)


@pytest.mark.parametrize("shape", CORNERS)
def test_the_untrained_surface_is_the_degree_1_surface(shape):
    flat_surface, _ = surface_through(shape, 1)
    for degree in (2, 3):
        curved, _ = surface_through(shape, degree)
        for uv in grid_points(shape, 7):
            assert torch.allclose(curved.weights(uv), flat_surface.weights(uv), atol=1e-6)


def test_control_points_sit_in_index_order():
    surface, _ = surface_through("triangle", 3)
    with torch.no_grad():
        surface.interior.normal_()
    points = surface.control_points()
    assert points.shape == (10, surface.corners.shape[1])
    assert surface.indices == control_indices("triangle", 3)
    for row, index in zip(surface.corner_rows, [(3, 0, 0), (0, 3, 0), (0, 0, 3)], strict=True):
        assert surface.indices[row] == index
    # every control point but the corners is trained, those on the edges included
    assert surface.interior_indices == [
        (2, 1, 0),
        (1, 2, 0),
        (2, 0, 1),
        (1, 1, 1),
        (0, 2, 1),
        (1, 0, 2),
        (0, 1, 2),
    ]
    assert torch.equal(points[surface.corner_rows], surface.corners)
    assert torch.equal(points[surface.interior_rows], surface.interior.detach())
    # the one truly interior point (1, 1, 1) at the centre weighs 3! / (1! 1! 1!) (1/3)^3 = 2/9
    centre = coefficients("triangle", 3, (1 / 3, 1 / 3))
    assert centre[surface.indices.index((1, 1, 1))].item() == pytest.approx(2 / 9)


def brute_force_triangle(degree, u, v):
    a, b, c = 1 - u - v, u, v
    return {
        (i, j, degree - i - j): math.factorial(degree)
        / (math.factorial(i) * math.factorial(j) * math.factorial(degree - i - j))
        * a**i
        * b**j
        * c ** (degree - i - j)
        for i in range(degree + 1)
        for j in range(degree + 1 - i)
    }


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(SHAPES_AND_DEGREES + [("triangle", 5), ("square", 4)]),
    st.floats(0, 1),
    st.floats(0, 1),
)
def test_coefficients_are_a_partition_of_unity(shape_degree, u, v):
    shape, degree = shape_degree
    if shape == "triangle":
        u, v = in_triangle(u, v)
    c = coefficients(shape, degree, (u, v))
    assert c.dtype == torch.float32 and c.shape == (len(control_indices(shape, degree)),)
    assert torch.all(c >= 0)
    assert c.double().sum().item() == pytest.approx(1.0, abs=1e-5)
    if shape == "triangle":
        expected = brute_force_triangle(degree, u, v)
        assert set(expected) == set(control_indices(shape, degree))
        for index, value in zip(control_indices(shape, degree), c.tolist(), strict=True):
            assert value == pytest.approx(expected[index], abs=1e-6)
    else:
        for (i, j), value in zip(control_indices(shape, degree), c.tolist(), strict=True):
            bu = math.comb(degree, i) * u**i * (1 - u) ** (degree - i)
            bv = math.comb(degree, j) * v**j * (1 - v) ** (degree - j)
            assert value == pytest.approx(bu * bv, abs=1e-6)


@pytest.mark.parametrize("shape, degree", SHAPES_AND_DEGREES)
def test_coefficients_on_a_dense_grid(shape, degree):
    for uv in grid_points(shape, 31):
        c = coefficients(shape, degree, uv)
        assert torch.all(c >= 0), uv
        assert c.double().sum().item() == pytest.approx(1.0, abs=1e-5), uv
    for k, uv in enumerate(corner_positions(shape)):  # one-hot, exactly
        c = coefficients(shape, 1, uv)
        assert torch.equal(c, torch.eye(CORNERS[shape])[k])


def test_points_outside_the_domain_are_refused():
    with pytest.raises(ValueError, match="outside the triangle"):
        coefficients("triangle", 2, (0.7, 0.6))
    with pytest.raises(ValueError, match="outside the square"):
        coefficients("square", 2, (1.2, 0.5))
    with pytest.raises(ValueError, match="shape"):
        coefficients("hexagon", 2, (0.2, 0.2))


@pytest.mark.parametrize("shape", CORNERS)
def test_gradients_reach_only_the_interior_control_points(shape):
    surface, _ = surface_through(shape, 2)
    surface.train()
    template_before = params_of(surface.template)
    corners_before = surface.corners.clone()
    interior_before = surface.interior.detach().clone()
    uv = sample_point(shape, torch.Generator().manual_seed(3))
    logits, w = surface.forward_with_weights(torch.randn(4, 3, 8, 8), uv)
    (logits.sum() + w.pow(2).sum()).backward()
    trainable = [n for n, p in surface.named_parameters() if p.requires_grad]
    assert trainable == ["interior"]
    assert surface.interior.grad is not None and surface.interior.grad.abs().sum() > 0
    assert not surface.corners.requires_grad and surface.corners.grad is None
    assert all(p.grad is None for p in surface.template.parameters())
    torch.optim.SGD(surface.parameters(), lr=0.1, momentum=0.9).step()
    assert torch.equal(surface.corners, corners_before)
    for name, value in params_of(surface.template).items():
        assert torch.equal(value, template_before[name])
    assert not torch.equal(surface.interior.detach(), interior_before)


@pytest.mark.parametrize("shape", CORNERS)
def test_grid_points(shape):
    for steps in (2, 3, 5, 8):
        points = grid_points(shape, steps)
        expected = steps * steps if shape == "square" else steps * (steps + 1) // 2
        assert len(points) == expected == len(set(points))
        assert set(corner_positions(shape)) <= set(points)  # exactly, as floats
        assert all(0 <= u <= 1 and 0 <= v <= 1 for u, v in points)
        if shape == "triangle":
            assert all(u + v <= 1 + 1e-9 for u, v in points)
    assert (0.25, 0.5) in grid_points(shape, 5)
    with pytest.raises(ValueError, match="steps"):
        grid_points(shape, 1)


@pytest.mark.parametrize("shape", CORNERS)
def test_sample_point_covers_the_domain_uniformly(shape):
    g = torch.Generator().manual_seed(4)
    points = torch.stack([sample_point(shape, g) for _ in range(4000)])
    assert torch.all(points >= 0) and torch.all(points <= 1)
    if shape == "triangle":
        assert torch.all(points.sum(1) <= 1)
        # the centroid of the triangle is (1/3, 1/3); of a quarter of it, near the corner
        # (0, 0), a quarter of the area
        assert points.mean(0).tolist() == pytest.approx([1 / 3, 1 / 3], abs=0.02)
        assert (points.sum(1) <= 0.5).float().mean().item() == pytest.approx(0.25, abs=0.03)
    else:
        assert points.mean(0).tolist() == pytest.approx([0.5, 0.5], abs=0.02)
        assert (points < 0.5).all(1).float().mean().item() == pytest.approx(0.25, abs=0.03)


# -- the repair plugin ------------------------------------------------------------------


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(48, 16), nn.ReLU(), nn.Linear(16, 3))


def separable(n=96, seed=0) -> ImageSet:
    """Class c: channel c bright, the others dark."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=g)
    images = torch.randint(0, 80, (n, 3, 4, 4), generator=g, dtype=torch.uint8)
    images[torch.arange(n), labels] += 150
    return ImageSet(images, labels)


def context(count, data=None) -> RepairContext:
    torch.manual_seed(11)
    return RepairContext(
        endpoints=tuple(mlp() for _ in range(count)),
        build=mlp,
        bonafide=data or separable(),
        connection=None,
        num_classes=3,
        device=CPU,
        seed=5,
        augment=False,
    )


def centre_loss(model: nn.Module, data: ImageSet) -> float:
    with torch.no_grad():
        return nn.functional.cross_entropy(model(as_batch(data.images)), data.labels).item()


@pytest.mark.parametrize("shape, centre", [("triangle", (1 / 3, 1 / 3)), ("square", (0.5, 0.5))])
def test_the_surface_repair_end_to_end(shape, centre):
    repair = SurfaceRepair(shape=shape, degree=2, epochs=5, batch_size=16, lr=0.5, grid=4)
    assert repair.endpoint_count == CORNERS[shape]
    ctx = context(repair.endpoint_count)
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in ctx.endpoints]
    state = repair.fit(ctx)
    assert set(state) == {"interior"} and state["interior"].device.type == "cpu"
    assert all(
        torch.equal(m.state_dict()[k], b[k]) for m, b in zip(ctx.endpoints, before) for k in b
    )  # endpoints untouched
    assert torch.equal(state["interior"], repair.fit(ctx)["interior"])  # deterministic

    path = repair.path(ctx, state, [0.0, 0.5, 1.0])  # the 1-D grid is ignored
    assert tuple(path.points) == grid_points(shape, 4)
    fitted = SurfaceModel(mlp(), [m.state_dict() for m in ctx.endpoints], shape, 2)
    untrained_centre = fitted.model_at(centre)
    with torch.no_grad():
        fitted.interior.copy_(state["interior"])
    for uv in path.points:
        assert torch.equal(flat(path.model_at(uv)), fitted.weights(uv))
    for uv, ref in zip(corner_positions(shape), ctx.endpoints, strict=True):
        assert torch.equal(flat(path.model_at(uv)), flat(ref))
    # about 1.1 untrained (as at the corners), about 0.02 / 0.2 trained
    assert centre_loss(path.model_at(centre), ctx.bonafide) < 0.5 * centre_loss(
        untrained_centre, ctx.bonafide
    )


def test_the_surface_repair_refuses_the_wrong_number_of_endpoints():
    with pytest.raises(ValueError, match="joins 3 endpoint models, got 2"):
        SurfaceRepair(epochs=1).fit(context(2))
    with pytest.raises(ValueError, match="joins 4 endpoint models, got 3"):
        SurfaceRepair(shape="square", epochs=1).path(context(3), {}, [0.5])


def test_a_degree_1_triangle_has_nothing_to_train():
    state = SurfaceRepair(degree=1, epochs=1).fit(context(3))
    assert state["interior"].shape == (0, sum(p.numel() for p in mlp().parameters()))


def test_invalid_values_are_refused():
    with pytest.raises(ValueError, match="shape"):
        SurfaceRepair(shape="hexagon")
    with pytest.raises(ValueError, match="degree"):
        SurfaceRepair(degree=0)
    with pytest.raises(ValueError, match="grid"):
        SurfaceRepair(grid=1)
    with pytest.raises(ValueError, match="epochs"):
        SurfaceRepair(epochs=0)
    with pytest.raises(ValueError, match="lr"):
        SurfaceRepair(lr=0)
