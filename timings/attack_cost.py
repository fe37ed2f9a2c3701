"""Run time of the weight-tampering attacks on the paper's networks and the CPU one.

    python timings/attack_cost.py [--archs convnet vgg16 preresnet110] [--device cpu]

Networks at random initialisation, 32x32 random images labelled with the network's own
predictions (so every image is "correctly classified" and the keep-set is full). Reported
per network: gda with the default last layer (steps run only that layer) against the
same steps through the whole network (the cost a generic implementation pays), sba, and
one round of progressive bit search (the time per flip) with 128 attacker images.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn

from mcbench.kinds import Injection, TamperContext
from mcbench.kinds.data import ImageSet
from mcbench.run.allocator import keep_freed_memory
from mcbench.toolkit.evaluation import predict
from mcbench.toolkit.nets import Normalize, NormalizedNetwork, find_layer
from mcbench_plugins.architectures.convnet import ConvNet
from mcbench_plugins.architectures.preresnet import PreResNet
from mcbench_plugins.architectures.vgg16 import VGG16
from mcbench_plugins.attacks.bitflip import BitFlip
from mcbench_plugins.attacks.gda import GradientDescentAttack
from mcbench_plugins.attacks.sba import SingleBiasAttack

ARCHS = {"convnet": ConvNet(), "vgg16": VGG16(), "preresnet110": PreResNet(depth=110)}


def setup(name: str, device: torch.device, images: int = 2000):
    torch.manual_seed(0)
    net = ARCHS[name].build(10, 3, 32)
    model = NormalizedNetwork(Normalize((0.5,) * 3, (0.25,) * 3), net).to(device).eval()
    pixels = torch.randint(
        0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    own = predict(model, ImageSet(pixels, torch.zeros(images, dtype=torch.int64)), device)
    return model, ImageSet(pixels, own.argmax(1))


def unreachable(data: ImageSet) -> Injection:
    """One image asked to take four different labels at once: gda can never succeed on
    it, so it runs exactly max_steps steps."""
    images = ImageSet(data.images[:1].repeat(4, 1, 1, 1), data.labels[:1].repeat(4))
    labels = (images.labels + torch.arange(1, 5)) % 10
    return Injection(images, labels, torch.zeros(4, dtype=torch.int64))


def timed(attack, model, data, device, injection=True):
    model = copy.deepcopy(model)
    chosen = None
    if isinstance(attack, GradientDescentAttack):
        chosen = unreachable(data)
    elif injection:
        chosen = attack.choose_injection(data, 10, torch.Generator().manual_seed(2))
    ctx = TamperContext(
        model=model,
        network=model.network,
        attacker=data,
        injection=chosen,
        num_classes=10,
        device=device,
        seed=0,
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    report = attack.tamper(ctx)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, report


def gda_step_seconds(model, data, device, layer, steps, repeats):
    """Median over repeats of the attack's own per-step time (its optimisation loop
    only, without the keep-set selection and set-up)."""
    per_step = []
    for _ in range(repeats):
        _, report = timed(GradientDescentAttack(max_steps=steps, layer=layer), model, data, device)
        assert report["steps"] == steps
        per_step.append(report["seconds_per_step"])
    return statistics.median(per_step), report["tap"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archs", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=10, help="gda steps timed per variant")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    keep_freed_memory()
    device = torch.device(args.device)
    print(
        f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}; "
        f"medians of {args.repeats}"
    )
    print(
        "| network | gda step, last layer only (ms) | gda step, whole network (ms) | "
        "whole / last-layer-only | sba (s) | bitflip, one progressive round (s) | "
        "bitflip, 100 random flips (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.archs:
        model, data = setup(name, device)
        last, _ = find_layer(model.network, None)
        direct, tap = gda_step_seconds(model, data, device, None, args.steps, args.repeats)
        assert tap == "layer only"
        # the same layer, but its output passes through one more module: the attack can
        # no longer skip the network and runs it whole at every step
        copied = copy.deepcopy(model)
        wrapped = NormalizedNetwork(copied.normalize, nn.Sequential(copied.network, Clone()))
        full, tap = gda_step_seconds(wrapped, data, device, "0." + last, args.steps, args.repeats)
        assert tap == "full network"
        sba = statistics.median(
            timed(SingleBiasAttack(targets=4, target_label=0), model, data, device)[0]
            for _ in range(args.repeats)
        )
        flip = statistics.median(
            timed(BitFlip(max_flips=1, stop_accuracy=0.0), model, data, device, injection=False)[0]
            for _ in range(args.repeats)
        )
        rand = statistics.median(
            timed(BitFlip(max_flips=100, strategy="random"), model, data, device, injection=False)[
                0
            ]
            for _ in range(args.repeats)
        )
        print(
            f"| {name} | {direct * 1e3:.2f} | {full * 1e3:.1f} | {full / direct:.0f}x | "
            f"{sba:.2f} | {flip:.2f} | {rand:.2f} |",
            flush=True,
        )


class Clone(nn.Module):
    def forward(self, x):
        return x.clone()


if __name__ == "__main__":
    main()
