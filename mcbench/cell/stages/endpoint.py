"""The endpoint stage: one endpoint trained from its seed on the training set, poisoned
first by a poisoning attack and adversarially trained where the track says so."""

from __future__ import annotations

import time

import torch

from mcbench.bench.cells import Cell
from mcbench.cell.models import State, build_model
from mcbench.cell.stages.call import Inputs, StageCall
from mcbench.kinds.data import Dataset, ImageSet
from mcbench.kinds.training import FitOptions
from mcbench.protocol.seeds import derived_seed
from mcbench.toolkit.adversarial import adversarial_training_loss
from mcbench.toolkit.training import cross_entropy, fit, seeded, training_seconds


def training_set(cell: Cell, data: Dataset) -> tuple[ImageSet, int]:
    """The endpoints' training data (poisoned by a poisoning attack) and how many of its
    images are poisoned."""
    if cell.attack_stage != "poison":
        return data.train, 0
    assert cell.attack is not None  # a poisoning attack's cell
    poisoned = cell.attack.instance.poison(
        data.train,
        data.num_classes,
        torch.Generator().manual_seed(derived_seed("poison", cell.seed)),
    )
    return poisoned.data, len(poisoned.poisoned_index)


def train_endpoint(call: StageCall, inputs: Inputs) -> tuple[State, dict]:
    """Endpoint ``call.role`` trained from its seed: its state_dict and the training's
    meta."""
    cell, data, device, role = call.cell, call.data, call.device, call.role
    seed = derived_seed("endpoint", cell.seed, role)
    with seeded(seed):
        model = build_model(cell, data, device)
    train_set, poisoned = training_set(cell, data)
    s = cell.train
    adversarial = role in cell.adversarial.endpoints
    if adversarial:
        assert cell.adversarial.attack is not None  # required with adversarial endpoints
        loss_fn = adversarial_training_loss(cell.adversarial.attack)
    else:
        loss_fn = cross_entropy
    label = f"{call.id.label} ({cell.architecture.name}{', adversarial' if adversarial else ''})"
    before = training_seconds(call.checkpoint)  # the epochs trained before a kill, if any
    started = time.perf_counter()
    run = FitOptions(
        device=device,
        seed=seed,
        precision=cell.compute.precision,
        compile=cell.compute.compile,
        checkpoint=call.checkpoint,
        on_epoch=call.progress(label, s.epochs),
    )
    losses = fit(model, train_set, s, run, augment=s.augment, loss_fn=loss_fn)
    meta = {
        "identity": cell.endpoint_identity(role),
        "train_loss": losses,
        "poisoned_images": poisoned,
        "seconds": before + time.perf_counter() - started,
    }
    return model.state_dict(), meta
