"""Console tables every command prints the same way (`rich`): the same header words, money right-aligned on the
decimal point, counts with thousands separators, `(none)` for an empty attribution, a total row.

Money stays exact: a column's amounts are padded with zeros to the most decimal places any of them needs (at
least cents), so they line up on the decimal point without rounding. An amount that leaves out calls of unknown
cost is shown as a lower bound (`>= 1.20`); an unknown one as `unknown`, never as 0.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from otel_ai_cost.reports.model import NONE

__all__ = ["HEADERS", "NONE", "SUBTOTAL", "Column", "money_cells", "render", "table"]

# One word for one thing in every command's header.
HEADERS: Mapping[str, str] = {
    "day": "day",
    "month": "month",
    "environment": "environment",
    "service": "service",
    "provider": "provider",
    "model": "model",
    "operation": "operation",
    "operation_type": "operation type",
    "team": "team",
    "job_id": "job",
    "batch_id": "batch",
    "cicd_run_id": "CI run",
    "pricing_tier": "tier",
    "record_source": "record source",
    "cost_source": "cost source",
    "call_site": "call site",
    "calls": "calls",
    "amount": "cost USD",
    "average": "avg USD",
    "computed_amount": "catalog USD",
    "unknown_cost_calls": "cost unknown",
    "unpriced_calls": "unpriced",
    "input_tokens": "input tokens",
    "output_tokens": "output tokens",
    "cache_read_input_tokens": "cache read",
    "cache_write_input_tokens": "cache write",
    "reasoning_output_tokens": "reasoning",
    "limit": "limit USD",
    "spent": "spent USD",
    "remaining": "remaining USD",
    "percent": "% used",
    "status": "status",
    "time": "time (UTC)",
    "trace_id": "trace",
}
UNKNOWN = "unknown"
# A row key: when true, the row is a subtotal (bold, a rule under it, blank where it has no value, as the total).
SUBTOTAL = "__subtotal__"


@dataclass(frozen=True)
class Column:
    key: str
    kind: str = "text"  # text | money | count | percent
    header: str = ""  # default: HEADERS[key], else the key
    # A money column whose figures are never sums of calls (a budget's limit) is never shown as a lower bound.
    lower_bound: bool = True

    @property
    def title(self) -> str:
        return self.header or HEADERS.get(self.key, self.key)


def money_cells(values: Sequence[Decimal | str | None], lower_bound: Sequence[bool] = ()) -> list[str]:
    """The column's amounts as text aligned on the decimal point, exact (see the module documentation). A `str`
    value is shown as it is (e.g. `-` where there is nothing to show) and sets no precision."""
    places = 2
    for value in values:
        if isinstance(value, Decimal):
            exponent = value.normalize().as_tuple().exponent
            if isinstance(exponent, int):
                places = max(places, -exponent)
    cells = []
    for index, value in enumerate(values):
        if value is None:
            cells.append(UNKNOWN)
            continue
        if isinstance(value, str):
            cells.append(value)
            continue
        text = f"{value:,.{places}f}"  # exact: `places` is at least every value's own scale
        cells.append((">= " if index < len(lower_bound) and lower_bound[index] else "") + text)
    return cells


def _cell(column: Column, value: Any) -> str:
    if column.kind == "count":
        return "" if value is None else f"{value:,}"
    if column.kind == "percent":
        return "" if value is None else f"{value * 100:.1f}%"
    if value is None or value == "":
        return NONE
    return str(value)


def table(
    columns: Sequence[Column],
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str | None = None,
    total: Mapping[str, Any] | None = None,
    lower_bound_key: str = "unknown_cost_calls",
) -> Table:
    """A table of `rows` (dicts keyed by column key); `total` is a last row set apart. A money cell whose row has
    `lower_bound_key` > 0 is shown as a lower bound. A row with `SUBTOTAL` set is a subtotal (see SUBTOTAL)."""
    every = [*rows, *([total] if total is not None else [])]
    cells: dict[str, list[str]] = {}
    for column in columns:
        if column.kind == "money":
            bounds = [bool(row.get(lower_bound_key)) and column.lower_bound for row in every]
            cells[column.key] = money_cells([row.get(column.key) for row in every], bounds)
        else:
            cells[column.key] = [
                "" if row.get(SUBTOTAL) and row.get(column.key) in (None, "") else _cell(column, row.get(column.key))
                for row in rows
            ]
            if total is not None:  # the total row leaves the columns it does not sum blank, not `(none)`
                value = total.get(column.key)
                cells[column.key].append("" if value in (None, "") else _cell(column, value))
    out = Table(title=title, title_justify="left", show_edge=False, pad_edge=False, header_style="bold")
    for column in columns:
        out.add_column(
            column.title, justify="left" if column.kind == "text" else "right", no_wrap=column.kind != "text"
        )
    for index in range(len(every)):
        is_total = total is not None and index == len(every) - 1
        subtotal = not is_total and bool(every[index].get(SUBTOTAL))
        out.add_row(*(cells[column.key][index] for column in columns), end_section=subtotal or (index == len(rows) - 1
                    and total is not None), style="bold" if is_total or subtotal else None)  # fmt: skip
    return out


def render(*renderables: Any, width: int | None = None) -> str:
    """Text of tables (and strings), for `click.echo`: no colours or styles, `width` columns (default 160)."""
    console = Console(file=io.StringIO(), width=width or 160, color_system=None, no_color=True, legacy_windows=False)
    for renderable in renderables:
        console.print(renderable, highlight=False, markup=False, soft_wrap=not isinstance(renderable, Table))
    return console.file.getvalue()  # type: ignore[attr-defined]
