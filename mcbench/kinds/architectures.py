"""What an architecture plugin implements."""

from __future__ import annotations

from torch import nn

from mcbench.kinds.base import Plugin


class ArchitecturePlugin(Plugin):
    kind = "architecture"

    def build(self, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
        """A freshly initialised network mapping normalised ``[N, C, H, W]`` floats to logits.
        Input normalisation is added by mcbench in front of it."""
        raise NotImplementedError
