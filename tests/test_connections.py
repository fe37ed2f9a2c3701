"""The linear, bezier and polychain connections: their coefficients c_k(t)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mcbench_plugins.connections.bezier import Bezier
from mcbench_plugins.connections.linear import Linear
from mcbench_plugins.connections.polychain import Polychain

CONNECTIONS = [
    Linear(),
    Bezier(),
    Bezier(bends=4),
    Bezier(bends=6),
    Polychain(),
    Polychain(bends=4),
    Polychain(bends=5),
]
GRID = [i / 40 for i in range(41)]


def one_hot(k: int, size: int) -> torch.Tensor:
    out = torch.zeros(size, dtype=torch.float32)
    out[k] = 1.0
    return out


@pytest.mark.parametrize("connection", CONNECTIONS, ids=repr)
def test_int_float_and_tensor_arguments_agree(connection):
    for t in (0, 1):
        assert torch.equal(connection.coefficients(t), connection.coefficients(float(t)))
    for t in (0.0, 0.3, 0.75, 1.0):
        from_float = connection.coefficients(t)
        assert from_float.dtype == torch.float32 and from_float.shape == (connection.num_bends,)
        assert torch.equal(from_float, connection.coefficients(torch.tensor(t)))
        assert torch.equal(
            from_float, connection.coefficients(torch.tensor(t, dtype=torch.float64))
        )
        assert from_float.device == torch.device("cpu")


def test_linear():
    assert Linear().num_bends == 2
    for t in GRID:
        expected = torch.tensor([1 - t, t], dtype=torch.float32)
        assert torch.allclose(Linear().coefficients(t), expected, atol=1e-7)


@pytest.mark.parametrize("bends", [3, 4, 6])
def test_bezier_matches_the_bernstein_closed_form(bends):
    degree = bends - 1
    assert Bezier(bends=bends).num_bends == bends
    for t in GRID:
        expected = [math.comb(degree, k) * t**k * (1 - t) ** (degree - k) for k in range(bends)]
        got = Bezier(bends=bends).coefficients(t).double()
        assert torch.allclose(got, torch.tensor(expected, dtype=torch.float64), atol=1e-6)


def test_bezier_midpoints_and_quadratic_form():
    assert torch.equal(Bezier().coefficients(0.5), torch.tensor([0.25, 0.5, 0.25]))
    assert torch.equal(Bezier(bends=4).coefficients(0.5), torch.tensor([1, 3, 3, 1]) / 8)
    t = 0.3
    assert torch.allclose(
        Bezier().coefficients(t), torch.tensor([(1 - t) ** 2, 2 * t * (1 - t), t**2]), atol=1e-7
    )


@pytest.mark.parametrize("bends", [3, 4, 5])
def test_polychain_is_piecewise_linear_through_the_bends(bends):
    chain = Polychain(bends=bends)
    knots = [k / (bends - 1) for k in range(bends)]
    for k, t in enumerate(knots):
        assert torch.allclose(chain.coefficients(t), one_hot(k, bends), atol=1e-6)
    for k in range(bends - 1):
        midway = (k + 0.5) / (bends - 1)
        expected = torch.zeros(bends)
        expected[k] = expected[k + 1] = 0.5
        assert torch.allclose(chain.coefficients(midway), expected, atol=1e-6)
    # c_k(t) is the linear interpolation of the k-th one-hot vector between the knots
    for t in GRID:
        expected = [np.interp(t, knots, np.eye(bends)[k]) for k in range(bends)]
        assert torch.allclose(chain.coefficients(t).double(), torch.tensor(expected), atol=1e-6)


def test_polychain_three_bends_values():
    assert torch.allclose(Polychain().coefficients(0.25), torch.tensor([0.5, 0.5, 0.0]))
    assert torch.allclose(Polychain().coefficients(0.1), torch.tensor([0.8, 0.2, 0.0]))
    assert torch.allclose(Polychain().coefficients(0.9), torch.tensor([0.0, 0.2, 0.8]))
    assert torch.equal(Polychain().coefficients(0.5), torch.tensor([0.0, 1.0, 0.0]))


@pytest.mark.parametrize("cls", [Bezier, Polychain])
@pytest.mark.parametrize("bends", [2, 1, 0])
def test_too_few_bends_are_rejected(cls, bends):
    with pytest.raises(ValueError, match="bends"):
        cls(bends=bends)
