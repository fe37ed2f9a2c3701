"""Decoded train/test image arrays, kept on disk as uncompressed .npz files written
atomically (``mcbench.toolkit.checkpoint.atomic_write``), so that a slow decode happens
once per copy of the data."""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mcbench.kinds.data import ImageSet
from mcbench.toolkit.checkpoint import atomic_write

FORMAT = 1
"""Part of every cache file name: bump it when the stored arrays change meaning."""


@dataclass(frozen=True)
class Decoded:
    train_images: np.ndarray  # uint8 [N, C, H, W]
    train_labels: np.ndarray  # int64 [N]
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]

    def image_sets(self) -> tuple[ImageSet, ImageSet]:
        return (
            ImageSet(torch.from_numpy(self.train_images), torch.from_numpy(self.train_labels)),
            ImageSet(torch.from_numpy(self.test_images), torch.from_numpy(self.test_labels)),
        )


def cached(path: Path, build: Callable[[], Decoded]) -> Decoded:
    """The arrays stored at ``path`` if present and readable, else ``build()``, stored there."""
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as stored:
                return Decoded(
                    stored["train_images"],
                    stored["train_labels"],
                    stored["test_images"],
                    stored["test_labels"],
                    tuple(str(c) for c in stored["class_names"]),
                )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            warnings.warn(f"ignoring unreadable cache {path}: {e}", stacklevel=2)
    decoded = build()
    try:
        save(path, decoded)
    except OSError as e:
        warnings.warn(f"could not cache decoded images at {path}: {e}", stacklevel=2)
    return decoded


def save(path: Path, decoded: Decoded) -> None:
    atomic_write(
        path,
        lambda f: np.savez(
            f,
            train_images=decoded.train_images,
            train_labels=decoded.train_labels,
            test_images=decoded.test_images,
            test_labels=decoded.test_labels,
            class_names=np.array(decoded.class_names),
        ),
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
