"""Per-epoch training state in one file, so a killed run resumes at the last epoch."""

from __future__ import annotations

import os
from pathlib import Path

import torch


class Checkpoint:
    """Per-epoch training state in one file, so a killed run resumes at the last epoch."""

    def __init__(self, path: Path):
        self.path = path

    def load(self):
        if not self.path.exists():
            return None
        return torch.load(self.path, map_location="cpu", weights_only=True)

    def save(self, state: dict) -> None:
        tmp = self.path.with_suffix(f".tmp{os.getpid()}")
        torch.save(state, tmp)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
