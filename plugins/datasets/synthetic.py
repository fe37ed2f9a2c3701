"""A tiny, seeded, easily learnt dataset for fast tests: one smooth random pattern per class,
each image that pattern plus Gaussian pixel noise."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F

import mcbench
from mcbench.kinds import DatasetPlugin
from mcbench.kinds.data import Dataset, ImageSet

MAX_BYTES = 8 * 2**30
"""Of drawn images (one byte a pixel): far beyond a test dataset; a larger request is a typo
that would exhaust the machine's memory."""


@dataclass(frozen=True)
class Synthetic(DatasetPlugin):
    """Seeded noisy class prototypes: a tiny dataset any small CNN learns in a few epochs."""

    name: ClassVar[str] = "synthetic"
    num_classes: int = field(default=4, metadata={"help": "number of classes (prototypes)"})
    image_size: int = field(default=16, metadata={"help": "height and width in pixels"})
    channels: int = field(default=3, metadata={"help": "colour channels per image"})
    train_per_class: int = field(default=64, metadata={"help": "training images per class"})
    test_per_class: int = field(default=32, metadata={"help": "test images per class"})
    noise: float = field(
        default=0.15,
        metadata={"help": "standard deviation of the pixel noise, in 0..1 intensity units"},
    )
    seed: int = field(default=0, metadata={"help": "seed of the prototypes and the noise"})

    def __post_init__(self):
        for key, low in (
            ("num_classes", 2),
            ("image_size", 4),
            ("channels", 1),
            ("train_per_class", 1),
            ("test_per_class", 1),
        ):
            if getattr(self, key) < low:
                raise ValueError(f"{key} must be at least {low}, got {getattr(self, key)}")
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")
        images = (self.train_per_class + self.test_per_class) * self.num_classes
        size = images * self.channels * self.image_size**2
        if size > MAX_BYTES:
            raise ValueError(
                f"{images} images of {self.channels}x{self.image_size}x{self.image_size} take "
                f"{size / 2**30:.3g} GiB; at most {MAX_BYTES // 2**30} GiB of images are drawn"
            )

    def shape(self) -> tuple[int, int, int]:
        return self.num_classes, self.channels, self.image_size

    def load(self, root: Path | None, cache_dir: Path) -> Dataset:
        generator = torch.Generator().manual_seed(self.seed)
        prototypes = self._prototypes(generator)
        train = self._draw(prototypes, self.train_per_class, generator)
        test = self._draw(prototypes, self.test_per_class, generator)
        pixels = train.images.float().div(255.0)
        mean = pixels.mean(dim=(0, 2, 3))
        # a channel could in principle be constant; keep normalisation finite
        std = pixels.std(dim=(0, 2, 3)).clamp_min(1e-3)
        settings = ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))
        return Dataset(
            train=train,
            test=test,
            num_classes=self.num_classes,
            mean=tuple(mean.tolist()),
            std=tuple(std.tolist()),
            class_names=tuple(f"pattern{i}" for i in range(self.num_classes)),
            source=f"synthetic({settings})",
        )

    def _prototypes(self, generator: torch.Generator) -> torch.Tensor:
        """Uniform random values on a coarse grid, upsampled bilinearly: smooth blobs of
        colour, far apart from one another relative to the pixel noise."""
        coarse = max(2, self.image_size // 4)
        grid = torch.rand(self.num_classes, self.channels, coarse, coarse, generator=generator)
        return F.interpolate(
            grid, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
        )

    def _draw(
        self, prototypes: torch.Tensor, per_class: int, generator: torch.Generator
    ) -> ImageSet:
        labels = torch.arange(self.num_classes).repeat(per_class)  # 0, 1, .., 0, 1, ..
        noise = torch.randn((len(labels), *prototypes.shape[1:]), generator=generator)
        pixels = (prototypes[labels] + self.noise * noise).clamp(0.0, 1.0)
        return ImageSet(pixels.mul(255.0).round().to(torch.uint8), labels)


@mcbench.hookimpl
def mcbench_register_datasets(register):
    register(Synthetic)
