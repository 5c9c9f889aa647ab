"""`reports.tables`: the one console table of every command: its header words, money right-aligned on the decimal
point at one exact precision, lower bounds and unknown amounts, `(none)`, subtotal and total rows."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from otel_ai_cost.reports.tables import HEADERS, NONE, SUBTOTAL, Column, money_cells, render, table


def _lines(text: str) -> list[str]:
    """The table's lines that hold cells (the heading and every row), without rules."""
    return [line.rstrip() for line in text.splitlines() if "│" in line or "┃" in line]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in re.split("[│┃]", line)]


def _decimal_points(lines: list[str], column: int) -> set[int]:
    """The character column of the decimal point of each line's cell `column` (lines without one are left out)."""
    points = set()
    for line in lines:
        bounds = [0, *(m.start() for m in re.finditer("[│┃]", line)), len(line)]
        cell = line[bounds[column] : bounds[column + 1]]
        if "." in cell:
            points.add(bounds[column] + cell.index("."))
    return points


# -- money_cells ------------------------------------------------------------------------------------------------


def test_a_money_column_has_one_precision_the_most_decimals_any_amount_needs_never_rounded():
    cells = money_cells([Decimal("12.5"), Decimal("0.000235"), Decimal("1000"), Decimal("0.10")])
    assert cells == ["12.500000", "0.000235", "1,000.000000", "0.100000"]
    assert all(Decimal(cell.replace(",", "")) == value for cell, value in zip(cells, [Decimal("12.5"),
               Decimal("0.000235"), Decimal("1000"), Decimal("0.1")], strict=True))  # fmt: skip


def test_a_money_column_shows_at_least_cents_and_never_an_exponent():
    assert money_cells([Decimal("3"), Decimal("1E+3"), Decimal("0E-10")]) == ["3.00", "1,000.00", "0.00"]
    assert money_cells([Decimal("0.000000000001")]) == ["0.000000000001"]


def test_a_lower_bound_is_marked_and_an_unknown_amount_is_never_zero():
    cells = money_cells([Decimal("1.2"), Decimal("0.5"), None], [True, False, True])
    assert cells == [">= 1.20", "0.50", "unknown"]


def test_a_text_value_is_shown_as_it_is_and_sets_no_precision():
    assert money_cells(["-", Decimal("2.5")]) == ["-", "2.50"]


# -- table ------------------------------------------------------------------------------------------------------


def test_headers_come_from_the_one_vocabulary_unless_a_column_names_its_own():
    columns = [Column("provider"), Column("amount", "money"), Column("calls", "count"), Column("colour"),
               Column("x", header="my header")]  # fmt: skip
    heading = _cells(_lines(render(table(columns, [{"provider": "openai", "amount": Decimal(1), "calls": 1}])))[0])
    assert heading == [HEADERS["provider"], "cost USD", "calls", "colour", "my header"]


def test_amounts_line_up_on_the_decimal_point_with_lower_bounds_unknown_and_the_total():
    rows = [
        {"model": "a", "amount": Decimal("1234.5")},
        {"model": "b", "amount": Decimal("0.000001"), "unknown_cost_calls": 1},
        {"model": "c", "amount": None, "unknown_cost_calls": 2},
        {"model": "d", "amount": Decimal("7")},
    ]
    total = {"model": "total", "amount": Decimal("1241.500001"), "unknown_cost_calls": 3}
    text = render(table([Column("model"), Column("amount", "money")], rows, total=total))
    lines = _lines(text)
    assert [_cells(line)[1] for line in lines[1:]] == ["1,234.500000", ">= 0.000001", "unknown", "7.000000",
                                                        ">= 1,241.500001"]  # fmt: skip
    assert len(_decimal_points(lines[1:], 1)) == 1  # one character column for every decimal point
    widths = {len(line) for line in lines}
    assert len(widths) == 1  # right-aligned: every cell ends at the column's edge


def test_empty_attribution_is_none_but_the_total_leaves_unsummed_columns_blank():
    rows = [{"team": "", "job_id": None, "calls": 3}, {"team": "search", "job_id": "job-1", "calls": 1_200}]
    text = render(table([Column("team"), Column("job_id"), Column("calls", "count")], rows,
                        total={"team": "total", "calls": 1_203}))  # fmt: skip
    assert [_cells(line) for line in _lines(text)] == [
        ["team", "job", "calls"],
        [NONE, NONE, "3"],
        ["search", "job-1", "1,200"],
        ["total", "", "1,203"],
    ]


def test_a_subtotal_row_is_set_apart_and_blank_where_it_has_no_value():
    rows = [
        {"provider": "openai", "model": "a", "amount": Decimal("1")},
        {"provider": "openai", "model": "b", "amount": Decimal("2")},
        {"provider": "openai", "model": "subtotal", "amount": Decimal("3"), SUBTOTAL: True, "team": ""},
        {"provider": "anthropic", "model": "c", "amount": Decimal("0.5"), "team": ""},
    ]
    columns = [Column("provider"), Column("model"), Column("team"), Column("amount", "money")]
    built = table(columns, rows, total={"provider": "total", "amount": Decimal("3.5")})
    text = render(built)
    assert [_cells(line) for line in _lines(text)[1:]] == [
        ["openai", "a", NONE, "1.00"],
        ["openai", "b", NONE, "2.00"],
        ["openai", "subtotal", "", "3.00"],  # not `(none)`: a subtotal has no team
        ["anthropic", "c", NONE, "0.50"],
        ["total", "", "", "3.50"],
    ]
    assert [row.end_section for row in built.rows] == [False, False, True, True, False]  # a rule under each
    assert [row.style for row in built.rows] == [None, None, "bold", None, "bold"]
    body = text.splitlines()
    subtotal = next(i for i, line in enumerate(body) if "subtotal" in line)
    assert "─" in body[subtotal + 1]


def test_counts_have_thousands_separators_and_percentages_one_decimal():
    text = render(table([Column("calls", "count"), Column("percent", "percent")],
                        [{"calls": 1234567, "percent": Decimal("0.8125")}]))  # fmt: skip
    assert _cells(_lines(text)[1]) == ["1,234,567", "81.2%"]


@pytest.mark.parametrize("width", [None, 40])
def test_render_is_plain_text(width: int | None):
    text = render("a heading", table([Column("model")], [{"model": "gpt-4o-mini"}]), width=width)
    assert "\x1b[" not in text  # no colours or styles, even for bold rows
    assert text.startswith("a heading\n")
