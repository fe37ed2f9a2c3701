"""The scores of every model along a repair's path (or over its surface), with BatchNorm
statistics recomputed on the bonafide images first, and each model's accuracy on the
held-out bonafide images that a t rule reads."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mcbench.bench.cells import Cell
from mcbench.cell.scoring import Scorer
from mcbench.cell.split import Scoring
from mcbench.kinds.data import ImageSet
from mcbench.protocol.seeds import derived_seed
from mcbench.toolkit.evaluation import (
    Statistics,
    accuracy,
    anchor_batchnorm,
    endpoint_statistics,
    has_batchnorm,
    recalibrate_batchnorm,
)
from mcbench.toolkit.precision import autocast


@dataclass(frozen=True)
class Recalibration:
    """How the BatchNorm statistics of each point are recomputed on the bonafide images."""

    enabled: bool
    passes: int = 1
    """Passes over the bonafide images (augmented ones when ``augment_seed`` is set)."""
    augment_seed: int | None = None
    anchored: bool = False
    """Correct each point's statistics by the endpoints' recalibration error, weighted by
    their share of the point."""
    batch_size: int = 500
    precision: str = "fp32"

    @classmethod
    def of(cls, cell: Cell) -> Recalibration:
        """As the cell's evaluate settings say."""
        e = cell.evaluate
        passes = e.recalibrate_augmented
        return cls(
            enabled=e.recalibrate_bn,
            passes=max(passes, 1),
            augment_seed=derived_seed("recalibrate", cell.seed) if passes else None,
            anchored=e.recalibrate_anchored,  # implies recalibrate_bn: EvalSettings checks it
            batch_size=e.batch_size,
            precision=cell.compute.precision,
        )

    def apply(self, model: torch.nn.Module, bonafide: ImageSet, device: torch.device) -> None:
        with autocast(device, self.precision):  # the statistics themselves stay fp32
            recalibrate_batchnorm(
                model,
                bonafide,
                device,
                self.batch_size,
                passes=self.passes,
                augment_seed=self.augment_seed,
            )

    def anchors(
        self, endpoints: tuple[torch.nn.Module, ...], bonafide: ImageSet, device: torch.device
    ) -> tuple[list[Statistics], list[Statistics]] | None:
        """The endpoints' statistics as trained and as recomputed, when anchored (None
        otherwise, or for networks without BatchNorm)."""
        if not self.anchored or not any(has_batchnorm(m) for m in endpoints):
            return None
        return endpoint_statistics(endpoints, lambda model: self.apply(model, bonafide, device))


def evaluate_points(
    path,
    endpoints: tuple[torch.nn.Module, ...],
    scorer: Scorer,
    scoring: Scoring,
    recalibration: Recalibration,
    bonafide: ImageSet,
    device: torch.device,
    held_out: ImageSet | None = None,
) -> tuple[list[dict], list[float] | None]:
    """The scores of every model of ``path`` (a repair plugin's path), each as
    ``{"t": t, **scores}``, with BatchNorm statistics recomputed on ``bonafide`` first
    (anchored to the ``endpoints`` models' when asked). With HELD_OUT images, also each
    model's accuracy on them (None without)."""
    anchors = recalibration.anchors(endpoints, bonafide, device)
    along, held_out_accuracy = [], []
    for point in path.points:
        model = path.model_at(point).to(device)
        if recalibration.enabled and has_batchnorm(model):
            recalibration.apply(model, bonafide, device)
            weights = path.endpoint_weights(point) if anchors else None
            if weights is not None:
                assert anchors is not None  # weights are only asked for with anchors
                anchor_batchnorm(model, weights, *anchors)
        along.append({"t": point, **scorer.score(model, scoring, device)})
        if held_out is not None:
            with autocast(device, scorer.precision):
                held_out_accuracy.append(accuracy(model, held_out, device, scorer.batch_size))
    return along, held_out_accuracy if held_out is not None else None
