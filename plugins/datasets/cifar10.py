"""CIFAR-10 from whichever local copy is found: torchvision's binary batches, image-class
folders, or a .tar.gz of such folders (decoded once, then read from a cache)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal, get_args

import numpy as np
import torch

import mcbench
from mcbench.kinds import DatasetPlugin
from mcbench.kinds.data import Dataset, ImageSet
from mcbench_plugins.datasets import _image_folders as image_folders

CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
TORCHVISION_FOLDER = "cifar-10-batches-py"
TORCHVISION_ARCHIVE = "cifar-10-python.tar.gz"  # torchvision's own download, not image folders
Source = Literal["auto", "torchvision", "folder", "archive"]


@dataclass(frozen=True)
class CIFAR10(DatasetPlugin):
    """CIFAR-10 from torchvision's files, image-class folders or a .tar.gz of them."""

    name: ClassVar[str] = "cifar10"
    source: Source = field(
        default="auto",
        metadata={"help": "layout to read; auto tries torchvision, folder, archive, then download"},
    )
    download: bool = field(
        default=True,
        metadata={
            "help": "let torchvision download CIFAR-10 into the root when no local copy is found"
        },
    )
    train_subset: int = field(
        default=0,
        metadata={
            "help": "keep this many training images, the first of each class "
            "(multiple of 10; 0: all)"
        },
    )
    test_subset: int = field(
        default=0,
        metadata={
            "help": "keep this many test images, the first of each class (multiple of 10; 0: all)"
        },
    )

    def __post_init__(self):
        if self.source not in get_args(Source):
            raise ValueError(f"source must be one of {get_args(Source)}, got {self.source!r}")
        for key in ("train_subset", "test_subset"):
            value = getattr(self, key)
            if value < 0 or value % len(CLASS_NAMES):
                raise ValueError(
                    f"{key} must be 0 (all) or a positive multiple of "
                    f"{len(CLASS_NAMES)} (an equal share per class), got {value}"
                )

    def shape(self) -> tuple[int, int, int]:
        return len(CLASS_NAMES), 3, 32

    def load(self, root: Path | None, cache_dir: Path) -> Dataset:
        root = Path(root) if root is not None else default_root(cache_dir)
        looked = []
        if self.source in ("auto", "torchvision"):
            looked.append(f"{root / TORCHVISION_FOLDER}/ (torchvision's binary batches)")
            if (root / TORCHVISION_FOLDER).is_dir():
                return self._finish(*read_torchvision(root, download=False))
        if self.source in ("auto", "folder"):
            for base in (root, root / "cifar10"):
                looked.append(f"{base}/train/<class>/ and {base}/test/<class>/ (image folders)")
                if (base / "train").is_dir() and (base / "test").is_dir():
                    return self._finish(*read_folders(base, cache_dir))
        if self.source in ("auto", "archive"):
            looked.append(
                f"{root if root.is_file() else root / '*.tar.gz'} or .tgz "
                f"(archive of image folders)"
            )
            archive = image_folders.find_archive(
                root, prefer="cifar10", skip=(TORCHVISION_ARCHIVE,)
            )
            if archive is not None:
                return self._finish(*read_archive(archive, cache_dir))
        if self.source in ("auto", "torchvision"):
            if not self.download:
                looked.append("download: off (download=false)")
            elif root.exists() and not root.is_dir():
                looked.append(f"download: skipped, {root} is not a folder")
            else:
                try:
                    return self._finish(*read_torchvision(root, download=True))
                except Exception as e:  # torchvision raises URLError, OSError or RuntimeError
                    looked.append(f"download into {root} failed: {type(e).__name__}: {e}")
        raise FileNotFoundError(
            f"no CIFAR-10 copy found under {root} (source={self.source}); looked for:\n  - "
            + "\n  - ".join(looked)
            + "\nPass --data-root or set $MCBENCH_DATA to a folder holding one of these."
        )

    def _finish(
        self, train: ImageSet, test: ImageSet, class_names: tuple[str, ...], source: str
    ) -> Dataset:
        if class_names != CLASS_NAMES:
            raise ValueError(
                f"{source}: expected the CIFAR-10 classes "
                f"{', '.join(CLASS_NAMES)}; found {', '.join(class_names)}"
            )
        return Dataset(
            train=class_balanced(train, self.train_subset, "train"),
            test=class_balanced(test, self.test_subset, "test"),
            num_classes=len(CLASS_NAMES),
            mean=MEAN,
            std=STD,
            class_names=CLASS_NAMES,
            source=source,
        )


def default_root(cache_dir: Path) -> Path:
    """Where the data is looked for (and downloaded to) without a root: the cache."""
    return Path(cache_dir) / "data"


def class_balanced(data: ImageSet, subset: int, split: str) -> ImageSet:
    """The first ``subset // 10`` images of each class, kept in their original order."""
    if subset == 0:
        return data
    per_class = subset // len(CLASS_NAMES)
    keep = []
    for label, name in enumerate(CLASS_NAMES):
        index = torch.nonzero(data.labels == label).flatten()
        if len(index) < per_class:
            raise ValueError(
                f"{split}_subset={subset} needs {per_class} {name} images; "
                f"the {split} split has {len(index)}"
            )
        keep.append(index[:per_class])
    return data.subset(torch.sort(torch.cat(keep)).values)


def read_torchvision(root: Path, download: bool):
    from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10

    splits = []
    for train in (True, False):
        try:
            copy = TorchvisionCIFAR10(str(root), train=train, download=download)
        except RuntimeError as e:
            if download:
                raise
            raise RuntimeError(f"torchvision rejects {root / TORCHVISION_FOLDER}: {e}") from e
        images = torch.from_numpy(np.ascontiguousarray(copy.data.transpose(0, 3, 1, 2)))
        splits.append(ImageSet(images, torch.tensor(copy.targets, dtype=torch.int64)))
    return (
        *splits,
        tuple(copy.classes),
        f"torchvision cifar-10-batches-py at {root / TORCHVISION_FOLDER} (md5-checked)",
    )


def read_folders(base: Path, cache_dir: Path):
    decoded, key = image_folders.load_folders(base, Path(cache_dir) / "cifar10")
    return (
        *decoded.image_sets(),
        decoded.class_names,
        f"{base} (image-class folders, listing sha256 {key})",
    )


def read_archive(path: Path, cache_dir: Path):
    decoded, sha256 = image_folders.load_archive(path, Path(cache_dir) / "cifar10")
    return (
        *decoded.image_sets(),
        decoded.class_names,
        f"{path} (tar.gz of image-class folders, sha256 {sha256})",
    )


@mcbench.hookimpl
def mcbench_register_datasets(register):
    register(CIFAR10)
