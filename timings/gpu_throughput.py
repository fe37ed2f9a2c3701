"""Path-repair throughput of mcbench against the reference curve pipeline, side by side.

    python timings/gpu_throughput.py                      # on the GPU, full sizes
    python timings/gpu_throughput.py --device cpu --networks resnet18 \\
        --steps 2 --warmup 1 --repeats 1 --bonafide 128 --evaluation 256   # a CPU check

For VGG16, PreResNet-110 and ResNet-18 (10 classes, 32x32 synthetic images), in one run:

1. Curve training (3-bend Bezier between two copies of the network), images/s over
   ``--steps`` SGD steps after ``--warmup`` steps, median of ``--repeats``.
   mcbench: ``mcbench.toolkit.training.fit`` on a ``CurveModel`` with the path repair's
   loss: the uint8 images are copied to the device once, batches are cropped and flipped
   there, forward passes run at ``--precision`` (auto: bf16 on CUDA, fp32 elsewhere).
   Reference (the dnn-mode-connectivity pipeline): a DataLoader with per-image CPU
   transforms, ``--workers`` processes, pinned memory on CUDA, fp32, and a curve network
   that recomputes every layer's weights from its three bends in every forward pass.
2. One evaluated point, t = 0.5: BatchNorm statistics over ``--bonafide`` images, then
   scores of ``--evaluation`` images. mcbench: ``curve.model_at``, ``recalibrate_batchnorm``
   and ``predict`` in batches of ``--eval-batch``. Reference: the per-layer curve, DataLoader
   batches of 128, cumulative BatchNorm averages in train mode and scoring in eval mode,
   with autograd recording, as the original's ``update_bn`` and ``test`` do. Seconds,
   median of ``--repeats`` after one untimed run of each (none with ``--warmup 0``).

GPU goals: training >= 3x the reference's images/s, an evaluated point >= 5x faster. The
CPU run only checks that the script works. ``--out FILE`` writes every figure as JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time

import torch
from tabulate import tabulate
from torch import nn
from torch.func import functional_call
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from mcbench.kinds.data import ImageSet
from mcbench.toolkit.curves import CurveModel
from mcbench.toolkit.evaluation import predict, recalibrate_batchnorm
from mcbench.toolkit.nets import Normalize, NormalizedNetwork
from mcbench.toolkit.precision import CHOICES, autocast, resolve_precision
from mcbench.toolkit.training import FitOptions, SGDFields, fit
from mcbench_plugins.architectures.preresnet import PreResNet
from mcbench_plugins.architectures.resnet18 import ResNet18
from mcbench_plugins.architectures.vgg16 import VGG16
from mcbench_plugins.connections.bezier import Bezier
from mcbench_plugins.datasets.cifar10 import MEAN, STD
from mcbench_plugins.repairs.path import curve_loss

NETWORKS = {"vgg16": VGG16(), "preresnet110": PreResNet(depth=110), "resnet18": ResNet18()}
LABELS = {"vgg16": "VGG16", "preresnet110": "PreResNet-110", "resnet18": "ResNet-18"}
NUM_CLASSES, IMAGE_SIZE = 10, 32
LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 1e-4
POINT_T = 0.5
REFERENCE_EVAL_BATCH = 128
EPOCH_IMAGES = 50_000
TRAIN_GOAL, POINT_GOAL = 3.0, 5.0
HEADERS = (
    "network|train mcbench img/s|train reference img/s|train mcbench/reference|"
    "mcbench epoch s (50k img)|point mcbench s|point reference s|point reference/mcbench|"
    "same predictions|note"
).split("|")
AIRBENCH = "quoted figure: airbench-class: about 1.2 s per VGG16 epoch on an A100"


class ReferenceCurve(nn.Module):
    """A quadratic Bezier curve kept per parameter of ``network``: three bends each, the
    end ones fixed, and w(t) recomputed for every layer in every forward pass."""

    def __init__(self, network: nn.Module, bends: list[dict[str, torch.Tensor]]):
        super().__init__()
        self.network = network
        for p in network.parameters():
            p.requires_grad_(False)
        self.names = [n for n, _ in network.named_parameters()]
        self.bends = nn.ModuleList(
            nn.ParameterList(
                nn.Parameter(bend[n].detach().clone().float(), requires_grad=k == 1)
                for n in self.names
            )
            for k, bend in enumerate(bends)
        )

    @classmethod
    def from_curve(cls, curve: CurveModel) -> ReferenceCurve:
        """The same bends as ``curve``'s, on the network inside its ``NormalizedNetwork``
        (the reference normalises in its data transforms)."""
        bends = [
            {n.removeprefix("1."): w for n, w in curve.unflatten(b).items()} for b in curve.bends()
        ]
        return cls(copy.deepcopy(curve.template.network), bends)

    def weights(self, t) -> dict[str, torch.Tensor]:
        coefficients = ((1 - t) ** 2, 2 * t * (1 - t), t**2)
        return {
            name: sum(c * bend[i] for c, bend in zip(coefficients, self.bends))
            for i, name in enumerate(self.names)
        }

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        return functional_call(self.network, self.weights(t), (x,), strict=False)


def reference_loss(curve: ReferenceCurve, x, y, t, weight_decay: float) -> torch.Tensor:
    weights = curve.weights(t)
    logits = functional_call(curve.network, weights, (x,), strict=False)
    decay = sum(w.pow(2).sum() for w in weights.values())
    return nn.functional.cross_entropy(logits, y) + 0.5 * weight_decay * decay


class TransformedImages(Dataset):
    def __init__(self, data: ImageSet, transform):
        self.data, self.transform = data, transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i):
        return self.transform(self.data.images[i]), self.data.labels[i]


def reference_transform(augment: bool, size: int = IMAGE_SIZE):
    crop_flip = [v2.RandomCrop(size, padding=4), v2.RandomHorizontalFlip()] if augment else []
    return v2.Compose([*crop_flip, v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])


def reference_loader(data, batch, *, augment, workers, device) -> DataLoader:
    return DataLoader(
        TransformedImages(data, reference_transform(augment, data.images.shape[-1])),
        batch_size=batch,
        shuffle=augment,
        drop_last=augment,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )


def synthetic(n: int, seed: int, num_classes: int = NUM_CLASSES) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, IMAGE_SIZE, IMAGE_SIZE), generator=g, dtype=torch.uint8)
    return ImageSet(images, torch.randint(0, num_classes, (n,), generator=g))


def make_curve(arch, seed: int = 0, num_classes: int = NUM_CLASSES) -> CurveModel:
    torch.manual_seed(seed)
    build = lambda: NormalizedNetwork(Normalize(MEAN, STD), arch.build(num_classes, 3, IMAGE_SIZE))
    a, b = build(), build()
    return CurveModel(build(), a.state_dict(), b.state_dict(), Bezier(bends=3))


def now(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def timed(fn, device: torch.device):
    start = now(device)
    out = fn()
    return now(device) - start, out


def mcbench_training(
    curve, data, *, batch, warmup, steps, repeats, device, precision, compile=False
) -> list[float]:
    """Images/s of each of ``repeats`` epochs of ``steps`` steps of ``fit``, after a warm-up
    fit of ``warmup`` steps; ``data`` needs ``max(warmup, steps) * batch`` images."""

    def loss(model, x, y, generator):
        return curve_loss(model, x, y, torch.rand((), generator=generator), WEIGHT_DECAY)

    def run(n, epochs, on_epoch=None):
        sgd = SGDFields(
            epochs=epochs,
            batch_size=batch,
            lr=LR,
            momentum=MOMENTUM,
            weight_decay=0.0,
            schedule="constant",
        )
        options = FitOptions(
            device=device, seed=0, precision=precision, compile=compile, on_epoch=on_epoch
        )
        fit(curve, data.subset(torch.arange(n)), sgd, options, augment=True, loss_fn=loss)

    if warmup:
        run(warmup * batch, 1)
    stamps = [now(device)]
    run(steps * batch, repeats, lambda _epoch, _loss: stamps.append(now(device)))
    return [steps * batch / (b - a) for a, b in zip(stamps, stamps[1:])]


def reference_training(
    curve: ReferenceCurve, data, *, batch, warmup, steps, repeats, device, workers
) -> list[float]:
    """Images/s of each of ``repeats`` runs of ``steps`` steps after ``warmup`` steps, one
    pass of a shuffled DataLoader; ``data`` needs ``(warmup + steps * repeats) * batch``
    images."""
    curve.train()
    trainable = [p for p in curve.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=LR, momentum=MOMENTUM)
    loader = reference_loader(data, batch, augment=True, workers=workers, device=device)
    if len(loader) < warmup + steps * repeats:
        raise ValueError(f"{len(data)} images are too few for {warmup + steps * repeats} steps")
    batches = iter(loader)

    def step():
        x, y = next(batches)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = reference_loss(curve, x, y, torch.rand(()), WEIGHT_DECAY)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()

    for _ in range(warmup):
        step()
    rates = []
    for _ in range(repeats):
        seconds, _ = timed(lambda: [step() for _ in range(steps)], device)
        rates.append(steps * batch / seconds)
    return rates


def mcbench_point(curve, bonafide, evaluation, device, precision, batch) -> torch.Tensor:
    """Logits of ``evaluation`` at t = 0.5 after recalibrating on ``bonafide``."""
    with autocast(device, precision):
        model = curve.model_at(POINT_T)
        recalibrate_batchnorm(model, bonafide, device, batch)
        return predict(model, evaluation, device, batch)


def reference_point(
    curve: ReferenceCurve, bonafide, evaluation, device, workers, batch=REFERENCE_EVAL_BATCH
) -> torch.Tensor:
    """The same as ``mcbench_point``, the reference's way."""
    t = torch.tensor(POINT_T)
    norms = [m for m in curve.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if norms:
        curve.train()
        momenta = [bn.momentum for bn in norms]
        for bn in norms:
            bn.reset_running_stats()
            bn.momentum = None
        loader = reference_loader(bonafide, batch, augment=False, workers=workers, device=device)
        for x, _ in loader:
            curve(x.to(device, non_blocking=True), t)
        for bn, momentum in zip(norms, momenta):
            bn.momentum = momentum
    curve.eval()
    loader = reference_loader(evaluation, batch, augment=False, workers=workers, device=device)
    return torch.cat([curve(x.to(device, non_blocking=True), t).detach().cpu() for x, _ in loader])


def point_seconds(curve, reference, args, device, precision):
    """Seconds of each repeat of both evaluated points, after an untimed one unless
    ``--warmup 0``, and the fraction of evaluation images they predict alike."""
    bonafide, evaluation = synthetic(args.bonafide, 1), synthetic(args.evaluation, 2)
    ours_s, theirs_s = [], []
    for i in range(args.repeats + (1 if args.warmup else 0)):
        seconds, ours = timed(
            lambda: mcbench_point(curve, bonafide, evaluation, device, precision, args.eval_batch),
            device,
        )
        their_seconds, theirs = timed(
            lambda: reference_point(reference, bonafide, evaluation, device, args.workers), device
        )
        if i or not args.warmup:
            ours_s.append(seconds)
            theirs_s.append(their_seconds)
    return ours_s, theirs_s, float((ours.argmax(1) == theirs.argmax(1)).float().mean())


def measure(name: str, args, device: torch.device, precision: str) -> dict:
    curve = make_curve(NETWORKS[name]).to(device)
    reference = ReferenceCurve.from_curve(curve).to(device)
    point_ours, point_theirs, same = point_seconds(curve, reference, args, device, precision)
    train = synthetic(args.batch * (args.warmup + args.steps * args.repeats), 3)
    sizes = dict(batch=args.batch, warmup=args.warmup, steps=args.steps, repeats=args.repeats)
    ours_ips = mcbench_training(
        curve, train, device=device, precision=precision, compile=args.compile, **sizes
    )
    theirs_ips = reference_training(reference, train, device=device, workers=args.workers, **sizes)
    m_ips = statistics.median(ours_ips)
    return {
        "network": name,
        "train_mcbench_images_per_s": ours_ips,
        "train_reference_images_per_s": theirs_ips,
        "train_speedup": m_ips / statistics.median(theirs_ips),
        "mcbench_epoch_s_50k": EPOCH_IMAGES / m_ips,
        "point_mcbench_s": point_ours,
        "point_reference_s": point_theirs,
        "point_speedup": statistics.median(point_theirs) / statistics.median(point_ours),
        "point_same_predictions": same,
    }


def table(rows: list[dict]) -> str:
    def line(r):
        m_ips = statistics.median(r["train_mcbench_images_per_s"])
        r_ips = statistics.median(r["train_reference_images_per_s"])
        return [
            LABELS[r["network"]],
            f"{m_ips:.1f}",
            f"{r_ips:.1f}",
            f"{r['train_speedup']:.2f}x (goal >= {TRAIN_GOAL:g}x)",
            f"{r['mcbench_epoch_s_50k']:.1f}",
            f"{statistics.median(r['point_mcbench_s']):.2f}",
            f"{statistics.median(r['point_reference_s']):.2f}",
            f"{r['point_speedup']:.2f}x (goal >= {POINT_GOAL:g}x)",
            f"{r['point_same_predictions']:.1%}",
            AIRBENCH if r["network"] == "vgg16" else "",
        ]

    return tabulate([line(r) for r in rows], headers=HEADERS, tablefmt="github")


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=CHOICES, default="auto")
    parser.add_argument("--networks", nargs="+", choices=list(NETWORKS), default=list(NETWORKS))
    for flag in ("--batch", "--steps", "--warmup", "--bonafide", "--evaluation"):
        parser.add_argument(flag, type=int)
    parser.add_argument("--eval-batch", type=int, help="mcbench's evaluation batch size")
    parser.add_argument("--workers", type=int, help="the reference DataLoader's processes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="fit(..., compile=True)")
    parser.add_argument("--out", help="write every figure to this JSON file")
    args = parser.parse_args(argv)
    cuda = torch.device(args.device).type == "cuda"
    defaults = {
        "batch": (512, 64),
        "steps": (30, 3),
        "warmup": (5, 1),
        "bonafide": (2500, 256),
        "evaluation": (5000, 512),
        "eval_batch": (2500, 500),
        "workers": (min(8, os.cpu_count() or 1), 2),
    }
    for key, (on_cuda, on_cpu) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, on_cuda if cuda else on_cpu)
    if min(args.batch, args.steps, args.repeats, args.bonafide, args.evaluation) < 1:
        parser.error("--batch, --steps, --repeats, --bonafide and --evaluation must be >= 1")
    return args


def main(argv=None) -> list[dict]:
    args = parse(argv)
    device = torch.device(args.device)
    precision = resolve_precision(args.precision, device.type)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device: {name}, torch {torch.__version__}, mcbench precision {precision} "
        f"(reference fp32), batch {args.batch}, {args.steps} steps after {args.warmup}, "
        f"median of {args.repeats}; point t={POINT_T}: {args.bonafide} bonafide + "
        f"{args.evaluation} evaluation images; reference workers {args.workers}\n",
        flush=True,
    )
    rows = []
    for network in args.networks:
        rows.append(measure(network, args, device, precision))
        print(f"measured {LABELS[network]}", flush=True)
    print("\n" + table(rows))
    print(
        f"\nGPU goals: training mcbench/reference >= {TRAIN_GOAL:g}x, evaluated point "
        f"reference/mcbench >= {POINT_GOAL:g}x."
    )
    if args.out:
        record = {
            "device": name,
            "torch": torch.__version__,
            "precision": precision,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "args": vars(args),
            "networks": rows,
        }
        with open(args.out, "w") as f:
            json.dump(record, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
