"""A leaderboard table as the page's HTML: the texts the tables show elsewhere, with what the
page's script sorts, filters and groups by in data-* attributes, so that it never parses a
formatted text. Every text is escaped."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from numbers import Integral, Real
from typing import SupportsFloat, cast

import pandas as pd

from mcbench.results.format import display
from mcbench.results.records import MetricInfo

LINKS_HEADER = "files"


def html_table(table: pd.DataFrame, info: Mapping[str, MetricInfo], links: list[str] | None) -> str:
    """TABLE (as ``build_tables`` makes it) as an HTML table; LINKS: each row's files, as
    HTML already escaped, shown in a last column."""
    if table.empty:
        return "(no results)\n"
    shown, sources = _shown(table, info)
    numeric = [_is_number(table[s]) for s in sources]
    head = "".join(_header(title, number) for title, number in zip(shown.columns, numeric))
    if links is not None:
        head += f'<th data-type="links">{LINKS_HEADER}</th>'
    budgets = table["budget"] if "budget" in table else None
    rows: list[str] = []
    for i in range(len(table)):
        cells = [
            # a numeric column's value: a number (or NaN)
            _cell(
                shown.iat[i, c], cast(SupportsFloat, table[source].iat[i]) if numeric[c] else None
            )
            for c, source in enumerate(sources)
        ]
        if links is not None:
            cells.append(f"<td data-links>{links[i]}</td>")
        budget = "" if budgets is None else f' data-budget="{_budget(budgets.iat[i])}"'
        rows.append(f"<tr{budget}>{''.join(cells)}</tr>")
    body = "\n".join(rows)
    return (
        f'<table class="leaderboard">\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody>\n</table>\n"
    )


def controls(table: pd.DataFrame) -> str:
    """The table's filter box and, where its rows have budgets, the budget choice (one
    budget, or rows grouped under each); hidden until the page's script shows them."""
    if table.empty:
        return ""
    parts = [
        '<label>Filter <input type="search" data-filter '
        'placeholder="architecture, attack, repair..."></label>'
    ]
    if "budget" in table:
        values = sorted({v for v in table["budget"] if _value(v) is not None})
        options = "".join(f'<option value="{_budget(v)}">{_budget(v)}</option>' for v in values)
        parts.append(
            '<label>Budget <select data-budget-choice><option value="">all</option>'
            f'<option value="group">grouped by budget</option>{options}</select></label>'
        )
    parts.append('<span class="meta" data-shown></span>')
    return f'<div class="controls" hidden>{"".join(parts)}</div>\n'


def _shown(table: pd.DataFrame, info: Mapping[str, MetricInfo]) -> tuple[pd.DataFrame, list[str]]:
    """(the table as shown, the column of TABLE each shown column comes from): a
    'mean ± std' column from its mean (``display`` puts them after the others)."""
    if "seeds" not in table:
        return table, list(table.columns)
    plain = [c for c in table.columns if not c.endswith(("_mean", "_std"))]
    means = [c for c in table.columns if c.endswith("_mean")]
    shown = display(table, info)
    if len(shown.columns) != len(plain) + len(means):
        raise AssertionError(f"unexpected display columns: {list(shown.columns)}")
    return shown, plain + means


def _is_number(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _header(title: str, number: bool) -> str:
    kind = "number" if number else "text"
    return f'<th data-type="{kind}"><button type="button">{html.escape(str(title))}</button></th>'


def _cell(shown: object, sort: SupportsFloat | None) -> str:
    """A cell showing SHOWN; SORT: its number in a numeric column (None elsewhere)."""
    text = _text(shown)
    if sort is not None and _value(sort) is not None:
        return f'<td data-sort="{_number(sort)}">{html.escape(text)}</td>'
    if text == "-" or (sort is not None and _value(sort) is None):
        return f"<td data-empty>{html.escape(text)}</td>"
    return f"<td>{html.escape(text)}</td>"


def _value(value: object) -> object:
    """VALUE, or None where it is missing (None or NaN)."""
    if value is None or (isinstance(value, Real) and math.isnan(value)):
        return None
    return value


def _text(value: object) -> str:
    """What pandas' HTML table showed for VALUE: '-' for no value, a float with up to 6
    decimals (trailing zeros dropped, one kept)."""
    value = _value(value)
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, Real):
        return str(value)
    if isinstance(value, Integral):
        return str(int(value))
    if math.isinf(value):
        return str(float(value))
    text = f"{value:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _number(value: SupportsFloat) -> str:
    """VALUE as JavaScript's parseFloat reads it."""
    if isinstance(value, Integral):
        return str(int(value))
    value = float(value)
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _budget(value: object) -> str:
    return html.escape(_text(value)) if _value(value) is not None else ""
