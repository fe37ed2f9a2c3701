"""Which model of a repair's path or surface a cell reports, by the evaluate settings' t
rule, with everything the choice read (for the record)."""

from __future__ import annotations

from mcbench.bench.cells import Cell
from mcbench.bench.settings import EvalSettings
from mcbench.cell.split import Bonafide
from mcbench.protocol.t_rule import CURVE_ENDS, choose_point, nearest_to_centre


def surface_result(
    cell: Cell, along: list[dict], held_out_accuracy: list[float] | None, bonafide: Bonafide
) -> dict:
    """The record's ``surface`` field: every evaluated (u, v) with its scores, the corners,
    and the point reported (the cell's one model), chosen by the t rule's two-dimensional
    form: the grid point nearest the corners' centroid under the fixed rule."""
    corners = [tuple(c) for c in cell.repair.instance.corner_positions()]
    positions = [tuple(point["t"]) for point in along]
    evaluate = cell.evaluate
    if evaluate.t_rule == "fixed":
        index = nearest_to_centre(positions, corners)
        rule = {"rule": "fixed"}
    else:
        assert held_out_accuracy is not None  # the bonafide rule scores a held-out part
        choice = choose_point(positions, held_out_accuracy, corners, evaluate.tolerance)
        index = choice.index
        rule = bonafide_rule(evaluate, bonafide, held_out_accuracy, choice.reference)
    return {
        "corners": [list(c) for c in corners],
        "points": [
            {"uv": list(p), **{k: v for k, v in point.items() if k != "t"}}
            for p, point in zip(positions, along)
        ],
        "chosen": list(positions[index]),
        "index": index,
        "rule": rule,
    }


def choose_reported_t(
    cell: Cell, along: list[dict], held_out_accuracy: list[float] | None, bonafide: Bonafide
) -> tuple[float, dict]:
    """The t the cell reports on its path, and the record's ``t_rule`` field: how it was
    chosen, with everything the choice read."""
    evaluate = cell.evaluate
    if evaluate.t_rule == "fixed":
        return evaluate.reported_point(), {"rule": "fixed", "report_t": evaluate.report_t}
    positions = [(point["t"],) for point in along]
    assert held_out_accuracy is not None  # the bonafide rule scores a held-out part
    choice = choose_point(positions, held_out_accuracy, CURVE_ENDS, evaluate.tolerance)
    (t,) = choice.position
    return t, {**bonafide_rule(evaluate, bonafide, held_out_accuracy, choice.reference), "t": t}


def bonafide_rule(
    evaluate: EvalSettings, bonafide: Bonafide, held_out_accuracy: list[float], reference: float
) -> dict:
    """What the bonafide rule read, for the record: its settings, the sizes of the fit and
    held-out parts, the held-out accuracy at every point, and the endpoints' mean."""
    assert bonafide.held_out is not None  # the bonafide rule holds a part out
    return {
        "rule": "bonafide",
        "holdout": evaluate.holdout,
        "tolerance": evaluate.tolerance,
        "fit_size": len(bonafide.fit),
        "held_out_size": len(bonafide.held_out),
        "held_out_accuracy": held_out_accuracy,
        "endpoints_accuracy": reference,
    }
