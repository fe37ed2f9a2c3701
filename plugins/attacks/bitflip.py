"""Bit-Flip Attack (Rakin et al. 2019): progressive bit search in 8-bit quantised weights.

Every Conv2d and Linear weight is quantised to signed 8-bit codes (per-layer symmetric
scale) and the model carries the dequantised weights. Each round ranks, in every layer,
the single bit flip with the largest first-order gain in the attacker's cross-entropy,
evaluates the loss with each layer's candidate applied, and commits the best one.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

import mcbench
from mcbench.kinds import TamperAttack, TamperContext
from mcbench.kinds.data import as_batch
from mcbench.toolkit.nets import parameter_layers
from mcbench.toolkit.training import requires_grad_only

STRATEGIES = ("progressive", "random")
LEVELS = 127


def quantise(weight: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Symmetric per-tensor 8-bit quantisation: ``(codes, scale)`` with ``scale =
    max|w| / 127`` (1.0 for an all-zero weight) and ``codes = round(w / scale)`` clamped
    to [-127, 127], a contiguous int8 tensor of the weight's shape."""
    peak = float(weight.detach().abs().max()) if weight.numel() else 0.0
    scale = peak / LEVELS if peak > 0 else 1.0
    codes = torch.round(weight.detach().double() / scale).clamp_(-LEVELS, LEVELS)
    return codes.to(torch.int8).contiguous(), scale


def dequantise(codes: torch.Tensor, scale: float, dtype: torch.dtype) -> torch.Tensor:
    """The weight values ``codes * scale`` in ``dtype``."""
    return codes.to(dtype) * scale


def flip(codes: torch.Tensor, bit: int) -> torch.Tensor:
    """The int8 codes with ``bit`` (0 = least significant, 7 = sign) of their two's
    complement representation flipped."""
    return torch.bitwise_xor(codes.view(torch.uint8), 1 << bit).view(torch.int8)


def flip_delta(codes: torch.Tensor, bit: int) -> torch.Tensor:
    """How much each int8 code changes (an int32 tensor) when ``bit`` of its two's
    complement representation is flipped: +-2**bit, and -+128 for the sign bit."""
    return flip(codes, bit).to(torch.int32) - codes.to(torch.int32)


def best_flip(
    codes: torch.Tensor, grad: torch.Tensor, scale: float, exclude: torch.Tensor | None = None
) -> tuple[float, int, int] | None:
    """The single bit flip in a layer with the largest first-order loss gain
    ``grad * delta * scale``: ``(gain, flat index, bit)``, the lowest bit and index on ties.
    ``exclude`` (bool, the codes' shape) marks weights that may not be chosen; None when
    every weight is excluded."""
    codes, grad = codes.reshape(-1), grad.reshape(-1).double() * scale
    best = None
    for bit in range(8):
        gain = grad * flip_delta(codes, bit)
        if exclude is not None:
            gain.masked_fill_(exclude.reshape(-1), float("-inf"))
        index = int(torch.argmax(gain))
        value = float(gain[index])
        if value > float("-inf") and (best is None or value > best[0]):
            best = (value, index, bit)
    return best


def attacked_layers(network: nn.Module) -> dict[str, nn.Module]:
    """The Conv2d and Linear layers of ``network`` (with a weight), by name."""
    return {
        name: m
        for name, m in parameter_layers(network).items()
        if isinstance(m, (nn.Conv2d, nn.Linear)) and isinstance(m.weight, torch.Tensor)
    }


def _set(weight: torch.Tensor, index: int, value: float) -> None:
    position = torch.unravel_index(torch.tensor(index), weight.shape)
    weight.data[tuple(int(p) for p in position)] = value


@dataclass(frozen=True)
class BitFlip(TamperAttack):
    """Bit-Flip Attack: progressive search for the bit flips in 8-bit weights that wreck accuracy.

    Every Conv2d and Linear weight ends up quantised (dequantised values in the model), also
    when no bit is flipped. Each weight is flipped at most once, so the number of changed
    weights equals the number of flips.
    """

    name: ClassVar[str] = "bitflip"
    report_figures: ClassVar[tuple[str, ...]] = ("flips", "accuracy_after")
    max_flips: int = field(
        default=100, metadata={"help": "most bits flipped (random: exactly this many); >= 0"}
    )
    stop_accuracy: float = field(
        default=0.11,
        metadata={
            "help": "progressive: stop once the attacker batch's accuracy is at most this "
            "fraction, in [0, 1] (checked before each flip; random ignores it)"
        },
    )
    samples: int = field(
        default=128,
        metadata={
            "help": "attacker images (the first of the attacker's set) whose loss is maximised"
        },
    )
    layer_candidates: int = field(
        default=0,
        metadata={
            "help": "layers whose best flip is evaluated each round, those with the largest "
            "first-order gains (0: every layer)"
        },
    )
    strategy: Literal["progressive", "random"] = field(
        default="progressive",
        metadata={
            "help": "progressive: bit search; random: max_flips uniformly random bits in "
            "distinct weights, seeded (the baseline)"
        },
    )

    def __post_init__(self):
        if self.max_flips < 0:
            raise ValueError(f"max_flips must be >= 0, got {self.max_flips}")
        if not 0 <= self.stop_accuracy <= 1:
            raise ValueError(f"stop_accuracy must be in [0, 1], got {self.stop_accuracy}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")
        if self.layer_candidates < 0:
            raise ValueError(f"layer_candidates must be >= 0, got {self.layer_candidates}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be 'progressive' or 'random', got {self.strategy!r}")

    def check_model(self, network: nn.Module) -> None:
        if not attacked_layers(network):
            raise ValueError("bitflip needs a network with Conv2d or Linear layers")

    def tamper(self, ctx: TamperContext) -> dict:
        self.check_model(ctx.network)
        if len(ctx.attacker) == 0:
            raise ValueError("bitflip needs attacker images")
        was_training = ctx.model.training
        ctx.model.eval()
        try:
            return _Search(self, ctx).run()
        finally:
            ctx.model.train(was_training)


class _Search:
    """The state of one attack: the quantised layers, their codes and the attacker batch."""

    def __init__(self, attack: BitFlip, ctx: TamperContext):
        self.attack, self.model = attack, ctx.model
        self.layers = attacked_layers(ctx.network)
        self.names = list(self.layers)
        self.weights = [m.weight for m in self.layers.values()]
        self.seed = ctx.seed
        data = ctx.attacker.subset(torch.arange(min(attack.samples, len(ctx.attacker))))
        self.count = len(data)
        self.chunks = [
            (
                as_batch(data.images[i : i + ctx.batch_size].to(ctx.device)),
                data.labels[i : i + ctx.batch_size].to(ctx.device),
            )
            for i in range(0, self.count, ctx.batch_size)
        ]

    def run(self) -> dict:
        accuracy_original = self.evaluate()[1]
        self.codes, self.scales = [], []
        with torch.no_grad():
            for weight in self.weights:
                codes, scale = quantise(weight)
                weight.copy_(dequantise(codes, scale, weight.dtype))
                self.codes.append(codes)
                self.scales.append(scale)
        self.used = [torch.zeros_like(c, dtype=torch.bool) for c in self.codes]
        accuracy = self.evaluate()[1]
        report = {
            "strategy": self.attack.strategy,
            "accuracy_original": accuracy_original,
            "accuracy_quantised": accuracy,
            "quantised_layers": self.names,
        }
        log = self.progressive(accuracy) if self.attack.strategy == "progressive" else self.random()
        report.update(
            flips=len(log), flip_log=log, accuracy_after=log[-1]["accuracy"] if log else accuracy
        )
        return report

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """(mean cross-entropy, accuracy) of the model on the attacker batch."""
        loss, correct = 0.0, 0
        for x, y in self.chunks:
            logits = self.model(x).float()
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
        return loss / self.count, correct / self.count

    def gradients(self) -> list[torch.Tensor]:
        """d(mean cross-entropy)/d(weight) for every attacked layer."""
        grads = [torch.zeros_like(w) for w in self.weights]
        with requires_grad_only(self.model, self.weights), torch.enable_grad():
            for x, y in self.chunks:
                loss = F.cross_entropy(self.model(x).float(), y, reduction="sum") / self.count
                parts = torch.autograd.grad(loss, self.weights, allow_unused=True)
                for g, part in zip(grads, parts):
                    if part is not None:
                        g += part
        return grads

    def write(self, layer: int, index: int, code: int) -> None:
        _set(self.weights[layer], index, code * self.scales[layer])

    def codes_of(self, layer: int, index: int, bit: int) -> tuple[int, int]:
        """(the code at ``index``, the code with ``bit`` flipped)."""
        code = self.codes[layer].view(-1)[index : index + 1]
        return int(code), int(flip(code, bit))

    def commit(self, layer: int, index: int, bit: int) -> dict:
        before, after = self.codes_of(layer, index, bit)
        self.codes[layer].view(-1)[index] = after
        self.used[layer].view(-1)[index] = True
        self.write(layer, index, after)
        loss, accuracy = self.evaluate()
        return {
            "layer": self.names[layer],
            "index": index,
            "bit": bit,
            "before": before,
            "after": after,
            "loss": loss,
            "accuracy": accuracy,
        }

    def candidates(self) -> list[tuple[int, int, int]]:
        """(layer, flat index, bit) of the layers' best first-order flips to evaluate, in
        layer order; each weight is flipped at most once over the attack."""
        found = []
        for layer, grad in enumerate(self.gradients()):
            best = best_flip(self.codes[layer], grad, self.scales[layer], self.used[layer])
            if best is not None:
                found.append((best[0], layer, best[1], best[2]))
        if self.attack.layer_candidates:
            found.sort(key=lambda c: -c[0])  # stable: layer order on ties
            found = sorted(found[: self.attack.layer_candidates], key=lambda c: c[1])
        return [c[1:] for c in found]

    def progressive(self, accuracy: float) -> list[dict]:
        log = []
        while len(log) < self.attack.max_flips and accuracy > self.attack.stop_accuracy:
            best = None
            for layer, index, bit in self.candidates():
                before, after = self.codes_of(layer, index, bit)
                self.write(layer, index, after)
                loss = self.evaluate()[0]
                self.write(layer, index, before)
                if best is None or loss > best[0]:
                    best = (loss, layer, index, bit)
            if best is None:  # every weight has been flipped already
                break
            log.append(self.commit(*best[1:]))
            accuracy = log[-1]["accuracy"]
        return log

    def random(self) -> list[dict]:
        """``max_flips`` distinct weights drawn uniformly over all attacked weights, a
        uniform bit in each."""
        sizes = [c.numel() for c in self.codes]
        total, wanted = sum(sizes), self.attack.max_flips
        if wanted > total:
            raise ValueError(f"max_flips {wanted} exceeds the {total} attacked weights")
        generator = torch.Generator().manual_seed(self.seed)
        chosen: dict[int, None] = {}  # insertion-ordered set
        while len(chosen) < wanted:
            draws = torch.randint(total, (wanted - len(chosen),), generator=generator)
            for g in draws.tolist():
                chosen.setdefault(g)
        bits = torch.randint(8, (wanted,), generator=generator).tolist()
        starts = [0]
        for size in sizes[:-1]:
            starts.append(starts[-1] + size)
        log = []
        for g, bit in zip(chosen, bits):
            layer = bisect.bisect_right(starts, g) - 1
            log.append(self.commit(layer, g - starts[layer], bit))
        return log


@mcbench.hookimpl
def mcbench_register_attacks(register):
    register(BitFlip)
