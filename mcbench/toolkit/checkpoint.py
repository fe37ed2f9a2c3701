"""Files that a kill never leaves half-written (``atomic_write``), and per-epoch training
state in one such file, so a killed run resumes at the last epoch (``Checkpoint``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Create or replace the file at ``path`` with what ``write(f)`` writes to ``f``: it
    goes to a temporary name beside ``path``, is flushed to disk and renamed into place,
    so that a kill leaves either the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Checkpoint:
    """Per-epoch training state in one file, so a killed run resumes at the last epoch.

    A file that cannot be read back (truncated, or a pickle that ``weights_only`` refuses)
    is handed to ``on_damaged(path, reason)``, which moves it aside, and the training
    starts from its first epoch: the state is only a shortcut."""

    def __init__(self, path: Path, on_damaged: Callable[[Path, str], object] | None = None):
        self.path = path
        self.on_damaged = on_damaged

    def load(self):
        if not self.path.exists():
            return None
        try:
            return torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as e:  # anything torch.load raises on its own file is damage
            if self.on_damaged is None:
                raise
            self.on_damaged(self.path, f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")
            return None

    def save(self, state: dict) -> None:
        atomic_write(self.path, lambda f: torch.save(state, f))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
