"""The endpoint-eval stage: every metric of the cell on one endpoint, as trained or as the
repair gets it (tampered)."""

from __future__ import annotations

from mcbench.cell.data import scoring_for, split_for
from mcbench.cell.models import model_from
from mcbench.cell.scoring import Scores, score
from mcbench.cell.stages.call import Inputs, StageCall, one


def score_endpoint(call: StageCall, inputs: Inputs) -> Scores:
    """The scores of the ``model`` input."""
    cell, data, device = call.cell, call.data, call.device
    state = one(inputs, "model").tensors
    assert state is not None
    scoring = scoring_for(cell, data, split_for(cell, data))
    return score(cell, model_from(cell, data, device, state), scoring, device)
