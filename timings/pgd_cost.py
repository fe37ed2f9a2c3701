"""Throughput of the pgd evasion attack against torchattacks' PGD: PGD-10, L-inf, eps 8/255,
step 2/255, random start, on the same model, batch and device.

    python timings/pgd_cost.py [--archs convnet resnet18] [--device cuda] [--batch 1000]

Each network (with mcbench's input normalisation in front) is first adversarially trained
for a few epochs (PGD-3) on CIFAR-10 when a local copy is found under --data-root, else on
synthetic 32x32 data, so that it is partly robust: some test points are wrong already, some
flip after a few steps, some never. Then, on one batch of test images:

- goal "loss" (adversarial loss / training): every point runs all 10 steps and mcbench
  keeps the worst iterate per point; torchattacks returns the last iterate. Goal: mcbench's
  throughput at least 1.0x torchattacks'.
- goal "misclassify" (robust accuracy): mcbench skips the points already wrong and drops
  each point from the batch as soon as it is misclassified; torchattacks attacks every
  point for 10 steps. Goal: at least 1.5x, with a robust accuracy no higher than
  torchattacks'.

Reported: medians over --repeats of images/s and their ratio, both robust accuracies, and
the fraction of the batch still correctly classified at each iterate (how much work early
stopping can save on this model).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchattacks
from torch import nn

from mcbench.kinds.data import Dataset, as_batch
from mcbench.run.allocator import keep_freed_memory
from mcbench.toolkit.adversarial import frozen
from mcbench.toolkit.nets import Normalize, NormalizedNetwork
from mcbench_plugins.architectures.convnet import ConvNet
from mcbench_plugins.architectures.preresnet import PreResNet
from mcbench_plugins.architectures.resnet18 import ResNet18
from mcbench_plugins.architectures.vgg16 import VGG16
from mcbench_plugins.attacks.pgd import PGD
from mcbench_plugins.datasets.cifar10 import CIFAR10
from mcbench_plugins.datasets.synthetic import Synthetic

ARCHS = {
    "convnet": ConvNet(),
    "resnet18": ResNet18(),
    "vgg16": VGG16(),
    "preresnet20": PreResNet(depth=20),
}
EPS, STEP, STEPS = 8 / 255, 2 / 255, 10


def load_data(root: Path, cache: Path, train_subset: int) -> Dataset:
    try:
        return CIFAR10(download=False, train_subset=train_subset).load(root, cache)
    except (FileNotFoundError, OSError, RuntimeError, ValueError) as e:
        print(f"CIFAR-10 not available ({e}); using synthetic data")
        return Synthetic(
            num_classes=10,
            image_size=32,
            train_per_class=train_subset // 10,
            test_per_class=200,
            noise=0.3,
        ).load(None, cache)


def adversarially_trained(
    arch: str, data: Dataset, device, epochs: int, batch_size: int = 128
) -> nn.Module:
    """A few epochs of PGD-3 adversarial training: enough for partial robustness."""
    torch.manual_seed(0)
    net = ARCHS[arch].build(data.num_classes, data.channels, data.image_size)
    model = NormalizedNetwork(Normalize(data.mean, data.std), net).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    attack = PGD(eps=EPS, step_size=EPS / 2, steps=3)
    generator = torch.Generator().manual_seed(0)
    train = data.train
    for _ in range(epochs):
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(train), batch_size):
            index = order[start : start + batch_size]
            x, y = as_batch(train.images[index].to(device)), train.labels[index].to(device)
            with frozen(model):
                x = attack.perturb(model, x, y, goal="loss", generator=generator)
            loss = F.cross_entropy(model(x), y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return model.eval()


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, out


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).double().mean().item()


def still_correct(model: nn.Module, attack: PGD, x, y) -> list[float]:
    """The fraction of the batch correctly classified on the clean images, then still so
    after each iterate 0 .. steps: read off the sizes of the batches the attack computes."""
    sizes = []
    hook = model.register_forward_pre_hook(lambda _, args: sizes.append(args[0].shape[0]))
    try:
        adversarial = attack.perturb(
            model, x, y, goal="misclassify", generator=torch.Generator().manual_seed(0)
        )
    finally:
        hook.remove()
    # sizes: the clean pass (all), then the points still standing before iterates 0 .. steps
    standing = sizes[1:] + [0] * (STEPS + 1 - len(sizes[1:]))
    standing.append(int((model(adversarial).argmax(1) == y).sum()))
    return [s / len(y) for s in standing]


def start_draw_ms(x: torch.Tensor, device) -> float:
    """What mcbench's random start costs on its own: drawn on the CPU (identical on every
    device for a seed), then copied to ``device``."""
    generator = torch.Generator().manual_seed(0)
    seconds, _ = timed(
        lambda: torch.empty_like(x).copy_(
            torch.rand(x.shape, generator=generator, pin_memory=device.type == "cuda"),
            non_blocking=True,
        ),
        device,
    )
    return 1000 * seconds


def compare(model, x, y, goal: str, repeats: int, device):
    ours = PGD(eps=EPS, step_size=STEP, steps=STEPS)
    theirs = torchattacks.PGD(model, eps=EPS, alpha=STEP, steps=STEPS, random_start=True)
    run_ours = lambda: ours.perturb(
        model, x, y, goal=goal, generator=torch.Generator().manual_seed(0)
    )

    def run_theirs():
        torch.manual_seed(0)
        return theirs(x, y)

    run_ours(), run_theirs()  # warm-up: kernels, autotuning, allocator
    ours_s, theirs_s = [], []
    for _ in range(repeats):
        seconds, adv_ours = timed(run_ours, device)
        ours_s.append(seconds)
        seconds, adv_theirs = timed(run_theirs, device)
        theirs_s.append(seconds)
    return (
        len(y) / statistics.median(ours_s),
        len(y) / statistics.median(theirs_s),
        accuracy(model, adv_ours, y),
        accuracy(model, adv_theirs, y),
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--archs", nargs="*", default=["convnet", "resnet18"], choices=sorted(ARCHS)
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=1000, help="test images attacked at once")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5, help="adversarial training epochs")
    parser.add_argument("--train-subset", type=int, default=5000)
    parser.add_argument("--data-root", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/mcache"))
    args = parser.parse_args()
    print(f"allocator: freed memory kept in the process: {keep_freed_memory()}")
    device = torch.device(args.device)
    data = load_data(args.data_root, args.cache, args.train_subset)
    test = data.test.subset(torch.arange(min(args.batch, len(data.test))))
    x, y = as_batch(test.images.to(device)), test.labels.to(device)
    print(
        f"device: {device}, threads: {torch.get_num_threads()}, torch {torch.__version__}; "
        f"data: {data.source.split(' (')[0]}; batch {len(y)}, median of {args.repeats}; "
        f"PGD-{STEPS} L-inf eps 8/255 step 2/255, random start\n"
    )
    draw = statistics.median(start_draw_ms(x, device) for _ in range(3))
    rows, notes = (
        [],
        [
            f"random start of the batch drawn on the CPU and copied: {draw:.1f} ms "
            f"(part of mcbench's time)"
        ],
    )
    for arch in args.archs:
        seconds, model = timed(
            lambda: adversarially_trained(arch, data, device, args.epochs), device
        )
        with frozen(model):
            standing = still_correct(model, PGD(eps=EPS, step_size=STEP, steps=STEPS), x, y)
            notes.append(
                f"{arch}: trained in {seconds:.0f} s; correct on the clean batch "
                f"{standing[0]:.3f}, still correct after iterate 0..{STEPS}: "
                + " ".join(f"{s:.2f}" for s in standing[1:])
            )
            for goal, target in (("loss", 1.0), ("misclassify", 1.5)):
                ours, theirs, acc_ours, acc_theirs = compare(
                    model, x, y, goal, args.repeats, device
                )
                robust = f"{acc_ours:.3f} vs {acc_theirs:.3f}"
                if goal == "misclassify" and acc_ours > acc_theirs:
                    robust += " (mcbench HIGHER)"
                rows.append(
                    f"| {arch} | {goal} | {theirs:.0f} | {ours:.0f} | "
                    f"{ours / theirs:.2f}x (goal {target}x) | {robust} |"
                )
    for note in notes:
        print(note)
    print(
        "\n| network | goal | torchattacks img/s | mcbench img/s | speed-up | "
        "accuracy after the attack, mcbench vs torchattacks |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(rows), flush=True)


if __name__ == "__main__":
    main()
