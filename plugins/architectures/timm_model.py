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


@mcbench.hookimpl
def mcbench_register_architectures(register):
    register(TimmModel)
