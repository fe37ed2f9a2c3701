"""Any model from the timm library, by name, randomly initialised (weights are never
downloaded)."""

import difflib
from dataclasses import dataclass, field
from typing import ClassVar

from torch import nn

import mcbench
from mcbench.kinds import ArchitecturePlugin

RESERVED_KWARGS = (
    "pretrained",
    "pretrained_cfg",
    "pretrained_cfg_overlay",
    "checkpoint_path",
    "num_classes",
    "in_chans",
)
"""Set by the benchmark (classes and channels from the dataset, no stored weights)."""
MAX_KWARG_INT = 2**16
"""Depths, widths, heads and image sizes of timm models are far below; timm loops over
some of them in Python before any layer exists, so a larger one builds for hours."""


@dataclass(frozen=True)
class TimmModel(ArchitecturePlugin):
    """Any timm model by name, randomly initialised; ViTs etc. get the dataset's image size."""

    name: ClassVar[str] = "timm"
    model: str = field(
        default="resnet18",
        metadata={
            "help": "timm model name, e.g. resnet18, vit_tiny_patch16_224 (see timm.list_models())"
        },
    )
    kwargs: dict = field(
        default_factory=dict,
        metadata={"help": "extra timm.create_model keyword arguments, e.g. {patch_size: 4}"},
    )

    def __post_init__(self):
        import timm  # here, not at the top: it takes seconds, and most runs never use it

        if not timm.is_model(self.model):
            close = difflib.get_close_matches(self.model, timm.list_models(), n=3)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ValueError(
                f"timm has no model {self.model!r}{hint} "
                f"(timm.list_models('*{self.model[:4]}*') lists similar names)"
            )
        for key, value in self.kwargs.items():
            for number in _ints(value):
                if abs(number) > MAX_KWARG_INT:
                    raise ValueError(
                        f"kwargs {key}: {number} is out of range; timm sizes are at most "
                        f"{MAX_KWARG_INT}"
                    )
        reserved = sorted(set(self.kwargs) & set(RESERVED_KWARGS))
        if reserved:
            raise ValueError(
                f"kwargs may not set {', '.join(reserved)}: the benchmark sets "
                "classes and channels from the dataset and never loads weights"
            )

    def build(self, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
        import timm

        kwargs = dict(self.kwargs, pretrained=False, num_classes=num_classes, in_chans=in_channels)
        if "img_size" in kwargs:
            return timm.create_model(self.model, **kwargs)
        try:
            return timm.create_model(self.model, img_size=image_size, **kwargs)
        except TypeError as e:
            if "img_size" not in str(e):
                raise
            # convolutional nets take any image size and have no such argument
            return timm.create_model(self.model, **kwargs)


def _ints(value):
    """The integers in a keyword argument's value (lists and mappings searched)."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _ints(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _ints(item)


@mcbench.hookimpl
def mcbench_register_architectures(register):
    register(TimmModel)
