"""How a cell divides the test set: the defender's pool (bonafide data, BatchNorm
statistics, any choice of t) and the evaluation set (scoring only), and the data every
model of the cell is scored on."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mcbench.kinds import Injection
from mcbench.kinds.data import ImageSet


@dataclass(frozen=True)
class TestSplit:
    """Disjoint parts of the test set."""

    __test__ = False  # not a pytest test class

    defender_pool: ImageSet
    evaluation: ImageSet


@dataclass(frozen=True)
class Scoring:
    """The evaluation data of a cell: what every model of the cell is scored on."""

    clean: ImageSet
    triggered: ImageSet | None
    injection: Injection | None
    num_classes: int


@dataclass(frozen=True)
class Bonafide:
    """The defender's bonafide images: those the repair fits on (and BatchNorm statistics
    are recomputed on), and those held out to choose t by (None where the t rule holds out
    none)."""

    fit: ImageSet
    held_out: ImageSet | None

    def __len__(self) -> int:
        return len(self.fit) + (len(self.held_out) if self.held_out is not None else 0)


def split_test_set(test: ImageSet, defender_pool: int, eval_size: int, seed: int) -> TestSplit:
    """The first ``defender_pool`` images of a seeded order of the test set are the
    defender's; the next ``eval_size`` (0: all the others) are the evaluation set."""
    if defender_pool >= len(test):
        raise ValueError(
            f"split.defender_pool is {defender_pool} but the test set has only "
            f"{len(test)} images; the evaluation set would be empty"
        )
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))
    rest = order[defender_pool:]
    if eval_size:
        rest = rest[:eval_size]
    return TestSplit(test.subset(order[:defender_pool]), test.subset(rest))


def bonafide_subset(pool: ImageSet, budget: int, seed: int) -> ImageSet:
    """The first ``budget`` images of a seeded order of the pool: a smaller budget is a
    subset of a larger one at the same seed."""
    if budget > len(pool):
        raise ValueError(
            f"budget {budget} exceeds the defender's pool of {len(pool)} images "
            f"(split.defender_pool)"
        )
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))
    return pool.subset(order[:budget])


def holdout_split(bonafide: ImageSet, held_out: int, seed: int) -> tuple[ImageSet, ImageSet]:
    """The bonafide images in a seeded order, split into those the repair fits on (and
    BatchNorm statistics are recomputed on) and the first HELD_OUT, which only score the
    evaluated points to choose t by."""
    order = torch.randperm(len(bonafide), generator=torch.Generator().manual_seed(seed))
    return bonafide.subset(order[held_out:]), bonafide.subset(order[:held_out])


def remove_targets(evaluation: ImageSet, injection: Injection | None) -> ImageSet:
    """The evaluation images other than an injection's targets: clean accuracy of a
    tampered model is its collateral accuracy."""
    if injection is None:
        return evaluation
    keep = torch.ones(len(evaluation), dtype=torch.bool)
    keep[injection.index] = False
    return evaluation.subset(torch.nonzero(keep).flatten())
