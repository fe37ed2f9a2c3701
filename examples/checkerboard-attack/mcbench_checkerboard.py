"""A backdoor whose trigger is a black-and-white checkerboard patch in a corner."""

from dataclasses import dataclass, field
from typing import ClassVar

import torch

import mcbench
from mcbench.kinds import PoisonAttack


@dataclass(frozen=True)
class Checkerboard(PoisonAttack):
    """Checkerboard backdoor: an alternating black/white square in the bottom-right corner."""

    name: ClassVar[str] = "checkerboard"
    size: int = field(default=4, metadata={"help": "side of the square, in pixels"})

    def __post_init__(self):
        super().__post_init__()  # target, poison_rate and mode come from PoisonAttack
        if self.size < 2:
            raise ValueError(f"size must be >= 2, got {self.size}")

    def check_dataset(self, num_classes, channels, image_size):
        super().check_dataset(num_classes, channels, image_size)
        if self.size > image_size:
            raise ValueError(f"a {self.size}px checkerboard does not fit {image_size}px images")

    def apply_trigger(self, images: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(self.size)
        board = ((rows[:, None] + rows[None, :]) % 2 * 255).to(torch.uint8)
        out = images.clone()
        out[:, :, -self.size :, -self.size :] = board
        return out


@mcbench.hookimpl
def mcbench_register_attacks(register):
    register(Checkerboard)
