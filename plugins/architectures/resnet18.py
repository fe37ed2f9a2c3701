"""ResNet-18 adapted to CIFAR-sized images: a 3x3 stride-1 stem and no max-pool, so 32x32
inputs keep their resolution into the first stage."""

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

import mcbench
from mcbench.kinds import ArchitecturePlugin

WIDTHS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = 2


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus a shortcut (1x1 conv + BN when the shape changes), ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


@dataclass(frozen=True)
class ResNet18(ArchitecturePlugin):
    """CIFAR ResNet-18: 3x3 stem without max-pool, BasicBlocks [2, 2, 2, 2], widths 64-512."""

    name: ClassVar[str] = "resnet18"

    def build(self, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
        layers = [
            nn.Conv2d(in_channels, WIDTHS[0], 3, padding=1, bias=False),
            nn.BatchNorm2d(WIDTHS[0]),
            nn.ReLU(inplace=True),
        ]
        planes_in = WIDTHS[0]
        for stage, planes in enumerate(WIDTHS):
            for i in range(BLOCKS_PER_STAGE):
                layers.append(BasicBlock(planes_in, planes, 2 if stage > 0 and i == 0 else 1))
                planes_in = planes
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(planes_in, num_classes)]
        net = nn.Sequential(*layers)
        for m in net.modules():  # torchvision's ResNet initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        return net


@mcbench.hookimpl
def mcbench_register_architectures(register):
    register(ResNet18)
