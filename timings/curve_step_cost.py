"""Cost of one curve-training step relative to one plain training step of the same network.

    python timings/curve_step_cost.py [--batch 128] [--repeats 11] [--networks ...]

A plain step: forward, cross-entropy, backward, SGD with momentum and weight decay. A curve
step (mcbench.toolkit.curves.CurveModel, 3-bend Bezier, the path repair's own loss): t ~ U(0,1),
w(t) from the bends, the network called functionally, cross-entropy + 0.5 wd ||w(t)||^2,
backward into the middle bend, SGD. The two are timed alternately and the median of each
is reported, so machine noise hits both alike; the ratio is the median of the ratios of
neighbouring pairs, with its quartiles. Goal: curve / plain <= 1.05.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from mcbench.run.allocator import keep_freed_memory
from mcbench.toolkit.curves import CurveModel
from mcbench_plugins.architectures.preresnet import PreResNet
from mcbench_plugins.architectures.timm_model import TimmModel
from mcbench_plugins.architectures.vgg16 import VGG16
from mcbench_plugins.connections.bezier import Bezier
from mcbench_plugins.repairs.path import curve_loss

NETWORKS = {
    "vgg16": lambda: VGG16().build(10, 3, 32),
    "preresnet20": lambda: PreResNet(depth=20).build(10, 3, 32),
    "preresnet110": lambda: PreResNet(depth=110).build(10, 3, 32),
    "timm:resnet18": lambda: TimmModel(model="resnet18").build(10, 3, 32),
}


def plain_step(model, opt, x, y):
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def curve_step(curve, opt, x, y, wd=5e-4):
    loss = curve_loss(curve, x, y, torch.rand(()), wd)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(name, build, batch, repeats, device):
    torch.manual_seed(0)
    model = build().to(device).train()
    a, b = build(), build()
    curve = CurveModel(build(), a.state_dict(), b.state_dict(), Bezier(bends=3)).to(device).train()
    opt_plain = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    opt_curve = torch.optim.SGD([curve.interior], lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(2):  # warm-up
        plain_step(model, opt_plain, x, y)
        curve_step(curve, opt_curve, x, y)
    plain, curved = [], []
    for _ in range(repeats):
        plain.append(timed(lambda: (plain_step(model, opt_plain, x, y), sync())))
        curved.append(timed(lambda: (curve_step(curve, opt_curve, x, y), sync())))
    p, c = statistics.median(plain), statistics.median(curved)
    ratios = sorted(cc / pp for cc, pp in zip(curved, plain))
    q1, q3 = ratios[len(ratios) // 4], ratios[(3 * len(ratios)) // 4]
    ratio = statistics.median(ratios)
    params = sum(t.numel() for t in model.parameters())
    print(
        f"| {name} | {params / 1e6:.2f}M | {p * 1000:.0f} | {c * 1000:.0f} | {ratio:.3f} | "
        f"{q1:.3f}-{q3:.3f} |",
        flush=True,
    )
    return ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--networks", nargs="*", default=list(NETWORKS))
    args = parser.parse_args()
    print(f"allocator: freed memory kept in the process: {keep_freed_memory()}")
    device = torch.device(args.device)
    print(
        f"device: {device}, threads: {torch.get_num_threads()}, batch {args.batch}, "
        f"{args.repeats} alternating pairs of steps, torch {torch.__version__}\n"
    )
    print("| network | params | plain step ms | curve step ms | curve / plain | quartiles |")
    print("|---|---|---|---|---|---|")
    ratios = [measure(n, NETWORKS[n], args.batch, args.repeats, device) for n in args.networks]
    print(f"\nworst ratio {max(ratios):.3f} (goal <= 1.05)")


if __name__ == "__main__":
    main()
