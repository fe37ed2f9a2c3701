"""The bonafide t rule replayed on records at other tolerances: which t it would choose, and
that point's scores. Nothing is recomputed: each record holds the held-out accuracy the rule
read at every t, and the scores along the path.

For every record chosen by the bonafide rule there is one row: a column per tolerance (the
record's own tolerance is marked *), and the best interior t with attack success at most
``asr``, which only someone who knows the trigger can pick. Choosing a tolerance by looking
at this table uses the trigger: it is a sensitivity analysis, not a rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from tabulate import tabulate

from mcbench.protocol.t_rule import CURVE_ENDS, choose_point
from mcbench.results.labels import plugin_labels
from mcbench.results.leaderboard import values_of
from mcbench.results.records import Point, Record

TITLE = "clean accuracy / attack success rate (%) at the chosen t"


def scores(point: Point) -> str:
    values = values_of(point)
    clean, attack = 100 * values["clean_accuracy"], 100 * values["attack_success_rate"]
    return f"t={point['t']:g}: {clean:.1f} / {attack:.1f}"


Row = list[object]


def replay_rows(records: list[Record], tolerances: Sequence[float], asr: float) -> list[Row]:
    """One row per record of the bonafide rule, sorted by attack and seed, repair, budget."""
    labels = plugin_labels(records)  # names plus the parameters that tell them apart
    rows: list[Row] = []
    for record in records:
        rule = record.get("t_rule")
        if rule is None or rule["rule"] != "bonafide":
            continue
        path = record["path"]
        # the bonafide rule chose a point of a path: every point has a t
        positions = [(cast(float, point["t"]),) for point in path]
        config = record["config"]
        cell = record["cell_id"]
        row: Row = [
            f"{labels['attack'][cell]} seed {config['seed']}",
            labels["repair"][cell],
            config["budget"],
        ]
        for tolerance in tolerances:
            choice = choose_point(positions, rule["held_out_accuracy"], CURVE_ENDS, tolerance)
            mark = "*" if tolerance == rule["tolerance"] else ""
            row.append(scores(path[choice.index]) + mark)
        row.append(_best_with_the_trigger_in_view(path, asr))
        rows.append(row)
    rows.sort(key=lambda row: (str(row[0]), str(row[1]), int(row[2])))  # type: ignore[call-overload]
    return rows


def _best_with_the_trigger_in_view(path: list[Point], asr: float) -> str:
    clean = [
        p for p in path if 0 < values_of(p)["t"] < 1 and values_of(p)["attack_success_rate"] <= asr
    ]
    best = max(clean, key=lambda p: values_of(p)["clean_accuracy"], default=None)
    return scores(best) if best else "none"


def replay_table(rows: list[Row], tolerances: Sequence[float], asr: float) -> str:
    """The rows as the command prints them: a title line, then a Markdown table."""
    headers = [
        "attack, seed",
        "repair",
        "budget",
        *(f"tolerance {t:g}" for t in tolerances),
        f"best t with ASR <= {asr:.0%}",
    ]
    return TITLE + "\n" + tabulate(rows, headers=headers, tablefmt="github")
