"""BadNets (Gu et al. 2017): a solid patch stamped near one corner of the image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch

import mcbench
from mcbench.kinds import PoisonAttack

POSITIONS = ("bottom-right", "bottom-left", "top-right", "top-left")


@dataclass(frozen=True)
class BadNets(PoisonAttack):
    """BadNets backdoor: a solid square patch near a corner, labels flipped to the target."""

    name: ClassVar[str] = "badnets"
    patch_size: int = field(default=3, metadata={"help": "side of the square patch in pixels"})
    position: Literal["bottom-right", "bottom-left", "top-right", "top-left"] = field(
        default="bottom-right", metadata={"help": "corner the patch is placed in"}
    )
    margin: int = field(
        default=1, metadata={"help": "pixels between the patch and the image border"}
    )
    color: tuple[int, ...] = field(
        default=(255, 255, 255),
        metadata={"help": "patch colour, one 0..255 value per channel (a single value for all)"},
    )

    def __post_init__(self):
        object.__setattr__(self, "color", tuple(self.color))
        super().__post_init__()
        if self.position not in POSITIONS:
            raise ValueError(
                f"position must be one of {', '.join(POSITIONS)}, got {self.position!r}"
            )
        if self.patch_size < 1:
            raise ValueError(f"patch_size must be at least 1, got {self.patch_size}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")
        if not self.color:
            raise ValueError("color needs at least one value")
        if any(not 0 <= c <= 255 for c in self.color):
            raise ValueError(f"color values must be in 0..255, got {self.color}")

    def check_dataset(self, num_classes: int, channels: int, image_size: int) -> None:
        super().check_dataset(num_classes, channels, image_size)
        self._check_fits(channels, image_size, image_size)

    def _check_fits(self, channels: int, height: int, width: int) -> None:
        needed = self.patch_size + self.margin
        if needed > min(height, width):
            raise ValueError(
                f"patch_size {self.patch_size} + margin {self.margin} does not fit "
                f"in {height}x{width} images"
            )
        if len(self.color) not in (1, channels):
            raise ValueError(
                f"color has {len(self.color)} values but the images have {channels} channels"
            )

    def patch_region(self, height: int, width: int) -> tuple[slice, slice]:
        """(rows, columns) the patch covers in a ``height`` x ``width`` image."""
        size, margin = self.patch_size, self.margin
        top = margin if self.position.startswith("top") else height - margin - size
        left = margin if self.position.endswith("left") else width - margin - size
        return slice(top, top + size), slice(left, left + size)

    def apply_trigger(self, images: torch.Tensor) -> torch.Tensor:
        channels, height, width = images.shape[1:]
        self._check_fits(channels, height, width)
        rows, cols = self.patch_region(height, width)
        colour = torch.tensor(self.color, dtype=torch.uint8, device=images.device)
        stamped = images.clone()
        stamped[:, :, rows, cols] = colour.view(-1, 1, 1)
        return stamped


@mcbench.hookimpl
def mcbench_register_attacks(register):
    register(BadNets)
