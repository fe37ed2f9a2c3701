"""The tamper stage: a trained endpoint attacked in its weights by the cell's weight attack,
with the attack's report and how much it changed the weights."""

from __future__ import annotations

import time

import torch

from mcbench.cell.data import injection_for, split_for
from mcbench.cell.models import State, model_from
from mcbench.cell.stages.call import Inputs, StageCall, one
from mcbench.kinds import TamperContext
from mcbench.protocol.seeds import derived_seed


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


def tamper_endpoint(call: StageCall, inputs: Inputs) -> tuple[State, dict]:
    """The ``trained`` endpoint after the cell's weight attack: its state_dict, and the
    attack's report in ``meta["report"]``."""
    cell, data, device = call.cell, call.data, call.device
    assert cell.attack is not None  # a weight attack's cell
    trained = one(inputs, "trained").tensors
    assert trained is not None
    injection = injection_for(cell, split_for(cell, data), data)
    model = model_from(cell, data, device, trained)
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
    return model.state_dict(), {"identity": cell.tamper_identity(call.role), "report": report}
