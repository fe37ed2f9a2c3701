"""The largest eigenvalue of the Hessian of the cross-entropy loss with respect to the input,
per sample.

For an input x (the 0..1 image the model receives) with label y, H = d^2 CE(f(x), y) / dx^2.
Three ways to get its largest (algebraically largest) eigenvalue:

- exact, for piecewise-linear networks: the logits' second derivative in x vanishes almost
  everywhere, so H = J^T S J with J the [C, D] Jacobian of the logits and
  S = diag(p) - p p^T (p the softmax). With S = L L^T, the nonzero eigenvalues of H are
  those of the C x C matrix L^T J J^T L: C backward passes and a small eigenproblem.
- Lanczos, for any twice-differentiable network: Hessian-vector products by double
  backpropagation and a Krylov space with full reorthogonalisation.
- power iteration by double backpropagation: converges to the eigenvalue of largest
  magnitude, which is the largest one when H is positive semi-definite.

Every function treats samples independently (the model runs in eval mode, where samples do
not interact), leaves the model's parameters, their ``requires_grad`` and ``.grad`` as they
were, and returns float64 values on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from mcbench.toolkit.nets import Normalize
from mcbench.toolkit.training import requires_grad_only

PIECEWISE_LINEAR: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.Hardtanh,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Flatten,
    nn.Identity,
)
"""Module types whose forward (in eval mode) is piecewise linear in its input."""

GAUSS_NEWTON_CHECK_TOL = 1e-3
"""Largest relative difference between a double-backprop Hessian-vector product and
J^T S J v for which a network is taken to be piecewise linear."""


class Estimate(NamedTuple):
    """Result of an iterative method."""

    values: torch.Tensor
    """[N] float64 on the CPU: the estimate of each sample's largest eigenvalue."""
    iterations: int
    """Hessian-vector products done (each one covers the whole batch)."""
    residuals: torch.Tensor
    """[N] float64: ||H v - value v|| for each sample's final unit vector v."""


def _is_known_piecewise_linear(module: nn.Module) -> bool:
    # a subclass that overrides forward may compute anything
    known: tuple[type[nn.Module], ...] = (*PIECEWISE_LINEAR, Normalize)
    return any(isinstance(module, cls) and type(module).forward is cls.forward for cls in known)


def unknown_modules(model: nn.Module) -> list[str]:
    """Names (``type(module).__name__`` for the root) of the modules without children that
    are not of a known piecewise-linear type."""
    return [
        name or type(m).__name__
        for name, m in model.named_modules()
        if not any(True for _ in m.children()) and not _is_known_piecewise_linear(m)
    ]


def is_piecewise_linear(model: nn.Module) -> bool:
    """Whether every module of ``model`` without children is of a known piecewise-linear
    type (``PIECEWISE_LINEAR`` or ``mcbench.toolkit.nets.Normalize``, the input
    normalisation of ``NormalizedNetwork``). Functions called inside a module's own forward
    are not seen: see ``gauss_newton_error`` for a check that catches them."""
    return not unknown_modules(model)


@contextmanager
def input_autograd(model: nn.Module):
    """Within: gradients enabled (even under inference mode), the model in eval mode and its
    parameters not requiring gradients (so that backward passes reach the input only).
    Restored on exit."""
    training = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with requires_grad_only(model), torch.inference_mode(False), torch.enable_grad():
            yield
    finally:
        for m, flag in training:
            m.training = flag


def _leaf(x: torch.Tensor) -> torch.Tensor:
    # a copy, so that inference-mode tensors and the caller's tensor are left alone
    return x.detach().clone().requires_grad_(True)


def _flat_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample inner products of two [N, ...] tensors, in float64."""
    return (a.reshape(len(a), -1).double() * b.reshape(len(b), -1).double()).sum(1)


def _flat_norm(a: torch.Tensor) -> torch.Tensor:
    return a.reshape(len(a), -1).double().norm(dim=1)


def start_vectors(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Gaussian vectors shaped like ``like``, each sample's of unit norm; drawn on the CPU
    from ``generator`` (so the same seed gives the same vectors on every device)."""
    v = torch.randn(like.shape, generator=generator, dtype=torch.float64)
    v = v / v.reshape(len(v), -1).norm(dim=1).clamp_min(1e-300).view(-1, *[1] * (v.dim() - 1))
    return _like(like, v)


def _like(like: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``values`` in the dtype, device and memory layout of ``like`` (a channels-last input
    with channels-first vectors sends convolutions' backward down slow paths)."""
    return torch.empty_like(like).copy_(values.view(like.shape))


# -- exact, for piecewise-linear networks --------------------------------------------------


def logit_jacobian(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [N, C], Jacobian of the logits in x [N, C, D]) with D the size of one input:
    one forward pass and C backward passes, each giving row c of every sample's Jacobian
    (the gradient of sum_n z_n[c], since sample n's input reaches only z_n)."""
    with input_autograd(model):
        x = _leaf(x)
        logits = model(x)
        n, classes = logits.shape
        rows = []
        for c in range(classes):
            (grad,) = torch.autograd.grad(
                logits[:, c].sum(), x, retain_graph=c < classes - 1, allow_unused=True
            )
            rows.append(torch.zeros_like(x) if grad is None else grad)
        return logits.detach(), torch.stack([r.reshape(n, -1) for r in rows], dim=1)


def softmax_factor(logits: torch.Tensor) -> torch.Tensor:
    """L [N, C, C] float64 with L L^T = diag(p) - p p^T, p = softmax(logits):
    L = diag(sqrt p) (I - sqrt p sqrt p^T), as I - u u^T is a projection when |u| = 1."""
    p = torch.softmax(logits.double(), dim=1)
    u = p.sqrt()
    return torch.diag_embed(u) - p.unsqueeze(2) * u.unsqueeze(1)


def top_eigenvalue_from_jacobian(logits: torch.Tensor, jacobian: torch.Tensor) -> torch.Tensor:
    """[N] float64 on the CPU: the largest eigenvalue of J^T S J, S = diag(p) - p p^T, as
    that of the C x C matrix L^T J J^T L (S = L L^T)."""
    j = jacobian.double()
    gram = torch.bmm(j, j.transpose(1, 2)).cpu()
    factor = softmax_factor(logits).cpu()
    small = factor.transpose(1, 2) @ gram @ factor
    # H is positive semi-definite: a negative value is rounding
    return torch.linalg.eigvalsh(small)[:, -1].clamp_min(0)


def exact_top_eigenvalue(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None
) -> torch.Tensor:
    """[N] float64 on the CPU: the largest eigenvalue of each sample's input Hessian of the
    cross-entropy, exact (up to rounding) when ``model`` is piecewise linear in x. The
    labels ``y`` do not enter: H = J^T S J whatever the label. On a network that is not
    piecewise linear this is the Gauss-Newton part of H only."""
    logits, jacobian = logit_jacobian(model, x)
    return top_eigenvalue_from_jacobian(logits, jacobian)


def gauss_newton_product(
    logits: torch.Tensor, jacobian: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    """J^T S J v per sample, [N, D] float64 (v: [N, ...] of D entries per sample)."""
    p = torch.softmax(logits.double(), dim=1)
    j = jacobian.double()
    jv = torch.bmm(j, v.reshape(len(v), -1, 1).double()).squeeze(2)
    s_jv = p * jv - p * (p * jv).sum(1, keepdim=True)
    return torch.bmm(j.transpose(1, 2), s_jv.unsqueeze(2)).squeeze(2)


def gauss_newton_error(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    logits: torch.Tensor,
    jacobian: torch.Tensor,
    generator: torch.Generator | None = None,
) -> float:
    """||H v - J^T S J v|| / ||J^T S J v|| over the batch for a random v, H v by double
    backpropagation: about rounding error for a piecewise-linear network, large when a
    smooth nonlinearity hides in some module's forward."""
    v = start_vectors(x, generator)
    exact = gauss_newton_product(logits, jacobian, v).cpu()
    product = hvp(model, x, y, v).reshape(len(x), -1).double().cpu()
    scale = float(exact.norm())
    diff = float((product - exact).norm())
    if scale == 0:
        return 0.0 if diff == 0 else float("inf")
    return diff / scale


# -- Hessian-vector products by double backpropagation --------------------------------------


def hessian_operator(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function v -> H v for a batch: one forward and backward pass now (the gradient of
    the summed loss, with its graph kept), then one double backward pass per call giving
    every sample's product (v and H v shaped like x)."""
    with input_autograd(model):
        x = _leaf(x)
        loss = F.cross_entropy(model(x), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x, create_graph=True)

    def apply(v: torch.Tensor) -> torch.Tensor:
        if not grad.requires_grad:  # the gradient does not depend on x: H = 0
            return torch.zeros_like(x)
        with torch.inference_mode(False), torch.enable_grad():
            (out,) = torch.autograd.grad(
                grad, x, grad_outputs=v.to(x.dtype), retain_graph=True, allow_unused=True
            )
        return torch.zeros_like(x) if out is None else out.detach()

    return apply


def hvp(model: nn.Module, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """H v for each sample (shaped like x), by double backpropagation."""
    return hessian_operator(model, x, y)(v)


# -- iterative methods ------------------------------------------------------------------------


def power_top_eigenvalue(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    iterations: int = 10,
    tol: float = 1e-2,
    generator: torch.Generator | None = None,
) -> Estimate:
    """Power iteration on every sample's Hessian at once, each vector normalised per sample;
    the estimate is the Rayleigh quotient v^T H v. Stops after ``iterations`` products or
    when every sample's estimate changed by at most ``tol`` relative. Converges to the
    eigenvalue of largest magnitude (the largest one for a positive semi-definite H)."""
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    apply = hessian_operator(model, x, y)
    v = start_vectors(x, generator)
    previous = None
    for step in range(1, iterations + 1):  # noqa: B007 (the count is returned)
        hv = apply(v)
        values = _flat_dot(v, hv)
        residuals = _flat_norm(hv.double() - values.view(-1, *[1] * (x.dim() - 1)) * v.double())
        if previous is not None and bool(((values - previous).abs() <= tol * values.abs()).all()):
            break
        previous = values
        norms = _flat_norm(hv).view(-1, *[1] * (x.dim() - 1))
        # a sample with H v = 0 keeps its vector
        v = torch.where(norms > 0, hv / norms.clamp_min(1e-300).to(hv.dtype), v)
    return Estimate(values.cpu(), step, residuals.cpu())


def _tridiagonal(alphas: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    return torch.diag_embed(alphas) + torch.diag_embed(betas, 1) + torch.diag_embed(betas, -1)


def _orthogonalise(w: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """w [N, D] minus its projection on the rows of basis [N, k, D]; twice, as one
    classical Gram-Schmidt pass loses orthogonality in floating point."""
    for _ in range(2):
        w = w - torch.bmm(basis.transpose(1, 2), torch.bmm(basis, w.unsqueeze(2))).squeeze(2)
    return w


def lanczos_top_eigenvalue(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    iterations: int = 20,
    tol: float = 1e-4,
    generator: torch.Generator | None = None,
) -> Estimate:
    """The algebraically largest eigenvalue of every sample's Hessian (which may be
    indefinite) by Lanczos with full reorthogonalisation: at most ``iterations``
    Hessian-vector products (and at most D, the Krylov space's largest dimension), stopping
    once every sample's largest Ritz value changed by at most ``tol`` relative."""
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    apply = hessian_operator(model, x, y)
    n = len(x)
    dim = x[0].numel()
    steps = min(iterations, dim)
    basis = x.new_zeros(n, steps, dim)
    alphas = torch.zeros(n, steps, dtype=torch.float64)
    betas = torch.zeros(n, steps, dtype=torch.float64)
    scale = torch.zeros(n, dtype=torch.float64)
    breakdown = torch.finfo(x.dtype).eps ** 0.5
    q = start_vectors(x, generator).reshape(n, dim)
    previous = None
    for j in range(steps):
        basis[:, j] = q
        w = apply(_like(x, q)).reshape(n, dim)
        alpha = _flat_dot(q, w)
        w = w - alpha.to(w.dtype).unsqueeze(1) * q
        if j > 0:
            w = w - betas[:, j - 1].to(w.device, w.dtype).unsqueeze(1) * basis[:, j - 1]
        w = _orthogonalise(w, basis[:, : j + 1])
        beta = _flat_norm(w).cpu()
        alphas[:, j] = alpha.cpu()
        ritz, vectors = torch.linalg.eigh(_tridiagonal(alphas[:, : j + 1], betas[:, :j]))
        values = ritz[:, -1]
        residuals = beta * vectors[:, -1, -1].abs()
        if previous is not None and bool(((values - previous).abs() <= tol * values.abs()).all()):
            break
        previous = values
        if j + 1 == steps:
            break
        scale = torch.maximum(scale, torch.maximum(alphas[:, j].abs(), beta))
        # an invariant subspace was found: go on from a fresh direction, coupled by beta = 0
        lost = beta <= breakdown * scale
        if bool(lost.any()):
            fresh = _orthogonalise(start_vectors(x, generator).reshape(n, dim), basis[:, : j + 1])
            w = torch.where(lost.to(w.device).unsqueeze(1), fresh, w)
            beta = torch.where(lost, _flat_norm(w).cpu(), beta)
        betas[:, j] = torch.where(lost, torch.zeros((), dtype=torch.float64), beta)
        q = w / beta.to(w.device, w.dtype).unsqueeze(1)
    return Estimate(values, j + 1, residuals)
