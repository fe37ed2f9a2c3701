"""Datasets read once per run: by the dataset plugin's identity, from one data root."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from mcbench.bench.cells import PluginSpec
from mcbench.hashing import content_hash
from mcbench.kinds.data import Dataset

log = logging.getLogger("mcbench")


class DatasetCache:
    """The datasets of a run, each loaded at its first use and kept in memory."""

    def __init__(self, data_root: Path | None, cache_dir: Path):
        self.data_root, self.cache_dir = data_root, cache_dir
        self._loaded: dict[str, Dataset] = {}
        self.seconds = 0.0
        """Spent reading datasets so far."""

    def load(self, spec: PluginSpec) -> Dataset:
        key = content_hash(spec.identity())
        if key not in self._loaded:
            started = time.perf_counter()
            data = spec.instance.load(self.data_root, self.cache_dir)
            seconds = time.perf_counter() - started
            self.seconds += seconds
            log.info("loaded %s from %s in %.1fs", spec.name, data.source, seconds)
            self._loaded[key] = data
        return self._loaded[key]
