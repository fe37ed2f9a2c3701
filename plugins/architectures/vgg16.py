"""VGG16 for CIFAR-sized images as used by Garipov et al. (2018) and Zhao et al. (2020):
13 3x3 convolutions, five max-pools and a 512-512 classifier with dropout."""

import math
from dataclasses import dataclass, field
from typing import ClassVar

from torch import nn

import mcbench
from mcbench.kinds import ArchitecturePlugin

CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
MIN_IMAGE_SIZE = 16
"""Below this the last two stages would convolve single pixels."""


def features(in_channels: int, batch_norm: bool) -> nn.Sequential:
    layers, channels = [], in_channels
    for item in CONFIG:
        if item == "M":
            # ceil_mode keeps a 1x1 map alive through the fifth pool on 16x16 images; on sizes
            # divisible by 32 it is the ordinary 2x2 max-pool
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
            continue
        conv = nn.Conv2d(channels, item, kernel_size=3, padding=1)
        nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / (3 * 3 * item)))
        nn.init.zeros_(conv.bias)
        layers.append(conv)
        if batch_norm:
            layers.append(nn.BatchNorm2d(item))
        layers.append(nn.ReLU(inplace=True))
        channels = item
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class VGG16(ArchitecturePlugin):
    """The paper's CIFAR VGG16: 13 convolutions, no BatchNorm, 512-512 dropout classifier."""

    name: ClassVar[str] = "vgg16"
    batch_norm: bool = field(default=False, metadata={"help": "BatchNorm after every convolution"})

    def build(self, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
        if image_size < MIN_IMAGE_SIZE:
            raise ValueError(
                f"vgg16 needs images of at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} "
                f"(it max-pools five times), got {image_size}x{image_size}"
            )
        # on 32x32 images the features are already 1x1, as in the paper's network
        pool = nn.Identity() if image_size == 32 else nn.AdaptiveAvgPool2d(1)
        return nn.Sequential(
            features(in_channels, self.batch_norm),
            pool,
            nn.Flatten(),
            nn.Dropout(),
            nn.Linear(512, 512),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(512, 512),
            nn.ReLU(inplace=True),
            nn.Linear(512, num_classes),
        )


@mcbench.hookimpl
def mcbench_register_architectures(register):
    register(VGG16)
