"""Time to read a results folder of many records and build what `mcbench leaderboard` and
`mcbench plot` show from it.

    python timings/records_reading.py [--sizes 1000 3000 10000] [--repeats 3]
                                      [--templates CELL_ID... | --templates all]
                                      [--keep DIR] [--no-plot]

The records are copies of published ones (leaderboards/*/records/), by default of one
record (the backdoor-repair path/bezier cell at budget 2,500: 11 points along the path,
4.4 kB), with ``--templates all`` of every published record in turn (59 of them, 12 kB on
average: most carry a weight attack's report of 100 bit flips). Each copy has its own seed
and one of four budgets (and so its own cell id and stage keys), and its numbers moved a
little; they are written into a temporary folder as RESULTS/records/<cell_id>.json, every
one a valid record of the shape mcbench writes.

Timed separately, each the median of --repeats runs, as wall-clock and as CPU seconds of
this process (on a machine shared with other work, the CPU time is the steadier figure):
reading the folder (``load_records``); building and rendering the leaderboard's Markdown
tables from the records read (what `mcbench leaderboard RESULTS` does after reading); the
data `mcbench plot` draws (labels and styles, the rows of every path and budget figure:
``path_groups`` and ``budget_groups``); and, unless --no-plot, drawing those figures as
well (``path_figures`` and ``budget_figures``, without saving them: the drawing and the PNG
and SVG encoding cost the same per figure whatever the number of records behind it). Goal:
10,000 records read and tabulated (the first two together) in under 5 s; the ratio of that
wall time to it is printed per size.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path

from mcbench.results.format import render
from mcbench.results.leaderboard import build_tables, tables_to_print
from mcbench.results.plots import (
    PlotContext,
    budget_figures,
    budget_groups,
    path_figures,
    path_groups,
)
from mcbench.results.record_reader import load_records, settled
from mcbench.results.records import metric_info

LEADERBOARDS = Path(__file__).resolve().parents[1] / "leaderboards"
GOAL_S = 5.0
BUDGET_FACTORS = (1, 2, 4, 8)


def _hex(*parts) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


DEFAULT_TEMPLATE = "41007b3c9c3add48"


def templates(cell_ids: list[str]) -> list[dict]:
    files = sorted(LEADERBOARDS.glob("*/records/*.json"))
    if cell_ids != ["all"]:
        files = [f for f in files if f.stem in cell_ids]
    if not files:
        raise SystemExit(f"no published records {cell_ids} under {LEADERBOARDS}")
    return [json.loads(f.read_text(encoding="utf-8")) for f in files]


def synthetic(n: int, bases: list[dict]) -> list[dict]:
    """N records: the published ones over and over, each copy with its own seed and one of
    four budgets, its own cell id, stage keys and label, and its numbers moved a little so
    that the seeds' means and spreads are not trivial."""
    out = []
    per_base = -(-n // len(bases))
    seeds = -(-per_base // len(BUDGET_FACTORS))
    for i in range(n):
        base = bases[i % len(bases)]
        copy_no = i // len(bases)
        seed, factor = copy_no % seeds, BUDGET_FACTORS[copy_no // seeds % len(BUDGET_FACTORS)]
        r = copy.deepcopy(base)
        config = r["config"]
        config["seed"], config["budget"] = seed, config["budget"] * factor
        r["cell_id"] = _hex(base["cell_id"], seed, factor)
        r["keys"] = {k: _hex(v, seed, factor) for k, v in r.get("keys", {}).items()}
        r["label"] = f"{base.get('label', '')} copy {seed}/{factor}"
        wobble = ((i * 7919) % 101 - 50) / 5000
        for point in r["path"]:
            for k, v in point.items():
                if k != "t" and isinstance(v, float):
                    point[k] = v + wobble
        out.append(r)
    return out


def write(records: list[dict], results: Path) -> Path:
    folder = results / "records"
    folder.mkdir(parents=True, exist_ok=True)
    for r in records:
        (folder / f"{r['cell_id']}.json").write_text(json.dumps(r, indent=1), encoding="utf-8")
    return results


def leaderboard_text(records: list[dict]) -> str:
    tables = build_tables(records)
    info = metric_info(records)
    return "".join(render(tables[name], info, "md") for name in tables_to_print(tables, "md"))


def plot_data(records: list[dict]) -> int:
    context = PlotContext(records)
    return len(path_groups(records, context)) + len(budget_groups(records, context))


def plot_figures(records: list[dict]) -> int:
    context = PlotContext(records)
    figures = {**path_figures(records, context), **budget_figures(records, context)}
    for figure in figures.values():
        figure.clear()
    return len(figures)


def median_s(work, repeats: int):
    """(median wall seconds, median CPU seconds, the last value) of REPEATS runs of WORK."""
    walls, cpus, value = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        value = work()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus), value


def shown(wall: float, cpu: float) -> str:
    return f"{wall:6.2f} ({cpu:5.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--templates",
        nargs="+",
        default=[DEFAULT_TEMPLATE],
        help="cell ids of the published records to copy, or 'all'",
    )
    parser.add_argument("--keep", type=Path, default=None, help="write the folders here")
    parser.add_argument("--no-plot", action="store_true", help="skip the plot figures")
    args = parser.parse_args()
    bases = templates(args.templates)
    size = statistics.mean(len(json.dumps(b, indent=1)) for b in bases) / 1000
    print(
        f"{len(bases)} published record(s) as templates ({size:.1f} kB each on average); "
        f"medians of {args.repeats} runs"
    )
    columns = ("load_records", "tables", "plot data", "figures", "read+tables")
    print("seconds: wall (CPU)")
    print(f"{'records':>8} " + " ".join(f"{c:>14}" for c in columns) + "  ratio to 5 s")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for n in args.sizes:
            results = write(synthetic(n, bases), root / f"n{n}")
            load_wall, load_cpu, (ok, _) = median_s(lambda: load_records(results), args.repeats)
            assert len(ok) == n, (len(ok), n)
            with settled():  # as the commands build their tables and figures
                table_wall, table_cpu, _ = median_s(lambda: leaderboard_text(ok), args.repeats)
                data_wall, data_cpu, _ = median_s(lambda: plot_data(ok), args.repeats)
                figures = "-"
                if not args.no_plot:
                    figures = shown(*median_s(lambda: plot_figures(ok), args.repeats)[:2])
            both_wall, both_cpu = load_wall + table_wall, load_cpu + table_cpu
            cells = [
                shown(load_wall, load_cpu),
                shown(table_wall, table_cpu),
                shown(data_wall, data_cpu),
                f"{figures:>14}",
                shown(both_wall, both_cpu),
            ]
            print(f"{n:>8} " + " ".join(cells) + f"  {both_wall / GOAL_S:.2f}", flush=True)


if __name__ == "__main__":
    main()
