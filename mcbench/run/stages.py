"""The stages of a cell: data -> endpoints (trained on possibly poisoned data) -> tamper
(weight attacks) -> repair -> evaluation along the path. Each stage is cached in the store
under its content key."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mcbench.bench.cells import Cell, PluginSpec
from mcbench.hashing import content_hash
from mcbench.kinds import Injection, MetricContext, RepairContext, TamperContext
from mcbench.kinds.data import Dataset, ImageSet
from mcbench.run.store import Store
from mcbench.toolkit.adversarial import adversarial_training_loss
from mcbench.toolkit.evaluation import has_batchnorm, recalibrate_batchnorm
from mcbench.toolkit.nets import Normalize
from mcbench.toolkit.training import cross_entropy, fit
from mcbench.vocabulary import ROLES

log = logging.getLogger("mcbench")

ProgressFactory = Callable[[str, int], Callable[[int, float], None]]


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
        raise ValueError(
            f"split.defender_pool is {defender_pool} but the test set has only "
            f"{len(test)} images; the evaluation set would be empty"
        )
    order = torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))
    rest = order[defender_pool:]
    if eval_size:
        rest = rest[:eval_size]
    return Evaluation(test.subset(order[:defender_pool]), test.subset(rest))


def remove_targets(evaluation: ImageSet, injection: Injection | None) -> ImageSet:
    """The evaluation images other than an injection's targets: clean accuracy of a
    tampered model is its collateral accuracy."""
    if injection is None:
        return evaluation
    keep = torch.ones(len(evaluation), dtype=torch.bool)
    keep[injection.index] = False
    return evaluation.subset(torch.nonzero(keep).flatten())


def tamper_size(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> dict:
    """How much a tampering attack changed the weights: L0 (entries changed), L2 and L-inf
    of the change over all tensors, and which tensors changed."""
    l0, squares, linf, changed = 0, 0.0, 0.0, []
    for name, old in before.items():
        if not old.is_floating_point():
            continue
        diff = (after[name].double() - old.double()).abs()
        count = int((diff != 0).sum())
        if count:
            changed.append(name)
            l0 += count
            squares += float(diff.pow(2).sum())
            linf = max(linf, float(diff.max()))
    return {"l0": l0, "l2": squares**0.5, "linf": linf, "changed": changed}


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


class Workspace:
    """Runs cells against one store on one device, reusing everything already computed."""

    def __init__(
        self,
        store: Store,
        device: torch.device,
        data_root: Path | None,
        cache_dir: Path,
        progress: ProgressFactory,
    ):
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
            log.info(
                "loaded %s from %s in %.1fs",
                spec.name,
                self._datasets[key].source,
                time.perf_counter() - started,
            )
        return self._datasets[key]

    def build(self, cell: Cell, data: Dataset) -> nn.Module:
        net = cell.architecture.instance.build(data.num_classes, data.channels, data.image_size)
        return nn.Sequential(Normalize(data.mean, data.std), net).to(self.device)

    # -- stage 1: endpoints ----------------------------------------------------------------
    def training_set(self, cell: Cell, data: Dataset) -> tuple[ImageSet, int]:
        if cell.attack_stage != "poison":
            return data.train, 0
        attack = cell.attack.instance
        poisoned = attack.poison(
            data.train,
            data.num_classes,
            torch.Generator().manual_seed(derived_seed("poison", cell.seed)),
        )
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
        adversarial = role in cell.adversarial.endpoints
        loss_fn = (
            adversarial_training_loss(cell.adversarial.attack) if adversarial else cross_entropy
        )
        label = (
            f"endpoint {role} ({cell.architecture.name}{', adversarial' if adversarial else ''})"
        )
        losses = fit(
            model,
            train_set,
            epochs=s.epochs,
            batch_size=s.batch_size,
            lr=s.lr,
            momentum=s.momentum,
            weight_decay=s.weight_decay,
            schedule=s.schedule,
            augment=s.augment,
            device=self.device,
            seed=seed,
            loss_fn=loss_fn,
            checkpoint=checkpoint,
            on_epoch=self.progress(label, s.epochs),
        )
        meta = {
            "identity": cell.endpoint_identity(role),
            "train_loss": losses,
            "poisoned_images": poisoned,
            "seconds": time.perf_counter() - started,
        }
        self.store.save_tensors("endpoint", key, model.state_dict(), meta)
        checkpoint.remove()
        return model, False

    # -- stage 1b: tamper ------------------------------------------------------------------
    def injection(self, cell: Cell, evaluation: ImageSet, num_classes: int) -> Injection | None:
        """The injection's targets, drawn from the evaluation images: the same for both
        endpoints."""
        generator = torch.Generator().manual_seed(derived_seed("targets", cell.seed))
        return cell.attack.instance.choose_injection(evaluation, num_classes, generator)

    def tampered(
        self, cell: Cell, role: str, model: nn.Module, data: Dataset, injection: Injection | None
    ) -> tuple[nn.Module, dict, bool]:
        """The endpoint after the weight attack, the attack's report, and whether it came
        from the cache. ``model`` is changed in place."""
        key = cell.tamper_key(role)
        if self.store.has_tensors("tamper", key):
            model.load_state_dict(self.store.load_tensors("tamper", key))
            return model, self.store.load_meta("tamper", key)["report"], True
        seed = derived_seed("tamper", cell.seed)
        generator = torch.Generator().manual_seed(derived_seed("attacker", cell.seed))
        attacker = data.train.subset(torch.randperm(len(data.train), generator=generator))
        ctx = TamperContext(
            model=model,
            network=model[1],
            attacker=attacker,
            injection=injection,
            num_classes=data.num_classes,
            device=self.device,
            seed=seed,
            batch_size=cell.evaluate.batch_size,
        )
        before = {k: v.detach().clone() for k, v in model[1].state_dict().items()}
        started = time.perf_counter()
        report = dict(cell.attack.instance.tamper(ctx))
        report["seconds"] = time.perf_counter() - started
        report["size"] = tamper_size(before, model[1].state_dict())
        model.eval()
        self.store.save_tensors(
            "tamper",
            key,
            model.state_dict(),
            {"identity": cell.tamper_identity(role), "report": report},
        )
        log.info(
            "tampered endpoint %s with %s in %.1fs: %s",
            role,
            cell.attack.name,
            report["seconds"],
            {k: v for k, v in report["size"].items() if k != "changed"},
        )
        return model, report, False

    # -- stage 2: repair ------------------------------------------------------------------
    def repair_context(self, cell: Cell, data: Dataset, endpoints, bonafide) -> RepairContext:
        key = cell.repair_key()
        epochs = getattr(cell.repair.instance, "epochs", 1)
        return RepairContext(
            endpoints=endpoints,
            build=lambda: self.build(cell, data),
            bonafide=bonafide,
            connection=cell.connection.instance if cell.connection else None,
            num_classes=data.num_classes,
            device=self.device,
            seed=derived_seed("repair", cell.seed),
            augment=cell.train.augment,
            checkpoint=self.store.checkpoint("repair", key),
            on_epoch=self.progress(
                f"repair {cell.repair.name}"
                + (f" {cell.connection.name}" if cell.connection else ""),
                epochs,
            ),
        )

    def repaired(self, cell: Cell, ctx: RepairContext) -> tuple[dict, bool]:
        key = cell.repair_key()
        if self.store.has_tensors("repair", key):
            return self.store.load_tensors("repair", key), True
        started = time.perf_counter()
        state = cell.repair.instance.fit(ctx)
        self.store.save_tensors(
            "repair",
            key,
            state,
            {"identity": cell.repair_identity(), "seconds": time.perf_counter() - started},
        )
        if ctx.checkpoint:
            ctx.checkpoint.remove()
        return state, False

    # -- stage 3: evaluation ---------------------------------------------------------------
    def score(self, cell: Cell, model: nn.Module, scoring: Scoring) -> dict[str, float | None]:
        ctx = MetricContext(
            model=model,
            clean=scoring.clean,
            triggered=scoring.triggered,
            injection=scoring.injection,
            num_classes=scoring.num_classes,
            device=self.device,
            batch_size=cell.evaluate.batch_size,
        )
        available = {
            "clean": True,
            "triggered": scoring.triggered is not None,
            "injection": scoring.injection is not None,
        }
        scores: dict = {}
        notes = {}
        for metric in cell.metrics:
            if all(available.get(need, False) for need in metric.entry.cls.needs):
                scores[metric.key] = float(metric.instance.compute(ctx))
                if metric.name in ctx.notes:
                    notes[metric.key] = ctx.notes.pop(metric.name)
            else:
                scores[metric.key] = None
        if notes:
            scores["notes"] = notes
        return scores

    def endpoint_scores(
        self, cell: Cell, role: str, model: nn.Module, scoring: Scoring, untampered: bool = False
    ) -> dict:
        key = cell.endpoint_eval_key(role, untampered)
        if self.store.has_json("endpoint-eval", key):
            return self.store.load_json("endpoint-eval", key)
        scores = self.score(cell, model, scoring)
        self.store.save_json("endpoint-eval", key, scores)
        return scores

    def run_cell(self, cell: Cell) -> dict:
        timings: dict[str, float] = {}
        reused: list[str] = []
        extra: dict = {}
        data = self.dataset(cell.dataset)
        attack = cell.attack.instance if cell.attack else None
        if attack is not None:
            attack.check_dataset(data.num_classes, data.channels, data.image_size)
        ev = split_test_set(
            data.test, cell.split.defender_pool, cell.split.eval_size, cell.split.seed
        )
        bonafide = bonafide_subset(
            ev.defender_pool, cell.budget, derived_seed("bonafide", cell.seed)
        )
        injection = (
            self.injection(cell, ev.evaluation, data.num_classes)
            if cell.attack_stage == "tamper"
            else None
        )
        scoring = Scoring(
            clean=remove_targets(ev.evaluation, injection),
            triggered=(
                attack.triggered(ev.evaluation, data.num_classes)
                if cell.attack_stage == "poison"
                else None
            ),
            injection=injection,
            num_classes=data.num_classes,
        )

        started = time.perf_counter()
        endpoints = []
        for role in ROLES:
            model, cached = self.endpoint(cell, role, data)
            endpoints.append(model)
            if cached:
                reused.append(f"endpoint {role}")
        timings["endpoints_s"] = time.perf_counter() - started

        if injection is not None:
            extra["injection"] = {
                "index": injection.index.tolist(),
                "labels": injection.labels.tolist(),
                "true_labels": injection.images.labels.tolist(),
            }
        if cell.attack_stage == "tamper":
            extra["untampered"] = {
                role: self.endpoint_scores(cell, role, m, scoring, True)
                for role, m in zip(ROLES, endpoints)
            }
            started = time.perf_counter()
            extra["tamper"] = {}
            for role, model in zip(ROLES, endpoints):
                _, report, cached = self.tampered(cell, role, model, data, injection)
                extra["tamper"][role] = report
                if cached:
                    reused.append(f"tamper {role}")
            timings["tamper_s"] = time.perf_counter() - started
        endpoint_scores = {
            role: self.endpoint_scores(cell, role, m, scoring) for role, m in zip(ROLES, endpoints)
        }

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
            along.append({"t": point, **self.score(cell, model, scoring)})
        timings["evaluate_s"] = time.perf_counter() - started
        reported = cell.evaluate.reported_point() if len(path.points) > 1 else path.points[0]
        return {
            "path": along,
            "reported_t": reported,
            "endpoints": endpoint_scores,
            **extra,
            "timings": timings,
            "reused": reused,
            "data_source": data.source,
            "sizes": {
                "train": len(data.train),
                "defender_pool": len(ev.defender_pool),
                "bonafide": len(bonafide),
                "evaluation": len(scoring.clean),
                "triggered": 0 if scoring.triggered is None else len(scoring.triggered),
                "targets": 0 if injection is None else len(injection),
            },
        }


@dataclass(frozen=True)
class Scoring:
    """The evaluation data of a cell: what every model of the cell is scored on."""

    clean: ImageSet
    triggered: ImageSet | None
    injection: Injection | None
    num_classes: int
