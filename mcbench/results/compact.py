"""What `mcbench run` prints when it ends: per track, one table with that track's own
columns, narrow enough for a terminal; the full tables go to files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
from tabulate import tabulate

from mcbench.results.format import display
from mcbench.results.records import MetricInfo

WIDTH = 120
"""Characters of a terminal line the tables are fitted to."""
NAMING = ("dataset", "architecture", "attack", "repair", "connection", "budget")
"""Columns that name a row; one with a single value over a track moves to its heading."""
FIRST_LEFT_OUT = ("untampered:", "endpoints:", "barrier:")
"""Column prefixes left out first when a table is too wide: figures the full table has."""


@dataclass(frozen=True)
class CompactTable:
    track: str
    table: str  # rendered as Markdown
    shared: dict[str, str]  # a naming column's single value over the track
    left_out: list[str]  # columns left out to fit the width


def compact_tables(
    table: pd.DataFrame | None, info: Mapping[str, MetricInfo], width: int = WIDTH
) -> list[CompactTable]:
    """TABLE (a summary or barrier table of ``build_tables``) split by track: columns with
    no value in the track dropped, a naming column with one value moved to ``shared``, and
    columns left out, the endpoints' and barriers' first, then the last ones, until the
    table fits WIDTH characters (the naming columns and t always stay)."""
    if table is None or table.empty or "track" not in table:
        return []
    out: list[CompactTable] = []
    for track in dict.fromkeys(table["track"]):
        rows = table[table["track"] == track].reset_index(drop=True)
        shown = display(rows, info).drop(columns=["track"])
        shown = shown[[c for c in shown.columns if _has_values(shown[c])]]
        shared: dict[str, str] = {}
        if len(shown) > 1:
            for column in NAMING:
                if column in shown and shown[column].nunique(dropna=False) == 1:
                    shared[column] = str(shown[column].iloc[0])
        if "seeds" in shown and shown["seeds"].nunique() == 1:
            shared["seeds"] = str(shown["seeds"].iloc[0])
        shown = shown.drop(columns=list(shared))
        shown, left_out = _fitted(shown, width)
        out.append(CompactTable(str(track), _markdown(shown), shared, left_out))
    return out


def _has_values(column: pd.Series) -> bool:
    return any(v is not None and v != "-" and not pd.isna(v) for v in column)


def _fitted(shown: pd.DataFrame, width: int) -> tuple[pd.DataFrame, list[str]]:
    kept = set(NAMING) | {"t", "seeds"}
    optional = [c for c in shown.columns if c not in kept]
    order = [c for p in FIRST_LEFT_OUT for c in optional if c.startswith(p)]
    order += [c for c in reversed(optional) if c not in order]
    left_out: list[str] = []
    for column in order:
        if _width(shown) <= width:
            break
        shown = shown.drop(columns=[column])
        left_out.append(column)
    return shown, left_out


def _width(shown: pd.DataFrame) -> int:
    return max(len(line) for line in _markdown(shown).splitlines())


def _markdown(shown: pd.DataFrame) -> str:
    return tabulate(
        shown.astype(object).where(shown.notna(), None),  # type: ignore[arg-type]  # tabulate reads a DataFrame (its stubs omit it)
        headers="keys",
        tablefmt="github",
        showindex=False,
        missingval="-",
        floatfmt=".4g",
    )
