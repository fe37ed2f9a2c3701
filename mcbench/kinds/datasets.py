"""What a dataset plugin implements."""

from __future__ import annotations

from pathlib import Path

from mcbench.kinds.base import Plugin
from mcbench.kinds.data import Dataset


class DatasetPlugin(Plugin):
    kind = "dataset"

    def load(self, root: Path | None, cache_dir: Path) -> Dataset:
        """Read the data. ``root`` is the user's --data-root (None: the plugin's default
        place); ``cache_dir`` is writable and may hold decoded copies."""
        raise NotImplementedError

    def shape(self) -> tuple[int, int, int] | None:
        """(num_classes, channels, image_size) when known without reading the data: lets
        validation build the networks and check attacks against them."""
        return None
