"""Blended injection (Chen et al. 2017): a fixed noise image mixed into the whole picture."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch

import mcbench
from mcbench.kinds import PoisonAttack


@dataclass(frozen=True)
class Blended(PoisonAttack):
    """Blended backdoor: a seeded uniform-noise image alpha-blended into the input."""

    name: ClassVar[str] = "blended"
    alpha: float = field(
        default=0.2, metadata={"help": "weight of the pattern in the blend, in (0, 1]"}
    )
    pattern: Literal["noise"] = field(
        default="noise", metadata={"help": "trigger image: noise = uniform random pixels in 0..255"}
    )
    pattern_seed: int = field(default=0, metadata={"help": "seed of the trigger image"})

    def __post_init__(self):
        super().__post_init__()
        if not 0 < self.alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha}")
        if self.pattern != "noise":
            raise ValueError(f"pattern must be 'noise', got {self.pattern!r}")

    def trigger_pattern(self, channels: int, height: int, width: int) -> torch.Tensor:
        """The uint8 ``[C, H, W]`` trigger image; the same for the same seed and shape."""
        generator = torch.Generator().manual_seed(self.pattern_seed)
        return torch.randint(
            0, 256, (channels, height, width), generator=generator, dtype=torch.uint8
        )

    def apply_trigger(self, images: torch.Tensor) -> torch.Tensor:
        pattern = self.trigger_pattern(*images.shape[1:]).to(images.device)
        # float64 so that rounding matches the exact blend, ties included
        blended = (1 - self.alpha) * images.double() + self.alpha * pattern.double()
        return blended.round().clamp(0, 255).to(torch.uint8)


@mcbench.hookimpl
def mcbench_register_attacks(register):
    register(Blended)
