"""The stages of a cell, one function each: train an endpoint (on possibly poisoned data),
tamper with it (weight attacks), repair, and score models. Each takes its inputs
explicitly, draws its randomness from seeds derived from the cell's seed, and returns its
artifact through a StageCache under the content key of ``mcbench.run.plan``."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from mcbench.bench.cells import Cell
from mcbench.kinds import Injection, MetricContext, RepairContext, TamperContext
from mcbench.kinds.data import Dataset, ImageSet
from mcbench.run import plan
from mcbench.run.cache import Artifact, StageCache
from mcbench.protocol.seeds import derived_seed
from mcbench.run.split import Scoring
from mcbench.toolkit.adversarial import adversarial_training_loss
from mcbench.toolkit.checkpoint import Checkpoint
from mcbench.toolkit.evaluation import (
    Statistics,
    accuracy,
    anchor_batchnorm,
    endpoint_statistics,
    has_batchnorm,
    recalibrate_batchnorm,
)
from mcbench.toolkit.nets import Normalize, NormalizedNetwork
from mcbench.toolkit.precision import autocast
from mcbench.toolkit.training import cross_entropy, fit, seeded, training_seconds

ProgressFactory = Callable[[str, int], Callable[[int, float], None]]
State = dict[str, torch.Tensor]
Scores = dict[str, float | None]


def build_model(cell: Cell, data: Dataset, device: torch.device) -> NormalizedNetwork:
    """A fresh model of the cell's architecture, initialised from the global RNG."""
    net = cell.architecture.instance.build(data.num_classes, data.channels, data.image_size)
    return NormalizedNetwork(Normalize(data.mean, data.std), net).to(device)


def model_from(cell: Cell, data: Dataset, device: torch.device, state: State) -> NormalizedNetwork:
    model = build_model(cell, data, device)
    model.load_state_dict(state)
    return model


# -- endpoints ---------------------------------------------------------------------------
def training_set(cell: Cell, data: Dataset) -> tuple[ImageSet, int]:
    """The endpoints' training data (poisoned by a poisoning attack) and how many of its
    images are poisoned."""
    if cell.attack_stage != "poison":
        return data.train, 0
    poisoned = cell.attack.instance.poison(
        data.train,
        data.num_classes,
        torch.Generator().manual_seed(derived_seed("poison", cell.seed)),
    )
    return poisoned.data, len(poisoned.poisoned_index)


def train_endpoint(
    cell: Cell,
    role: str,
    data: Dataset,
    device: torch.device,
    cache: StageCache,
    progress: ProgressFactory,
) -> Artifact:
    """Endpoint ``role`` trained from its seed: its state_dict and the training's meta."""
    stage = plan.endpoint(cell, role)
    seed = derived_seed("endpoint", cell.seed, role)

    def compute(checkpoint: Checkpoint) -> tuple[State, dict]:
        with seeded(seed):
            model = build_model(cell, data, device)
        train_set, poisoned = training_set(cell, data)
        s = cell.train
        adversarial = role in cell.adversarial.endpoints
        loss_fn = (
            adversarial_training_loss(cell.adversarial.attack) if adversarial else cross_entropy
        )
        label = f"{stage.label} ({cell.architecture.name}{', adversarial' if adversarial else ''})"
        before = training_seconds(checkpoint)  # the epochs trained before a kill, if any
        started = time.perf_counter()
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
            device=device,
            seed=seed,
            loss_fn=loss_fn,
            checkpoint=checkpoint,
            on_epoch=progress(label, s.epochs),
            precision=cell.compute.precision,
            compile=cell.compute.compile,
        )
        meta = {
            "identity": cell.endpoint_identity(role),
            "train_loss": losses,
            "poisoned_images": poisoned,
            "seconds": before + time.perf_counter() - started,
        }
        return model.state_dict(), meta

    return cache.tensors(stage.stage, stage.key, stage.inputs, compute)


# -- tamper ------------------------------------------------------------------------------
def choose_injection(cell: Cell, evaluation: ImageSet, num_classes: int) -> Injection | None:
    """The injection's targets, drawn from the evaluation images: the same for both
    endpoints."""
    generator = torch.Generator().manual_seed(derived_seed("targets", cell.seed))
    return cell.attack.instance.choose_injection(evaluation, num_classes, generator)


def tamper_size(before: State, after: State) -> dict:
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


def tamper_endpoint(
    cell: Cell,
    role: str,
    endpoint: State,
    data: Dataset,
    injection: Injection | None,
    device: torch.device,
    cache: StageCache,
) -> Artifact:
    """Endpoint ``role`` after the cell's weight attack: its state_dict, and the attack's
    report in ``meta["report"]``."""
    stage = plan.tamper(cell, role)

    def compute(checkpoint: Checkpoint) -> tuple[State, dict]:
        model = model_from(cell, data, device, endpoint)
        generator = torch.Generator().manual_seed(derived_seed("attacker", cell.seed))
        attacker = data.train.subset(torch.randperm(len(data.train), generator=generator))
        ctx = TamperContext(
            model=model,
            network=model.network,
            attacker=attacker,
            injection=injection,
            num_classes=data.num_classes,
            device=device,
            seed=derived_seed("tamper", cell.seed),
            batch_size=cell.evaluate.batch_size,
        )
        before = {k: v.detach().clone() for k, v in model.network.state_dict().items()}
        started = time.perf_counter()
        report = dict(cell.attack.instance.tamper(ctx))
        report["seconds"] = time.perf_counter() - started
        report["size"] = tamper_size(before, model.network.state_dict())
        return model.state_dict(), {"identity": cell.tamper_identity(role), "report": report}

    return cache.tensors(stage.stage, stage.key, stage.inputs, compute)


# -- repair ------------------------------------------------------------------------------
def repair_context(
    cell: Cell,
    endpoints: tuple[State, ...],
    data: Dataset,
    bonafide: ImageSet,
    device: torch.device,
    checkpoint: Checkpoint | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> RepairContext:
    return RepairContext(
        endpoints=tuple(model_from(cell, data, device, state) for state in endpoints),
        build=lambda: build_model(cell, data, device),
        bonafide=bonafide,
        connection=cell.connection.instance if cell.connection else None,
        num_classes=data.num_classes,
        device=device,
        seed=derived_seed("repair", cell.seed),
        augment=cell.train.augment,
        checkpoint=checkpoint,
        on_epoch=on_epoch,
        precision=cell.compute.precision,
        compile=cell.compute.compile,
    )


def repair(
    cell: Cell,
    endpoints: tuple[State, ...],
    data: Dataset,
    bonafide: ImageSet,
    device: torch.device,
    cache: StageCache,
    progress: ProgressFactory,
) -> Artifact:
    """The repair's tensors, fitted on the bonafide data from the (tampered) endpoints."""
    stage = plan.repair(cell)

    def compute(checkpoint: Checkpoint) -> tuple[State, dict]:
        label = f"repair {cell.repair.name}" + (
            f" {cell.connection.name}" if cell.connection else ""
        )
        epochs = getattr(cell.repair.instance, "epochs", 1)
        ctx = repair_context(
            cell, endpoints, data, bonafide, device, checkpoint, progress(label, epochs)
        )
        before = training_seconds(checkpoint)
        started = time.perf_counter()
        state = cell.repair.instance.fit(ctx)
        seconds = before + time.perf_counter() - started
        meta = {"identity": cell.repair_identity(), "seconds": seconds}
        return state, meta

    return cache.tensors(stage.stage, stage.key, stage.inputs, compute)


# -- evaluation --------------------------------------------------------------------------
def score(cell: Cell, model: torch.nn.Module, scoring: Scoring, device: torch.device) -> Scores:
    """Every metric of the cell on ``model``; None for a metric whose data the cell lacks.
    What metrics note beside their values is under "notes". Each metric computes in the
    cell's precision unless it asks for full precision."""
    ctx = MetricContext(
        model=model,
        clean=scoring.clean,
        triggered=scoring.triggered,
        injection=scoring.injection,
        num_classes=scoring.num_classes,
        device=device,
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
            precision = "fp32" if metric.entry.cls.full_precision else cell.compute.precision
            with autocast(device, precision):
                scores[metric.key] = float(metric.instance.compute(ctx))
            if metric.name in ctx.notes:
                notes[metric.key] = ctx.notes.pop(metric.name)
        else:
            scores[metric.key] = None
    if notes:
        scores["notes"] = notes
    return scores


def score_endpoint(
    cell: Cell,
    role: str,
    endpoint: State,
    data: Dataset,
    scoring: Scoring,
    device: torch.device,
    cache: StageCache,
    untampered: bool = False,
) -> Scores:
    """The scores of endpoint ``role``: ``endpoint`` is its state as trained
    (``untampered``) or as the repair gets it."""
    stage = plan.endpoint_eval(cell, role, untampered)
    artifact = cache.json(
        stage.stage,
        stage.key,
        stage.inputs,
        lambda: score(cell, model_from(cell, data, device, endpoint), scoring, device),
    )
    return artifact.meta["result"]


def recalibrate(cell: Cell, model: torch.nn.Module, bonafide: ImageSet, device) -> None:
    """BatchNorm statistics from the bonafide images, as the cell's evaluate settings say."""
    passes = cell.evaluate.recalibrate_augmented
    with autocast(device, cell.compute.precision):  # the statistics themselves stay fp32
        recalibrate_batchnorm(
            model,
            bonafide,
            device,
            cell.evaluate.batch_size,
            passes=max(passes, 1),
            augment_seed=derived_seed("recalibrate", cell.seed) if passes else None,
        )


def endpoint_anchors(
    cell: Cell, endpoints: tuple[torch.nn.Module, ...], bonafide: ImageSet, device
) -> tuple[list[Statistics], list[Statistics]] | None:
    """The endpoints' BatchNorm statistics as trained and as ``recalibrate`` recomputes
    them, when the cell anchors the points' statistics to the endpoints' (None otherwise)."""
    if not cell.evaluate.recalibrate_anchored or not any(has_batchnorm(m) for m in endpoints):
        return None  # (recalibrate_anchored implies recalibrate_bn: EvalSettings checks it)
    return endpoint_statistics(endpoints, lambda model: recalibrate(cell, model, bonafide, device))


def evaluate_points(
    cell: Cell,
    endpoints: tuple[State, ...],
    repaired: State,
    data: Dataset,
    bonafide: ImageSet,
    scoring: Scoring,
    device: torch.device,
    held_out: ImageSet | None = None,
) -> tuple[list[dict], list[float] | None]:
    """The scores of every model on the repair's path, each as ``{"t": t, **scores}``;
    BatchNorm statistics are recomputed on the bonafide data first when the cell asks.
    With HELD_OUT bonafide images, also each model's accuracy on them (None without)."""
    ctx = repair_context(cell, endpoints, data, bonafide, device)
    path = cell.repair.instance.path(ctx, repaired, cell.evaluate.points)
    anchors = endpoint_anchors(cell, ctx.endpoints, bonafide, device)
    along, held_out_accuracy = [], []
    for point in path.points:
        model = path.model_at(point).to(device)
        if cell.evaluate.recalibrate_bn and has_batchnorm(model):
            recalibrate(cell, model, bonafide, device)
            weights = path.endpoint_weights(point) if anchors else None
            if weights is not None:
                anchor_batchnorm(model, weights, *anchors)
        along.append({"t": point, **score(cell, model, scoring, device)})
        if held_out is not None:
            with autocast(device, cell.compute.precision):
                held_out_accuracy.append(
                    accuracy(model, held_out, device, cell.evaluate.batch_size)
                )
    return along, held_out_accuracy if held_out is not None else None
