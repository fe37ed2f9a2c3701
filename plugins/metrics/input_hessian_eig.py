"""Sharpness of the loss in input space: the largest eigenvalue of the Hessian of the
cross-entropy with respect to the input image, averaged over evaluation images. Zhao et al.
(2020) show that the robustness loss along a connection path tracks this quantity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch

import mcbench
from mcbench.kinds import MetricContext, MetricPlugin
from mcbench.kinds.data import as_batch
from mcbench.toolkit import hessian

METHODS = ("auto", "exact", "lanczos", "power")


@dataclass(frozen=True)
class InputHessianEig(MetricPlugin):
    """Mean largest eigenvalue of the input Hessian of the loss (true labels) per image."""

    name: ClassVar[str] = "input_hessian_eig"
    needs: ClassVar[tuple[str, ...]] = ("clean",)
    percent: ClassVar[bool] = False
    higher_is_better: ClassVar[bool | None] = False
    plot_axis: ClassVar[Literal["top", "bottom", "right"] | None] = "right"
    full_precision: ClassVar[bool] = True  # Hessian-vector products need float32

    method: Literal["auto", "exact", "lanczos", "power"] = field(
        default="auto",
        metadata={
            "help": "exact: J^T S J from the logits' Jacobian (piecewise-linear networks only); "
            "lanczos: the algebraically largest eigenvalue of the (possibly indefinite) "
            "Hessian by Lanczos on Hessian-vector products; power: power iteration (the "
            "eigenvalue of largest magnitude); auto: exact when every layer is known to "
            "be piecewise linear and a Hessian-vector product confirms it, else lanczos"
        },
    )
    samples: int = field(
        default=1000, metadata={"help": "how many of the first evaluation images are used; 0 = all"}
    )
    chunk: int = field(
        default=100,
        metadata={
            "help": "images per batch (exact keeps a Jacobian of classes x image size per image)"
        },
    )
    iterations: int = field(
        default=20,
        metadata={
            "help": "most Hessian-vector products per batch for lanczos and power "
            "(the reference power iteration used 10)"
        },
    )
    tol: float = field(
        default=1e-4,
        metadata={
            "help": "lanczos and power stop when every image's estimate changed by at most this, "
            "relative (the reference power iteration used 1e-2)"
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of the random start vectors"})

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.samples < 0:
            raise ValueError(f"samples must be >= 0 (0 = all), got {self.samples}")
        if self.chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {self.chunk}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        if not self.tol >= 0:
            raise ValueError(f"tol must be >= 0, got {self.tol}")

    def compute(self, ctx: MetricContext) -> float:
        count = len(ctx.clean) if self.samples == 0 else min(self.samples, len(ctx.clean))
        notes = {"requested": self.method, "samples": count}
        method = self.method
        if method == "auto":
            unknown = hessian.unknown_modules(ctx.model)
            method = "lanczos" if unknown else "exact"
            if unknown:
                notes["reason"] = f"not known to be piecewise linear: {', '.join(unknown[:5])}"
        notes["method"] = method
        if count == 0:
            ctx.note(self.name, notes)
            return float("nan")
        param = next(ctx.model.parameters(), None)
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        generator = torch.Generator().manual_seed(self.seed)
        values, iterations, residual = [], 0, 0.0
        with hessian.input_autograd(ctx.model):
            for start in range(0, count, self.chunk):
                stop = min(start + self.chunk, count)
                x = as_batch(ctx.clean.images[start:stop].to(ctx.device)).to(dtype)
                y = ctx.clean.labels[start:stop].to(ctx.device)
                if method == "exact":
                    logits, jacobian = hessian.logit_jacobian(ctx.model, x)
                    if self.method == "auto" and start == 0:
                        method = self.confirm_exact(ctx, x, y, logits, jacobian, generator, notes)
                    if method == "exact":
                        values.append(hessian.top_eigenvalue_from_jacobian(logits, jacobian))
                        continue
                iterate = (
                    hessian.lanczos_top_eigenvalue
                    if method == "lanczos"
                    else hessian.power_top_eigenvalue
                )
                estimate = iterate(ctx.model, x, y, self.iterations, self.tol, generator)
                values.append(estimate.values)
                iterations = max(iterations, estimate.iterations)
                residual = max(residual, float(estimate.residuals.max()))
        if method != "exact":
            notes.update(iterations=iterations, max_residual=residual)
        ctx.note(self.name, notes)
        return float(torch.cat(values).mean())

    def confirm_exact(
        self, ctx: MetricContext, x, y, logits, jacobian, generator: torch.Generator, notes: dict
    ) -> str:
        """The method to use after auto chose exact: exact when a double-backprop
        Hessian-vector product matches J^T S J v on the first batch (a smooth function may
        hide in a module's forward), else lanczos; what it found goes into ``notes``."""
        error = hessian.gauss_newton_error(ctx.model, x, y, logits, jacobian, generator)
        notes["check_error"] = error
        if error < hessian.GAUSS_NEWTON_CHECK_TOL:
            return "exact"
        notes["method"] = "lanczos"
        notes["reason"] = (
            f"a Hessian-vector product differs from J^T S J v by {error:.3g} "
            f"relative (> {hessian.GAUSS_NEWTON_CHECK_TOL:g}): the network is "
            f"not piecewise linear"
        )
        return "lanczos"


@mcbench.hookimpl
def mcbench_register_metrics(register):
    register(InputHessianEig)
