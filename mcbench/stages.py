"""The stages of a cell: data -> endpoints (trained on possibly poisoned data) -> repair
-> evaluation along the path. Each stage is cached in the store under its content key."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from mcbench.data import Dataset, ImageSet
from mcbench.evaluation import has_batchnorm, recalibrate_batchnorm
from mcbench.hashing import content_hash
from mcbench.kinds import MetricContext, RepairContext
from mcbench.spec import ROLES, Cell, PluginSpec
from mcbench.store import Store
from mcbench.training import fit

log = logging.getLogger("mcbench")

ProgressFactory = Callable[[str, int], Callable[[int, float], None]]


class Normalize(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


def derived_seed(*parts) -> int:
    return int(content_hash(list(parts), length=8), 16)


@dataclass(frozen=True)
class Evaluation:
    defender_pool: ImageSet
    evaluation: ImageSet


def split_test_set(test: ImageSet, defender_pool: int, eval_size: int, seed: int) -> Evaluation:
    """Disjoint parts of the test set: the defender's pool (bonafide data, BN statistics,
    any choice of t) and the evaluation set (scoring only)."""
    if defender_pool >= len(test):
        raise ValueError(f"split.defender_pool is {defender_pool} but the test set has only "
                         f"{len(test)} images; the evaluation set would be empty")
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))
    rest = order[defender_pool:]
    if eval_size:
        rest = rest[:eval_size]
    return Evaluation(test.subset(order[:defender_pool]), test.subset(rest))


def bonafide_subset(pool: ImageSet, budget: int, seed: int) -> ImageSet:
    """The first ``budget`` images of a seeded order of the pool: a smaller budget is a
    subset of a larger one at the same seed."""
    if budget > len(pool):
        raise ValueError(f"budget {budget} exceeds the defender's pool of {len(pool)} images "
                         f"(split.defender_pool)")
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))
    return pool.subset(order[:budget])


class Workspace:
    """Runs cells against one store on one device, reusing everything already computed."""

    def __init__(self, store: Store, device: torch.device, data_root: Path | None,
                 cache_dir: Path, progress: ProgressFactory):
        self.store, self.device = store, device
        self.data_root, self.cache_dir = data_root, cache_dir
        self.progress = progress
        self._datasets: dict[str, Dataset] = {}

    # -- data ----------------------------------------------------------------------------
    def dataset(self, spec: PluginSpec) -> Dataset:
        key = content_hash(spec.identity())
        if key not in self._datasets:
            started = time.perf_counter()
            self._datasets[key] = spec.instance.load(self.data_root, self.cache_dir)
            log.info("loaded %s from %s in %.1fs", spec.name, self._datasets[key].source,
                     time.perf_counter() - started)
        return self._datasets[key]

    def build(self, cell: Cell, data: Dataset) -> nn.Module:
        net = cell.architecture.instance.build(data.num_classes, data.channels, data.image_size)
        return nn.Sequential(Normalize(data.mean, data.std), net).to(self.device)

    # -- stage 1: endpoints ----------------------------------------------------------------
    def training_set(self, cell: Cell, data: Dataset) -> tuple[ImageSet, int]:
        if cell.attack is None:
            return data.train, 0
        attack = cell.attack.instance
        poisoned = attack.poison(data.train, data.num_classes,
                                 torch.Generator().manual_seed(derived_seed("poison", cell.seed)))
        return poisoned.data, len(poisoned.poisoned_index)

    def endpoint(self, cell: Cell, role: str, data: Dataset) -> tuple[nn.Module, bool]:
        """The trained endpoint and whether it came from the cache."""
        key = cell.endpoint_key(role)
        seed = derived_seed("endpoint", cell.seed, role)
        torch.manual_seed(seed)
        model = self.build(cell, data)
        if self.store.has_tensors("endpoint", key):
            model.load_state_dict(self.store.load_tensors("endpoint", key))
            return model, True
        train_set, poisoned = self.training_set(cell, data)
        s = cell.train
        checkpoint = self.store.checkpoint("endpoint", key)
        started = time.perf_counter()
        losses = fit(model, train_set, epochs=s.epochs, batch_size=s.batch_size, lr=s.lr,
                     momentum=s.momentum, weight_decay=s.weight_decay, schedule=s.schedule,
                     augment=s.augment, device=self.device, seed=seed, checkpoint=checkpoint,
                     on_epoch=self.progress(f"endpoint {role} ({cell.architecture.name})",
                                            s.epochs))
        meta = {"identity": cell.endpoint_identity(role), "train_loss": losses,
                "poisoned_images": poisoned, "seconds": time.perf_counter() - started}
        self.store.save_tensors("endpoint", key, model.state_dict(), meta)
        checkpoint.remove()
        return model, False

    # -- stage 2: repair ------------------------------------------------------------------
    def repair_context(self, cell: Cell, data: Dataset, endpoints, bonafide) -> RepairContext:
        key = cell.repair_key()
        epochs = getattr(cell.repair.instance, "epochs", 1)
        return RepairContext(
            endpoints=endpoints, build=lambda: self.build(cell, data), bonafide=bonafide,
            connection=cell.connection.instance if cell.connection else None,
            num_classes=data.num_classes, device=self.device,
            seed=derived_seed("repair", cell.seed), augment=cell.train.augment,
            checkpoint=self.store.checkpoint("repair", key),
            on_epoch=self.progress(f"repair {cell.repair.name}"
                                   + (f" {cell.connection.name}" if cell.connection else ""),
                                   epochs))

    def repaired(self, cell: Cell, ctx: RepairContext) -> tuple[dict, bool]:
        key = cell.repair_key()
        if self.store.has_tensors("repair", key):
            return self.store.load_tensors("repair", key), True
        started = time.perf_counter()
        state = cell.repair.instance.fit(ctx)
        self.store.save_tensors("repair", key, state, {"identity": cell.repair_identity(),
                                                       "seconds": time.perf_counter() - started})
        if ctx.checkpoint:
            ctx.checkpoint.remove()
        return state, False

    # -- stage 3: evaluation ---------------------------------------------------------------
    def score(self, cell: Cell, model: nn.Module, clean: ImageSet,
              triggered: ImageSet | None, num_classes: int) -> dict[str, float | None]:
        ctx = MetricContext(model=model, clean=clean, triggered=triggered,
                            num_classes=num_classes, device=self.device,
                            batch_size=cell.evaluate.batch_size)
        scores: dict[str, float | None] = {}
        for metric in cell.metrics:
            if "triggered" in metric.entry.cls.needs and triggered is None:
                scores[metric.name] = None
            else:
                scores[metric.name] = float(metric.instance.compute(ctx))
        return scores

    def endpoint_scores(self, cell: Cell, role: str, model: nn.Module, ev: Evaluation,
                        triggered: ImageSet | None, num_classes: int) -> dict:
        key = cell.endpoint_eval_key(role)
        if self.store.has_json("endpoint-eval", key):
            return self.store.load_json("endpoint-eval", key)
        scores = self.score(cell, model, ev.evaluation, triggered, num_classes)
        self.store.save_json("endpoint-eval", key, scores)
        return scores

    def run_cell(self, cell: Cell) -> dict:
        timings: dict[str, float] = {}
        reused: list[str] = []
        data = self.dataset(cell.dataset)
        if cell.attack:
            cell.attack.instance.check_dataset(data.num_classes, data.channels, data.image_size)
        ev = split_test_set(data.test, cell.split.defender_pool, cell.split.eval_size,
                            cell.split.seed)
        bonafide = bonafide_subset(ev.defender_pool, cell.budget,
                                   derived_seed("bonafide", cell.seed))
        triggered = (cell.attack.instance.triggered(ev.evaluation, data.num_classes)
                     if cell.attack else None)

        started = time.perf_counter()
        endpoints = []
        for role in ROLES:
            model, cached = self.endpoint(cell, role, data)
            endpoints.append(model)
            if cached:
                reused.append(f"endpoint {role}")
        timings["endpoints_s"] = time.perf_counter() - started
        endpoint_scores = {role: self.endpoint_scores(cell, role, m, ev, triggered,
                                                      data.num_classes)
                           for role, m in zip(ROLES, endpoints)}

        started = time.perf_counter()
        ctx = self.repair_context(cell, data, tuple(endpoints), bonafide)
        state, cached = self.repaired(cell, ctx)
        if cached:
            reused.append("repair")
        timings["repair_s"] = time.perf_counter() - started

        started = time.perf_counter()
        path = cell.repair.instance.path(ctx, state, cell.evaluate.points)
        along = []
        for point in path.points:
            model = path.model_at(point).to(self.device)
            if cell.evaluate.recalibrate_bn and has_batchnorm(model):
                recalibrate_batchnorm(model, bonafide, self.device, cell.evaluate.batch_size)
            along.append({"t": point, **self.score(cell, model, ev.evaluation, triggered,
                                                   data.num_classes)})
        timings["evaluate_s"] = time.perf_counter() - started
        reported = cell.evaluate.reported_point() if len(path.points) > 1 else path.points[0]
        return {"path": along, "reported_t": reported, "endpoints": endpoint_scores,
                "timings": timings, "reused": reused, "data_source": data.source,
                "sizes": {"train": len(data.train), "defender_pool": len(ev.defender_pool),
                          "bonafide": len(bonafide), "evaluation": len(ev.evaluation),
                          "triggered": len(triggered) if triggered is not None else 0}}
