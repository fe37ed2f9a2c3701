"""How values and tables are written: a percentage x100 with 1 digit, any other value
with 3; tables as Markdown, CSV or HTML."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import pandas as pd
from tabulate import tabulate

from mcbench.results.records import MetricInfo

NO_INFO = cast(MetricInfo, {})
"""The info of a metric that the records do not describe: every field left out, so that
each ``.get`` gives its default."""


def scale(percent: bool) -> float:
    return 100.0 if percent else 1.0


def number(value: float, percent: bool) -> str:
    return f"{value * scale(percent):.{1 if percent else 3}f}"


def mean_std(mean: float, std: float, seeds: int, percent: bool) -> str:
    """'mean ± std' over seeds; the mean alone where there is one seed (no spread known),
    '-' where there is no value."""
    if pd.isna(mean):
        return "-"
    if seeds < 2:
        return number(mean, percent)
    return f"{number(mean, percent)} ± {number(std, percent)}"


def display(table: pd.DataFrame, info: Mapping[str, MetricInfo]) -> pd.DataFrame:
    """Merge each mean/std pair into one 'mean ± std' text column."""
    out = table[[c for c in table.columns if not c.endswith(("_mean", "_std"))]].copy()
    out = out.astype(object).where(out.notna(), None)  # e.g. no t for a single-model repair
    for col in table.columns:
        if col.endswith("_mean"):
            name = col[:-5]
            base = name.split(":")[-1]
            percent = info.get(base, NO_INFO).get("percent", False)
            title = name + (" %" if percent else "")
            out[title] = [
                mean_std(m, s, n, percent)
                for m, s, n in zip(table[col], table[name + "_std"], table["seeds"])
            ]
    return out


def render(table: pd.DataFrame, info: Mapping[str, MetricInfo], fmt: str) -> str:
    """A table as Markdown (md), CSV (the numbers unformatted) or HTML."""
    if table.empty:
        return "(no results)\n"
    if fmt == "csv":
        return table.to_csv(index=False)
    if "seeds" in table:
        shown = display(table, info)
    else:  # a plain table (the weight attacks'): blanks where a figure does not apply
        shown = table.astype(object).where(table.notna(), None)
    if fmt == "html":
        shown = shown.astype(object).where(shown.notna(), "-")
        return shown.to_html(index=False, border=0, classes="leaderboard", na_rep="-")
    return (
        tabulate(
            shown,  # type: ignore[arg-type]  # tabulate reads a DataFrame (its stubs omit it)
            headers="keys",
            tablefmt="github",
            showindex=False,
            missingval="-",
            floatfmt=".4g",
        )
        + "\n"
    )
