"""What a metric plugin implements and receives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from mcbench.kinds.attacks import Injection
from mcbench.kinds.base import Plugin
from mcbench.kinds.data import ImageSet

Predict = Callable[[nn.Module, ImageSet, torch.device, int], torch.Tensor]
"""(model, data, device, batch size) -> the model's logits on every image, on the CPU."""
Note = Callable[[str, dict[str, Any]], None]
"""(metric name, values) -> None: records the values beside that metric's value."""


def _ignore(name: str, values: dict[str, Any]) -> None:
    pass


@dataclass(frozen=True)
class MetricContext:
    """One model to score, with the evaluation data. Forward passes are shared between
    metrics through ``logits``."""

    model: nn.Module
    clean: ImageSet
    triggered: ImageSet | None
    num_classes: int
    device: torch.device
    batch_size: int
    predict: Predict
    """Computes the logits ``logits`` shares (``mcbench.toolkit.evaluation.predict``)."""
    injection: Injection | None = None
    note: Note = _ignore
    """Records what a metric wants kept beside its value (e.g. the method it chose), under
    its own name: ``ctx.note(self.name, {...})``; a later note of that name replaces it."""
    _cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def logits(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, labels) of the model on ``which``, on the CPU: "clean" (true labels),
        "triggered" (the attacker's labels) or "injection" (the injection's targets, with
        the labels to inject; their true labels are ``injection.images.labels``)."""
        if which not in self._cache:
            if which == "injection":
                data = self.injection.images if self.injection is not None else None
            elif which in ("clean", "triggered"):
                data = getattr(self, which)
            else:
                raise ValueError(f"unknown data {which!r}; expected clean, triggered or injection")
            if data is None:
                raise ValueError(f"no {which} data in this cell")
            if which == "injection":
                assert self.injection is not None  # its images were found above
                labels = self.injection.labels
            else:
                labels = data.labels
            self._cache[which] = (
                self.predict(self.model, data, self.device, self.batch_size),
                labels.cpu(),
            )
        return self._cache[which]


class MetricPlugin(Plugin):
    kind = "metric"
    needs: ClassVar[tuple[str, ...]] = ("clean",)
    """Which data it reads ("clean", "triggered", "injection"); a metric is skipped (scored
    None) in cells that lack one of them."""
    percent: ClassVar[bool] = False
    """A fraction the leaderboard shows as a percentage."""
    higher_is_better: ClassVar[bool | None] = None
    plot_axis: ClassVar[Literal["top", "bottom", "right"] | None] = None
    """Where `mcbench plot` draws it along t: "top" (the percentage panel), "bottom" (the
    lower panel) or "right" (the lower panel's own right-hand axis, for a quantity on
    another scale, such as an eigenvalue). None: top for a percentage, else bottom."""
    full_precision: ClassVar[bool] = False
    """Computed in fp32 whatever the run's precision (e.g. second derivatives); otherwise
    ``compute`` runs inside the run's autocast (``mcbench.toolkit.precision``)."""
    correlate_with: ClassVar[tuple[str, ...]] = ()
    """Names of metrics whose values along a path the barrier table correlates with this
    one's (Pearson r over t) in a cell that scores both."""

    def compute(self, ctx: MetricContext) -> float:
        raise NotImplementedError
