"""The bonafide t rule: which evaluated point of a repaired path (or surface) to report,
from the held-out bonafide accuracy alone. Positions are tuples of coordinates, ``(t,)`` on
a curve and ``(u, v)`` on a surface; the corners are the positions of the endpoints."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Position = tuple[float, ...]

CURVE_ENDS: tuple[Position, Position] = ((0.0,), (1.0,))

DISTANCE_DIGITS = 9
"""Distances are compared rounded: on a grid, 1 - 0.7 and 0.3 are one distance."""
SLACK = 1e-12
"""An accuracy exactly at the threshold qualifies, however the subtraction rounds."""


@dataclass(frozen=True)
class Choice:
    index: int
    """Of the chosen position, in the positions given."""
    position: Position
    reference: float
    """The corners' mean accuracy, which a qualifying point is compared with."""


def distance_to_corners(position: Position, corners: Sequence[Position]) -> float:
    """The Euclidean distance from POSITION to the nearest corner."""
    return min(math.dist(position, corner) for corner in corners)


def nearest_to_centre(positions: Sequence[Position], corners: Sequence[Position]) -> int:
    """The index of the position nearest the corners' centroid (the first of equals)."""
    centre = [sum(c[i] for c in corners) / len(corners) for i in range(len(corners[0]))]
    distances = [round(math.dist(p, centre), DISTANCE_DIGITS) for p in positions]
    return distances.index(min(distances))


def choose_point(
    positions: Sequence[Position],
    accuracy: Sequence[float],
    corners: Sequence[Position],
    tolerance: float,
) -> Choice:
    """Among the positions whose accuracy is at least the corners' mean accuracy minus
    TOLERANCE, the one farthest from the corners; ties go to the higher accuracy, then to
    the smaller position. Every corner must be among the positions (so one always
    qualifies: the most accurate corner)."""
    if len(positions) != len(accuracy):
        raise ValueError(f"{len(positions)} positions but {len(accuracy)} accuracies")
    if not corners:
        raise ValueError("the rule needs the corners' positions")
    at = {tuple(p): a for p, a in zip(positions, accuracy)}
    missing = [c for c in corners if tuple(c) not in at]
    if missing:
        raise ValueError(f"the corners {missing} are not among the evaluated positions")
    reference = sum(at[tuple(c)] for c in corners) / len(corners)
    qualifying = [i for i, a in enumerate(accuracy) if a >= reference - tolerance - SLACK]
    best = min(
        qualifying,
        key=lambda i: (
            -round(distance_to_corners(positions[i], corners), DISTANCE_DIGITS),
            -accuracy[i],
            tuple(positions[i]),
        ),
    )
    return Choice(best, tuple(positions[best]), reference)
