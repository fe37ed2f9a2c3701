"""The repair stage: the cell's repair fitted on the bonafide budget from the endpoints as
the repair gets them (tampered, or as trained)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from mcbench.bench.cells import Cell
from mcbench.cell.data import bonafide_for, split_for
from mcbench.cell.models import State, build_model, model_from
from mcbench.cell.stages.call import Inputs, StageCall, many
from mcbench.kinds import RepairContext
from mcbench.kinds.data import Dataset, ImageSet
from mcbench.protocol.seeds import derived_seed
from mcbench.toolkit.checkpoint import Checkpoint
from mcbench.toolkit.training import training_seconds


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
        compile=cell.repair_compute.compile,
    )


def states(artifacts: tuple) -> tuple[State, ...]:
    found = tuple(a.tensors for a in artifacts)
    assert all(s is not None for s in found)
    return found


def fit_repair(call: StageCall, inputs: Inputs) -> tuple[State, dict]:
    """The repair's tensors, fitted on the bonafide data from the ``endpoints`` inputs."""
    cell, data = call.cell, call.data
    bonafide = bonafide_for(cell, split_for(cell, data)).fit
    label = f"repair {cell.repair.name}" + (f" {cell.connection.name}" if cell.connection else "")
    epochs = getattr(cell.repair.instance, "epochs", 1)
    ctx = repair_context(
        cell,
        states(many(inputs, "endpoints")),
        data,
        bonafide,
        call.device,
        call.checkpoint,
        call.progress(label, epochs),
    )
    before = training_seconds(call.checkpoint)
    started = time.perf_counter()
    state = cell.repair.instance.fit(ctx)
    seconds = before + time.perf_counter() - started
    return state, {"identity": cell.repair_identity(), "seconds": seconds}
