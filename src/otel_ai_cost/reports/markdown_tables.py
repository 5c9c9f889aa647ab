"""Markdown tables (GitHub job summaries, the daily report, pull request comments), in the console tables' words
(`reports.tables`): the same headers, money exact and padded to one precision per column (`money_cells`), `(none)`
for an empty attribution, a bold total.

Cells are escaped: a model name or budget id read from a file cannot break the table or inject markup (`|`, `<`,
`>`, backticks, `*`, `_`, `[`, `]` and line breaks are neutralized).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from otel_ai_cost.reports.tables import NONE, Column, money_cells

__all__ = ["code", "escape", "markdown_table"]

_ESCAPES = str.maketrans({"|": "\\|", "\\": "\\\\", "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]",
                          "<": "&lt;", ">": "&gt;", "&": "&amp;", "\n": " ", "\r": " "})  # fmt: skip


def escape(text: str) -> str:
    """`text` as literal Markdown inline text."""
    return text.translate(_ESCAPES)


def code(text: str) -> str:
    """`text` as an inline code span (backslashes are literal there, so it is not escaped: backticks and line
    breaks, which would end it, are dropped)."""
    return "`" + text.replace("`", "").replace("\n", " ").replace("\r", " ") + "`"


def _cell(column: Column, value: Any) -> str:
    if column.kind == "count":
        return "" if value is None else f"{value:,}"
    if column.kind == "percent":
        return "" if value is None else f"{value * 100:.1f}%"
    if value is None or value == "":
        return NONE
    return escape(str(value))


def markdown_table(
    columns: Sequence[Column],
    rows: Sequence[Mapping[str, Any]],
    *,
    total: Mapping[str, Any] | None = None,
    lower_bound_key: str = "unknown_cost_calls",
) -> str:
    """A GitHub-flavoured Markdown table of `rows` (dicts keyed by column key); `total` is a last, bold row.
    Numbers are right-aligned; a money cell whose row has `lower_bound_key` > 0 reads `>= amount`."""
    every = [*rows, *([total] if total is not None else [])]
    cells: dict[str, list[str]] = {}
    for column in columns:
        if column.kind == "money":
            bounds = [bool(row.get(lower_bound_key)) and column.lower_bound for row in every]
            amounts = money_cells([row.get(column.key) for row in every], bounds)
            cells[column.key] = [cell.replace(">=", "&ge;") for cell in amounts]
        else:
            cells[column.key] = [_cell(column, row.get(column.key)) for row in rows]
            if total is not None:
                value = total.get(column.key)
                cells[column.key].append("" if value in (None, "") else _cell(column, value))
    lines = [
        "| " + " | ".join(escape(column.title) for column in columns) + " |",
        "|" + "|".join("---" if column.kind == "text" else "--:" for column in columns) + "|",
    ]
    for index in range(len(every)):
        row = [cells[column.key][index] for column in columns]
        if total is not None and index == len(every) - 1:
            row = [f"**{cell}**" if cell else "" for cell in row]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)
