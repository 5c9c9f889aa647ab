"""Only sums that leave out calls of unknown cost are lower bounds (`>=`). A budget's limit (a figure of the budgets
file) and an average per priced call (a known figure) are not, in the console and in Markdown alike."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from otel_ai_cost.reports.console import render_console
from otel_ai_cost.reports.markdown import render_markdown
from otel_ai_cost.reports.model import BudgetBurn, DailyReport, Line

DAY = date(2026, 11, 22)


def report() -> DailyReport:
    burn = BudgetBurn(name="production/month", period="monthly", limit=Decimal("100"), spent=Decimal("12.50"),
                      unknown_cost_calls=2)  # fmt: skip
    return DailyReport(date=DAY, days=1, environment=None, generated_at=datetime(2026, 11, 23, tzinfo=timezone.utc),
                       total=Line("", Decimal("12.50"), 10, 2), budgets=[burn])  # fmt: skip


def test_the_console_marks_the_spend_as_a_lower_bound_not_the_limit() -> None:
    (row,) = [line for line in render_console(report()).splitlines() if line.startswith("production/month")]
    assert ">= 12.50" in row
    assert ">= 100.00" not in row and "100.00" in row


def test_markdown_does_the_same() -> None:
    (row,) = [line for line in render_markdown(report()).splitlines() if "production/month" in line]
    assert "&ge; 12.50" in row and "&ge; 100.00" not in row and "100.00" in row


def test_an_average_per_priced_call_is_not_a_lower_bound() -> None:
    lines = [Line("production", Decimal("12.50"), 10, 2)]
    shown = DailyReport(date=DAY, days=1, environment=None, generated_at=datetime(2026, 11, 23, tzinfo=timezone.utc),
                        total=lines[0], by_environment=lines)  # fmt: skip
    (row,) = [line for line in render_console(shown).splitlines() if line.startswith("production ")]
    assert ">= 12.50" in row  # 8 priced calls: 1.5625 each, a known figure
    assert "1.5625" in row and ">= 1.5625" not in row
    (md,) = [line for line in render_markdown(shown).splitlines() if line.startswith("| production |")]
    assert "&ge; 12.50" in md and "&ge; 1.5625" not in md
