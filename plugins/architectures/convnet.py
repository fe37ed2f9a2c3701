"""A small, fast CNN for CPU-scale runs on 32x32 images: stages of 3x3 convolutions with
BatchNorm and ReLU, each ending in a 2x2 max-pool, then global average pooling and a linear
classifier."""

from dataclasses import dataclass, field
from typing import ClassVar

from torch import nn

import mcbench
from mcbench.kinds import ArchitecturePlugin

MAX_WIDTH = 2**16
MAX_CONVS_PER_STAGE = 64
"""Far beyond a small fast CNN; larger values are typos that would build for hours."""


@dataclass(frozen=True)
class ConvNet(ArchitecturePlugin):
    """Small fast CNN for CPU runs: conv-BN-ReLU stages with max-pools, global pool, linear."""

    name: ClassVar[str] = "convnet"
    # the fourth stage costs little at 4x4 pixels: about 81% on CIFAR-10 after 10 epochs
    # against 73% for (32, 64, 128), at about 1000 training images/s on 2 CPU cores
    widths: tuple[int, ...] = field(
        default=(32, 64, 128, 256),
        metadata={"help": "output channels of each stage; every stage halves the image size"},
    )
    convs_per_stage: int = field(
        default=1,
        metadata={
            "help": "3x3 convolutions per stage; 2 is more accurate but 2-3x slower on a CPU"
        },
    )
    batch_norm: bool = field(default=True, metadata={"help": "BatchNorm after every convolution"})

    def __post_init__(self):
        if not self.widths or any(not 1 <= w <= MAX_WIDTH for w in self.widths):
            shown = list(self.widths[:8]) + (["..."] if len(self.widths) > 8 else [])
            raise ValueError(
                f"widths must be a non-empty list of channel counts from 1 to {MAX_WIDTH}, "
                f"got {shown}"
            )
        if not 1 <= self.convs_per_stage <= MAX_CONVS_PER_STAGE:
            raise ValueError(
                f"convs_per_stage must be from 1 to {MAX_CONVS_PER_STAGE}, "
                f"got {self.convs_per_stage}"
            )

    def build(self, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
        if image_size < 2 ** len(self.widths):
            raise ValueError(
                f"{len(self.widths)} stages halve the image {len(self.widths)} times: "
                f"need images of at least {2 ** len(self.widths)} pixels, "
                f"got {image_size}"
            )
        layers, channels = [], in_channels
        for width in self.widths:
            for _ in range(self.convs_per_stage):
                # BatchNorm's shift makes a convolution bias redundant
                layers.append(nn.Conv2d(channels, width, 3, padding=1, bias=not self.batch_norm))
                if self.batch_norm:
                    layers.append(nn.BatchNorm2d(width))
                layers.append(nn.ReLU(inplace=True))
                channels = width
            layers.append(nn.MaxPool2d(2))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
        return nn.Sequential(*layers)


@mcbench.hookimpl
def mcbench_register_architectures(register):
    register(ConvNet)
