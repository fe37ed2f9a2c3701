"""The surface engine: a Bezier surface of weights through three or four trained copies of
ANY module (mode-connectivity surfaces, the two-dimensional analogue of curves.py).

``triangle``: a triangular Bezier patch of degree n through 3 models. Its control points are
indexed by (i, j, k) with i + j + k = n and weighted n!/(i! j! k!) a^i b^j c^k, where
(a, b, c) = (1 - u - v, u, v) are the barycentric coordinates of (u, v), u, v >= 0,
u + v <= 1. The corners (0, 0), (1, 0), (0, 1) are the models 0, 1, 2.

``square``: a tensor-product patch of degree n in each direction through 4 models, (u, v) in
[0, 1]^2, control point (i, j) weighted B_i^n(u) B_j^n(v). The corners (0, 0), (1, 0),
(0, 1), (1, 1) are the models 0, 1, 2, 3.

As in curves.py every parameter is flattened into one vector per control point, a point on
the surface costs one weighted sum, and the network is called functionally with it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.func import functional_call

from mcbench.toolkit.curves import flatten

Shape = Literal["triangle", "square"]
Point = tuple[float, float]
SHAPES: tuple[Shape, ...] = ("triangle", "square")
_TOLERANCE = 1e-6  # how far outside its domain a (u, v) may lie from rounding


def num_corners(shape: Shape) -> int:
    return {"triangle": 3, "square": 4}[_checked(shape)]


def corner_positions(shape: Shape) -> tuple[Point, ...]:
    """The (u, v) of the corner models, in the order of the models."""
    corners = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0))
    return corners[: num_corners(shape)]


def control_indices(shape: Shape, degree: int) -> list[tuple[int, ...]]:
    """Every control point's index, in the order of ``coefficients``: (i, j, k) with
    i + j + k = degree for the triangle, (i, j) for the square. At degree 1 they are the
    corners, in the order of the models."""
    n = degree
    if _checked(shape) == "triangle":
        return [(n - j - k, j, k) for k in range(n + 1) for j in range(n + 1 - k)]
    return [(i, j) for j in range(n + 1) for i in range(n + 1)]


def corner_indices(shape: Shape, degree: int) -> list[tuple[int, ...]]:
    """The corner control points' indices, in the order of the models."""
    n = degree
    if _checked(shape) == "triangle":
        return [(n, 0, 0), (0, n, 0), (0, 0, n)]
    return [(0, 0), (n, 0), (0, n), (n, n)]


def control_position(shape: Shape, degree: int, index: tuple[int, ...]) -> Point:
    """The (u, v) a control point sits over."""
    if _checked(shape) == "triangle":
        return index[1] / degree, index[2] / degree
    return index[0] / degree, index[1] / degree


def coefficients(shape: Shape, degree: int, uv) -> torch.Tensor:
    """The weight of every control point at ``uv`` (float32, in ``control_indices`` order).

    Exact at the corners: there the corner's coefficient is 1 and every other one 0, so the
    weighted sum reproduces the corner model bit for bit."""
    u, v = (torch.as_tensor(x, dtype=torch.float32).cpu() for x in uv)
    _check_in_domain(_checked(shape), float(u), float(v))
    n = degree
    if shape == "triangle":
        # rounding can leave 1 - u - v a hair below 0 on the edge u + v = 1
        bases = torch.stack([(1 - u - v).clamp_min(0), u, v])
        indices = control_indices(shape, n)
        powers = torch.tensor(indices, dtype=torch.float32)
        multinomials = torch.tensor(
            [math.factorial(n) // math.prod(math.factorial(e) for e in i) for i in indices],
            dtype=torch.float32,
        )
        return multinomials * bases.pow(powers).prod(dim=-1)
    bu, bv = bernstein(n, u), bernstein(n, v)
    return (bv[:, None] * bu[None, :]).reshape(-1)  # (i, j) with j the outer index


def corner_weights(shape: Shape, uv) -> tuple[float, ...]:
    """Each corner model's share of ``uv`` on the degree-1 surface (barycentric on the
    triangle, bilinear on the square), in the order of the models."""
    return tuple(coefficients(shape, 1, uv).tolist())


def bernstein(degree: int, t: torch.Tensor) -> torch.Tensor:
    """B_k^n(t) = C(n, k) t^k (1 - t)^(n - k) for k = 0..n."""
    k = torch.arange(degree + 1, dtype=torch.float32)
    binomials = torch.tensor([math.comb(degree, i) for i in range(degree + 1)], dtype=torch.float32)
    return binomials * t.pow(k) * (1 - t).pow(degree - k)


def grid_points(shape: Shape, steps: int) -> tuple[Point, ...]:
    """The evaluation grid: (i / (steps-1), j / (steps-1)), on the triangle only those with
    i + j <= steps - 1; steps * steps points on the square, steps (steps + 1) / 2 on the
    triangle, the corners among them exactly."""
    if steps < 2:
        raise ValueError(f"a grid needs at least 2 steps per side, got {steps}")
    last = steps - 1
    triangle = _checked(shape) == "triangle"
    return tuple(
        (round(i / last, 6), round(j / last, 6))
        for j in range(steps)
        for i in range(steps)
        if not triangle or i + j <= last
    )


def sample_point(shape: Shape, generator: torch.Generator) -> torch.Tensor:
    """One (u, v) drawn uniformly from the domain, as a float32 tensor [2]."""
    uv = torch.rand(2, generator=generator)
    if _checked(shape) == "triangle" and uv.sum() > 1:
        uv = 1 - uv  # the reflection maps the upper half of the square onto the triangle
    return uv


class SurfaceModel(nn.Module):
    """w(u, v) = sum_p c_p(u, v) w_p with the corners fixed (buffers) and the other control
    points trainable, initialised on the degree-1 surface through the corners (barycentric
    on the triangle, bilinear on the square), so the untrained surface is the degree-1 one."""

    corners: torch.Tensor  # a buffer: [corners, P]

    def __init__(
        self,
        template: nn.Module,
        corners: Sequence[dict[str, torch.Tensor]],
        shape: Shape = "triangle",
        degree: int = 2,
    ):
        super().__init__()
        if len(corners) != num_corners(shape):
            raise ValueError(
                f"a {shape} surface joins {num_corners(shape)} models, got {len(corners)}"
            )
        if degree < 1:
            raise ValueError(f"degree must be >= 1, got {degree}")
        self.shape, self.degree = shape, degree
        self.template = template
        for p in template.parameters():
            p.requires_grad_(False)
        self.names = [n for n, _ in template.named_parameters()]
        self.shapes = [p.shape for _, p in template.named_parameters()]
        self.sizes = [p.numel() for _, p in template.named_parameters()]
        self.register_buffer("corners", torch.stack([flatten(s, self.names) for s in corners]))
        self.indices = control_indices(shape, degree)
        corners_at = corner_indices(shape, degree)
        self.corner_rows = [self.indices.index(i) for i in corners_at]
        self.interior_indices = [i for i in self.indices if i not in corners_at]
        self.interior_rows = [self.indices.index(i) for i in self.interior_indices]
        start = [
            coefficients(shape, 1, control_position(shape, degree, i)) @ self.corners
            for i in self.interior_indices
        ]
        interior = torch.stack(start) if start else self.corners.new_zeros(0, self.corners.shape[1])
        self.interior = nn.Parameter(interior)  # [M, P]; empty for the triangle of degree 1

    def corner_positions(self) -> tuple[Point, ...]:
        return corner_positions(self.shape)

    def weights(self, uv) -> torch.Tensor:
        """The flat parameter vector at ``uv`` = (u, v)."""
        c = coefficients(self.shape, self.degree, uv).to(self.corners)
        w = c[self.corner_rows] @ self.corners
        if self.interior.shape[0]:
            w = w + c[self.interior_rows] @ self.interior
        return w

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            n: chunk.view(shape)
            for n, chunk, shape in zip(self.names, torch.split(flat, self.sizes), self.shapes)
        }

    def forward_with_weights(self, x: torch.Tensor, uv) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weights(uv)
        return functional_call(self.template, self.unflatten(w), (x,), strict=False), w

    def forward(self, x: torch.Tensor, uv) -> torch.Tensor:
        return self.forward_with_weights(x, uv)[0]

    @torch.no_grad()
    def model_at(self, uv) -> nn.Module:
        """A plain, independent copy of the network with the weights at ``uv`` (its
        BatchNorm statistics still need recomputing)."""
        model = copy.deepcopy(self.template)
        for (_name, param), value in zip(
            model.named_parameters(), self.unflatten(self.weights(uv)).values()
        ):
            param.copy_(value)
            param.requires_grad_(True)
        return model

    def control_points(self) -> torch.Tensor:
        """All control points as one [N, P] tensor, in ``self.indices`` order."""
        rows = self.corners.new_empty(len(self.indices), self.corners.shape[1])
        rows[self.corner_rows] = self.corners
        rows[self.interior_rows] = self.interior.detach()
        return rows


def _checked(shape: str) -> Shape:
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    return shape  # type: ignore[return-value]


def _check_in_domain(shape: Shape, u: float, v: float) -> None:
    inside = min(u, v) >= -_TOLERANCE and (
        u + v <= 1 + _TOLERANCE if shape == "triangle" else max(u, v) <= 1 + _TOLERANCE
    )
    if not inside:
        domain = "u, v >= 0, u + v <= 1" if shape == "triangle" else "[0, 1]^2"
        raise ValueError(f"(u, v) = ({u}, {v}) lies outside the {shape}'s domain {domain}")
