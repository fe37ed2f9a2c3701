"""Pre-activation ResNet for CIFAR (He et al. 2016, "Identity Mappings in Deep Residual
Networks"), in the form Garipov et al. (2018) used for mode connectivity."""

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from torch import nn

import mcbench
from mcbench.kinds import ArchitecturePlugin

WIDTHS = (16, 32, 64)
BOTTLENECK_FROM_DEPTH = 44
"""With block "auto", depths from here on use bottleneck blocks."""
MAX_DEPTH = 1202
"""The deepest CIFAR ResNet published (He et al. 2016); deeper is a typo that would
build for hours."""


class BasicBlock(nn.Module):
    """Residual branch BN-ReLU-conv3x3 twice: two layers deep."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(torch.relu(self.bn1(x)))
        return self.conv2(torch.relu(self.bn2(x)))


class Bottleneck(nn.Module):
    """Residual branch BN-ReLU-conv1x1, BN-ReLU-conv3x3, BN-ReLU-conv1x1 (x4 channels):
    three layers deep."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(torch.relu(self.bn1(x)))
        x = self.conv2(torch.relu(self.bn2(x)))
        return self.conv3(torch.relu(self.bn3(x)))


class Residual(nn.Module):
    """A block plus its identity (or 1x1 projection) shortcut, taken from the raw input."""

    def __init__(self, block: type, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.body = block(in_planes, planes, stride)
        out = planes * block.expansion
        self.shortcut = (
            nn.Conv2d(in_planes, out, 1, stride=stride, bias=False)
            if stride != 1 or in_planes != out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.shortcut(x)


def blocks_for(depth: int, block: str) -> tuple[type, int]:
    """(block class, blocks per stage) for a network ``depth`` layers deep."""
    kind = (
        block if block != "auto" else ("bottleneck" if depth >= BOTTLENECK_FROM_DEPTH else "basic")
    )
    # one more block in each of the 3 stages adds 3 x (layers per block) to the depth
    cls, step = (Bottleneck, 9) if kind == "bottleneck" else (BasicBlock, 6)
    if depth > MAX_DEPTH:
        raise ValueError(f"depth must be at most {MAX_DEPTH}, got {depth}")
    if depth < step + 2 or (depth - 2) % step:
        forms = {
            "basic": "6n+2 (8, 14, 20, ..., 56, ...)",
            "bottleneck": "9n+2 (11, 20, 29, ..., 110)",
        }
        why = (
            f" (block 'auto' uses basic blocks below depth {BOTTLENECK_FROM_DEPTH} and "
            f"bottleneck blocks from {BOTTLENECK_FROM_DEPTH} on)"
            if block == "auto"
            else ""
        )
        raise ValueError(
            f"depth {depth} does not fit {kind} blocks: expected depth = "
            f"{forms[kind]} with n >= 1{why}"
        )
    return cls, (depth - 2) // step


@dataclass(frozen=True)
class PreResNet(ArchitecturePlugin):
    """Pre-activation ResNet for CIFAR (PreResNet-110 in the paper); depth counts every layer."""

    name: ClassVar[str] = "preresnet"
    depth: int = field(
        default=110,
        metadata={
            "help": "conv + linear layers on the main path: 6n+2 (basic) or 9n+2 (bottleneck)"
        },
    )
    block: Literal["auto", "basic", "bottleneck"] = field(
        default="auto",
        metadata={
            "help": f"residual block: auto = bottleneck from depth {BOTTLENECK_FROM_DEPTH} on, "
            "basic below"
        },
    )

    def __post_init__(self):
        blocks_for(self.depth, self.block)

    def build(self, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
        block, n = blocks_for(self.depth, self.block)
        layers = [nn.Conv2d(in_channels, WIDTHS[0], 3, padding=1, bias=False)]
        planes_in = WIDTHS[0]
        for stage, planes in enumerate(WIDTHS):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                layers.append(Residual(block, planes_in, planes, stride))
                planes_in = planes * block.expansion
        layers += [
            nn.BatchNorm2d(planes_in),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(planes_in, num_classes),
        ]
        net = nn.Sequential(*layers)
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        return net


@mcbench.hookimpl
def mcbench_register_architectures(register):
    register(PreResNet)
