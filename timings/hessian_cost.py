"""Cost of the input-Hessian eigenvalue (metric input_hessian_eig) against plain power
iteration by double backpropagation, at equal accuracy.

    python timings/hessian_cost.py [--device cuda] [--samples 1000] [--repeats 3]
                                   [--archs convnet vgg16 preresnet20 gelu-convnet]

ReLU networks (ConvNet, the CIFAR VGG16, PreResNet20; random weights, random 32x32 images,
10 classes): mcbench computes the exact value, J^T S J from the logits' Jacobian (one
forward and C backward passes per chunk of 100 images), plus the auto mode's check (one
Hessian-vector product on the first chunk). The reference is power iteration as the
reference code ran it (batches of 200, Rayleigh quotient, vectors normalised per sample).
Its own stopping rule (10 iterations, tolerance 1e-2) does not promise any accuracy, so it
is given the number of iterations at which every value is within 1e-3 relative of the
truth, found in an untimed calibration run (the best any stopping rule could do), and timed
with that; its original setting is timed too. Truth: the exact method on a float64 copy.

Smooth network (the ConvNet with GELU in place of ReLU, whose Hessian is indefinite):
mcbench runs Lanczos with the metric's defaults (at most 20 products, tolerance 1e-4);
power iteration is calibrated to the same accuracy (1e-3, or Lanczos' error if larger).
Truth: Lanczos in float64 with --truth-iterations products and no early stop.

The medians of --repeats runs are printed with the speed-up (goal: at least 3x on ReLU
networks) and each method's largest relative error against the truth.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn

from mcbench.kinds.data import as_batch
from mcbench.run.allocator import keep_freed_memory
from mcbench.toolkit import hessian
from mcbench.toolkit.nets import Normalize, NormalizedNetwork
from mcbench_plugins.architectures.convnet import ConvNet
from mcbench_plugins.architectures.preresnet import PreResNet
from mcbench_plugins.architectures.vgg16 import VGG16

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CLASSES = 10
TARGET = 1e-3
EXACT_CHUNK, REFERENCE_BATCH = 100, 200


def gelu_convnet() -> nn.Module:
    net = ConvNet().build(CLASSES, 3, 32)
    for i, layer in enumerate(net):
        if isinstance(layer, nn.ReLU):
            net[i] = nn.GELU()
    return net


NETWORKS = {
    "convnet": lambda: ConvNet().build(CLASSES, 3, 32),
    "vgg16": lambda: VGG16().build(CLASSES, 3, 32),
    "preresnet20": lambda: PreResNet(depth=20).build(CLASSES, 3, 32),
    "gelu-convnet": gelu_convnet,
}


def chunks(x: torch.Tensor, y: torch.Tensor, size: int):
    for start in range(0, len(x), size):
        yield x[start : start + size], y[start : start + size]


def rel_error(values: torch.Tensor, truth: torch.Tensor) -> float:
    return float(((values - truth).abs() / truth.abs().clamp_min(1e-30)).max())


def exact_values(model, x, y) -> torch.Tensor:
    out = []
    for i, (xb, yb) in enumerate(chunks(x, y, EXACT_CHUNK)):
        logits, jacobian = hessian.logit_jacobian(model, xb)
        if i == 0:
            hessian.gauss_newton_error(
                model, xb, yb, logits, jacobian, torch.Generator().manual_seed(0)
            )
        out.append(hessian.top_eigenvalue_from_jacobian(logits, jacobian))
    return torch.cat(out)


def iterative_values(method, model, x, y, chunk, iterations, tol) -> tuple[torch.Tensor, int]:
    generator = torch.Generator().manual_seed(0)
    estimates = [
        method(model, xb, yb, iterations, tol, generator) for xb, yb in chunks(x, y, chunk)
    ]
    return torch.cat([e.values for e in estimates]), max(e.iterations for e in estimates)


def power_iterations_needed(model, x, y, truth, target, limit) -> int | None:
    """The fewest iterations after which power iteration (same start vectors as
    power_top_eigenvalue) is within ``target`` of ``truth`` on every sample; None if more
    than ``limit`` are needed."""
    generator = torch.Generator().manual_seed(0)
    needed = 0
    for (xb, yb), tb in zip(chunks(x, y, REFERENCE_BATCH), truth.split(REFERENCE_BATCH)):
        apply = hessian.hessian_operator(model, xb, yb)
        v = hessian.start_vectors(xb, generator)
        shape = (-1,) + (1,) * (xb.dim() - 1)
        for step in range(1, limit + 1):  # noqa: B007 (the count is used after the loop)
            hv = apply(v)
            values = (v.flatten(1).double() * hv.flatten(1).double()).sum(1).cpu()
            if rel_error(values, tb) <= target:
                break
            v = hv / hv.flatten(1).double().norm(dim=1).view(shape).to(hv.dtype)
        else:
            return None
        needed = max(needed, step)
    return needed


def timed(fn, repeats: int, device: torch.device):
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def power_columns(model, x, y, truth, target, args, device) -> tuple[float, str, float]:
    """(seconds, iterations text, achieved error) of power iteration at ``target``."""
    needed = power_iterations_needed(model, x, y, truth, target, args.max_power_iterations)
    iterations = needed or args.max_power_iterations
    seconds, (values, steps) = timed(
        lambda: iterative_values(
            hessian.power_top_eigenvalue, model, x, y, REFERENCE_BATCH, iterations, 0.0
        ),
        args.repeats,
        device,
    )
    # fewer steps than asked: the estimates stopped changing at all
    text = f"{steps} it" if needed else f"{steps} it, target not reached"
    return seconds, text, rel_error(values, truth)


def reference_setting(model, x, y, truth, args, device) -> str:
    seconds, (values, steps) = timed(
        lambda: iterative_values(
            hessian.power_top_eigenvalue, model, x, y, REFERENCE_BATCH, 10, 1e-2
        ),
        args.repeats,
        device,
    )
    return f"{seconds:.2f} s, {steps} it, err {rel_error(values, truth):.1e}"


def relu_row(name, model, x, y, args, device) -> str:
    truth = exact_values(copy.deepcopy(model).double(), x.double(), y)
    exact_values(model, x[:EXACT_CHUNK], y[:EXACT_CHUNK])  # warm-up: kernel selection, caches
    seconds, values = timed(lambda: exact_values(model, x, y), args.repeats, device)
    error = rel_error(values, truth)
    power_s, power_it, power_err = power_columns(model, x, y, truth, TARGET, args, device)
    return (
        f"| {name} | exact {seconds:.2f} | {power_s:.2f} ({power_it}) | "
        f"{power_s / seconds:.1f}x | {error:.1e} | {power_err:.1e} | "
        f"{reference_setting(model, x, y, truth, args, device)} |"
    )


def smooth_row(name, model, x, y, args, device) -> str:
    truth, _ = iterative_values(
        hessian.lanczos_top_eigenvalue,
        copy.deepcopy(model).double(),
        x.double(),
        y,
        EXACT_CHUNK,
        args.truth_iterations,
        0.0,
    )
    iterative_values(
        hessian.lanczos_top_eigenvalue, model, x[:EXACT_CHUNK], y[:EXACT_CHUNK], EXACT_CHUNK, 2, 0.0
    )  # warm-up
    seconds, (values, steps) = timed(
        lambda: iterative_values(
            hessian.lanczos_top_eigenvalue, model, x, y, EXACT_CHUNK, 20, 1e-4
        ),
        args.repeats,
        device,
    )
    error = rel_error(values, truth)
    target = max(TARGET, error)
    power_s, power_it, power_err = power_columns(model, x, y, truth, target, args, device)
    return (
        f"| {name} | lanczos {seconds:.2f} ({steps} it) | {power_s:.2f} ({power_it}) | "
        f"{power_s / seconds:.1f}x | {error:.1e} | {power_err:.1e} | "
        f"{reference_setting(model, x, y, truth, args, device)} |"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="*", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-power-iterations", type=int, default=300)
    parser.add_argument("--truth-iterations", type=int, default=80)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print(f"allocator: freed memory kept in the process: {keep_freed_memory()}")
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.samples, 3, 32, 32), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, CLASSES, (args.samples,), generator=g)
    x, y = as_batch(images.to(device)), labels.to(device)
    print(
        f"device: {device}, threads: {torch.get_num_threads()}, torch {torch.__version__}; "
        f"{args.samples} random 32x32 images, {CLASSES} classes, median of {args.repeats}; "
        f"power iteration in batches of {REFERENCE_BATCH}, timed at the iterations it needs "
        f"for {TARGET:g} relative error\n"
    )
    print(
        "| network | mcbench s | power s | speed-up | mcbench rel. err | power rel. err | "
        "power at 10 it / tol 1e-2 |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.archs:
        torch.manual_seed(0)
        model = (
            NormalizedNetwork(Normalize(CIFAR_MEAN, CIFAR_STD), NETWORKS[name]()).to(device).eval()
        )
        if hessian.is_piecewise_linear(model):
            print(relu_row(name, model, x, y, args, device), flush=True)
        else:
            print(smooth_row(name, model, x, y, args, device), flush=True)


if __name__ == "__main__":
    main()
