"""Cost of evaluating one point t on a BatchNorm curve: recompute the BN statistics over
2,500 bonafide images, then score 5,000 evaluation images.

    python timings/point_eval_cost.py [--repeats 3]

mcbench: materialise w(t) once into a plain network, recalibrate under no_grad and
evaluate under inference_mode in batches of 500. Reference style (as the per-layer
curve-class implementations do it): the curve network recomputes w(t) in every forward
pass, statistics and scores are computed with autograd recording, in batches of 128.
Both run here, on the same curve and data, and the median of each is reported; the
published reference figures on a 2-core CPU are 6.0 s (PreResNet20) and 42-63 s
(PreResNet110). Goal: at least 2x faster.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from mcbench.kinds.data import ImageSet
from mcbench.run.allocator import keep_freed_memory
from mcbench.toolkit.curves import CurveModel
from mcbench.toolkit.evaluation import predict, recalibrate_batchnorm
from mcbench_plugins.architectures.preresnet import PreResNet
from mcbench_plugins.connections.bezier import Bezier

PUBLISHED_REFERENCE_S = {20: "6.0", 110: "42-63"}


def reference_style(
    curve: CurveModel, bonafide: ImageSet, evaluation: ImageSet, t: float, device, batch=128
) -> float:
    norms = [m for m in curve.template.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    curve.eval()
    for bn in norms:
        bn.reset_running_stats()
        bn.train()
    seen = 0
    for i in range(0, len(bonafide), batch):
        x = bonafide.images[i : i + batch].to(device).float() / 255
        for bn in norms:
            bn.momentum = x.shape[0] / (seen + x.shape[0])
        curve(x, t)
        seen += x.shape[0]
    curve.eval()
    correct = 0
    for i in range(0, len(evaluation), batch):
        x = evaluation.images[i : i + batch].to(device).float() / 255
        correct += int((curve(x, t).argmax(1).cpu() == evaluation.labels[i : i + batch]).sum())
    return correct / len(evaluation)


def mcbench_style(
    curve: CurveModel, bonafide: ImageSet, evaluation: ImageSet, t: float, device
) -> float:
    model = curve.model_at(t).to(device)
    recalibrate_batchnorm(model, bonafide, device, batch_size=500)
    logits = predict(model, evaluation, device, batch_size=500)
    return float((logits.argmax(1) == evaluation.labels).float().mean())


def timed(fn):
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="*", default=[20, 110])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    print(f"allocator: freed memory kept in the process: {keep_freed_memory()}")
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    make = lambda n: ImageSet(
        torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8),
        torch.randint(0, 10, (n,), generator=g),
    )
    bonafide, evaluation = make(2500), make(5000)
    print(
        f"device: {device}, threads: {torch.get_num_threads()}, torch {torch.__version__}; "
        f"2,500 recalibration + 5,000 evaluation images, median of {args.repeats}\n"
    )
    print("| network | reference style s | mcbench s | speed-up | published reference s |")
    print("|---|---|---|---|---|")
    for depth in args.depths:
        torch.manual_seed(depth)
        build = lambda: PreResNet(depth=depth).build(10, 3, 32)
        a, b = build(), build()
        curve = CurveModel(build(), a.state_dict(), b.state_dict(), Bezier(bends=3)).to(device)
        ref, ours = [], []
        for _ in range(args.repeats):
            s, acc_ref = timed(lambda: reference_style(curve, bonafide, evaluation, 0.5, device))
            ref.append(s)
            s, acc_ours = timed(lambda: mcbench_style(curve, bonafide, evaluation, 0.5, device))
            ours.append(s)
        r, o = statistics.median(ref), statistics.median(ours)
        agree = (
            "same accuracy" if abs(acc_ref - acc_ours) < 1e-3 else f"acc {acc_ref} vs {acc_ours}"
        )
        print(
            f"| PreResNet{depth} | {r:.2f} | {o:.2f} | {r / o:.2f}x | "
            f"{PUBLISHED_REFERENCE_S.get(depth, '-')} ({agree}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
