"""Replay the bonafide t rule on published records at other tolerances: which t it would
choose, and that point's scores. Nothing is recomputed: each record holds the held-out
accuracy the rule read at every t, and the scores along the path.

    python benchmarks/t_rule_replay.py leaderboards/backdoor-repair-cpu-bonafide \
        --tolerances 0.02 0.03 0.05

For every record chosen by the bonafide rule it prints one row per tolerance (the
record's own tolerance is marked *), and the best interior t with attack success at most
--asr, which only someone who knows the trigger can pick. Choosing a tolerance by
looking at this output uses the trigger: it is a sensitivity analysis, not a rule."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from tabulate import tabulate

from mcbench.errors import ConfigError
from mcbench.results.labels import plugin_labels
from mcbench.results.record_reader import load_records
from mcbench.protocol.t_rule import CURVE_ENDS, choose_point


def scores(point: dict) -> str:
    clean, attack = 100 * point["clean_accuracy"], 100 * point["attack_success_rate"]
    return f"t={point['t']:g}: {clean:.1f} / {attack:.1f}"


def fraction(text: str) -> float:
    """A command-line number in [0, 1] (argparse's type)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1], got {text!r}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a folder holding records/")
    parser.add_argument(
        "--tolerances", type=fraction, nargs="+", default=[0.02, 0.03, 0.05], metavar="T"
    )
    parser.add_argument("--asr", type=fraction, default=0.10)
    args = parser.parse_args()

    try:
        records, _ = load_records(args.results)
    except (FileNotFoundError, ConfigError) as e:
        parser.exit(2, f"error: {e}\n")
    labels = plugin_labels(records)  # names plus the parameters that tell them apart
    rows = []
    for record in records:
        rule = record.get("t_rule") or {}
        if rule.get("rule") != "bonafide":
            continue
        path = record["path"]
        positions = [(point["t"],) for point in path]
        config = record["config"]
        cell = record["cell_id"]
        row = [
            f"{labels['attack'][cell]} seed {config['seed']}",
            labels["repair"][cell],
            config["budget"],
        ]
        for tolerance in args.tolerances:
            choice = choose_point(positions, rule["held_out_accuracy"], CURVE_ENDS, tolerance)
            mark = "*" if tolerance == rule["tolerance"] else ""
            row.append(scores(path[choice.index]) + mark)
        clean = [p for p in path if 0 < p["t"] < 1 and p["attack_success_rate"] <= args.asr]
        best = max(clean, key=lambda p: p["clean_accuracy"], default=None)
        row.append(scores(best) if best else "none")
        rows.append(row)
    if not rows:
        parser.exit(
            2, f"error: {args.results}: no record whose t was chosen by the bonafide rule\n"
        )
    rows.sort(key=lambda row: (row[0], row[1], row[2]))
    headers = [
        "attack, seed",
        "repair",
        "budget",
        *(f"tolerance {t:g}" for t in args.tolerances),
        f"best t with ASR <= {args.asr:.0%}",
    ]
    print("clean accuracy / attack success rate (%) at the chosen t")
    print(tabulate(rows, headers=headers, tablefmt="github"))


if __name__ == "__main__":
    main()
