"""Every metric of a cell on one model, each in the cell's precision unless it asks for
full precision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch

from mcbench.bench.cells import Cell, PluginSpec
from mcbench.cell.split import Scoring
from mcbench.kinds import MetricContext, MetricPlugin
from mcbench.toolkit.precision import autocast

Scores = dict[str, float | None]


@dataclass(frozen=True)
class Scorer:
    """The metrics a cell scores its models with, and how."""

    metrics: tuple[PluginSpec, ...]
    batch_size: int
    precision: str

    @classmethod
    def of(cls, cell: Cell) -> Scorer:
        return cls(tuple(cell.metrics), cell.evaluate.batch_size, cell.compute.precision)

    def score(self, model: torch.nn.Module, scoring: Scoring, device: torch.device) -> Scores:
        """Every metric on ``model``; None for a metric whose data the cell lacks. What
        metrics note beside their values is under "notes"."""
        from mcbench.toolkit.evaluation import predict

        noted: dict[str, dict] = {}
        ctx = MetricContext(
            model=model,
            clean=scoring.clean,
            triggered=scoring.triggered,
            injection=scoring.injection,
            num_classes=scoring.num_classes,
            device=device,
            batch_size=self.batch_size,
            predict=predict,
            note=noted.__setitem__,
        )
        available = {
            "clean": True,
            "triggered": scoring.triggered is not None,
            "injection": scoring.injection is not None,
        }
        scores: dict = {}
        notes = {}
        for metric in self.metrics:
            cls = cast("type[MetricPlugin]", metric.entry.cls)
            if all(available.get(need, False) for need in cls.needs):
                precision = "fp32" if cls.full_precision else self.precision
                with autocast(device, precision):
                    scores[metric.key] = float(metric.instance.compute(ctx))
                if metric.name in noted:
                    notes[metric.key] = noted.pop(metric.name)
            else:
                scores[metric.key] = None
        if notes:
            scores["notes"] = notes
        return scores


def score(cell: Cell, model: torch.nn.Module, scoring: Scoring, device: torch.device) -> Scores:
    """Every metric of ``cell`` on ``model`` (``Scorer.of(cell).score``)."""
    return Scorer.of(cell).score(model, scoring, device)
