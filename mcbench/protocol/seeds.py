"""The seeds of a cell's random draws, each derived from the cell's seed and what it is
for, so that no draw depends on another one or on the order they happen in."""

from __future__ import annotations

from mcbench.hashing import content_hash


def derived_seed(*parts) -> int:
    """A 32-bit seed determined by ``parts`` (e.g. ``("endpoint", seed, "A")``)."""
    return int(content_hash(list(parts), length=8), 16)
