"""Tools for weight-tampering attacks: picking the attacker's images, margins, and running
only the part of a network after a layer when nothing follows it."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from mcbench.kinds.data import ImageSet, as_batch
from mcbench.toolkit.evaluation import predict


def margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per image, how far ``labels`` wins: z_label - max_{j != label} z_j (negative when
    another class wins). Correct whatever the sign of the logits."""
    chosen = logits.gather(1, labels.view(-1, 1)).squeeze(1)
    others = logits.scatter(1, labels.view(-1, 1), float("-inf"))
    return chosen - others.max(dim=1).values


def correctly_classified(
    model: nn.Module, data: ImageSet, count: int, device: torch.device, batch_size: int = 500
) -> ImageSet:
    """The first ``count`` images of ``data`` (in its order) that ``model`` classifies
    correctly; fewer if there are not that many."""
    kept, found = [], 0
    chunk = max(batch_size, 2 * count)
    for start in range(0, len(data), chunk):
        part = data.subset(torch.arange(start, min(start + chunk, len(data))))
        right = predict(model, part, device, batch_size).argmax(dim=1) == part.labels
        index = torch.nonzero(right).flatten()[: count - found]
        kept.append(part.subset(index))
        found += len(index)
        if found >= count:
            break
    return ImageSet(torch.cat([k.images for k in kept]), torch.cat([k.labels for k in kept]))


@dataclass
class LayerTap:
    """The inputs one layer receives on a set of images, and whether the layer's output is
    the model's output. When it is, ``logits(params)`` re-runs only that layer: an attack
    on the last layer then costs a matrix product per step instead of a network pass."""

    layer: nn.Module
    inputs: torch.Tensor
    direct: bool

    @classmethod
    @torch.no_grad()
    def capture(
        cls, model: nn.Module, layer: nn.Module, images: torch.Tensor, device: torch.device
    ) -> LayerTap:
        seen: dict[str, torch.Tensor] = {}

        def hook(module, args, output):
            seen["input"], seen["output"] = args[0].detach(), output

        handle = layer.register_forward_hook(hook)
        try:
            model.eval()
            out = model(as_batch(images.to(device)))
        finally:
            handle.remove()
        if "input" not in seen:
            raise ValueError("the layer is not used in the model's forward pass")
        return cls(layer, seen["input"], seen["output"] is out)

    def logits(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        if not self.direct:
            raise RuntimeError("the layer's output is not the model's output")
        return functional_call(self.layer, params, (self.inputs,))
