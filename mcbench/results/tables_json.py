"""Leaderboard tables as one JSON document, for tools that read them (``--format json``)."""

from __future__ import annotations

import json

import pandas as pd

from mcbench.results.leaderboard import TITLES
from mcbench.results.records import MetricInfo, Record

SCHEMA = 1
"""Bumped when a field changes meaning or goes away."""


def tables_document(
    tables: dict[str, pd.DataFrame],
    names: list[str],
    info: dict[str, MetricInfo],
    failed: list[Record],
) -> dict[str, object]:
    """The tables NAMES with their unformatted numbers (a metric as a fraction where its
    info says percent, as in CSV; mean and std over seeds as <metric>_mean and
    <metric>_std; null where there is no value), each metric's info, and the failed cells."""
    return {
        "schema": SCHEMA,
        "metrics": info,
        "tables": {name: _table(name, tables[name]) for name in names},
        "failed": [
            {
                "cell_id": r["cell_id"],
                "label": r.get("label"),
                "error": {k: (r.get("error") or {}).get(k) for k in ("type", "message")},
            }
            for r in failed
        ],
    }


def _table(name: str, table: pd.DataFrame) -> dict[str, object]:
    return {
        "title": TITLES[name],
        "columns": [str(c) for c in table.columns],
        # pandas writes NaN as null and numpy scalars as plain numbers
        "rows": json.loads(table.to_json(orient="records", double_precision=15)),
    }
