"""Each table row's files on the page: the records it is the mean of and the plots that draw
it, among the files copied beside the page (a file left out is not linked)."""

from __future__ import annotations

import html
import math
from collections.abc import Hashable, Iterable
from numbers import Real
from urllib.parse import quote

import pandas as pd

from mcbench.results.labels import plugin_labels, row_key
from mcbench.results.leaderboard import ATTACKED, ROW_GROUP
from mcbench.results.plot_names import plot_name
from mcbench.results.records import Record

# The columns that name a row's records, per table: the summary's rows are at the records'
# reported t, the path's rows at every t of them. A weight attack's row is an endpoint
# shared by many records: it has no links.
ROW_RECORDS = {"summary": [*ROW_GROUP, "t"], "barriers": ROW_GROUP, "path": ROW_GROUP}


def row_links(
    folder: str, name: str, table: pd.DataFrame, records: list[Record], copied: set[str]
) -> list[str] | None:
    """For each row of the table NAME (of the published FOLDER): links to its records and
    plots, as HTML; None for a table whose rows have no records of their own."""
    columns = ROW_RECORDS.get(name)
    if columns is None or table.empty:
        return None
    labels = plugin_labels(records)
    by_row: dict[tuple[object, ...], list[Record]] = {}
    for r in records:
        named = {**row_key(r, labels), "t": r["reported_t"]}
        by_row.setdefault(_key(named[c] for c in columns), []).append(r)
    links: list[str] = []
    for row in table[columns].to_dict("records"):
        found = sorted(by_row.get(_key(row.values()), []), key=lambda r: r["config"]["seed"])
        records_of_row = [
            _link(folder, f"records/{r['cell_id']}.json", f"seed {r['config']['seed']}")
            for r in found
            if f"records/{r['cell_id']}.json" in copied
        ]
        plots = [
            _link(folder, f"plots/{stem}.png", what)
            for what, stem in _plot_names(row)
            if f"plots/{stem}.png" in copied
        ]
        links.append(" ".join(records_of_row + plots))
    return links


def _plot_names(row: dict[Hashable, object]) -> list[tuple[str, str]]:
    """(what, file stem) of the figures `mcbench plot` draws a row in."""
    attacked = [row[c] for c in ATTACKED]
    return [
        ("path plot", plot_name("path", *attacked, row["repair"], f"n{row['budget']}")),
        ("budget plot", plot_name("budget", *attacked)),
    ]


def _link(folder: str, path: str, text: str) -> str:
    return f'<a href="{html.escape(quote(f"{folder}/{path}"))}">{html.escape(text)}</a>'


def _key(values: Iterable[object]) -> tuple[object, ...]:
    """VALUES comparable across records and table rows: NaN and None alike, numpy scalars
    as Python's."""
    key: list[object] = []
    for v in values:
        if v is None or (isinstance(v, Real) and math.isnan(v)):
            v = None
        elif hasattr(v, "item"):
            v = v.item()
        key.append(v)
    return tuple(key)
