"""The daily report as Markdown: `render_markdown(report)`, for a GitHub step summary, a pull request comment or
Slack (`otel-ai-cost report daily --format markdown`).

The same sections and figures as the console (`reports.console`): amounts exact and padded to one precision per
column (`reports.tables.money_cells`), right-aligned, `>= ` for a lower bound, `unknown` when no call of a group has
a known cost (never $0), `(none)` for an empty attribution. Table cells are escaped (`|`, newlines, Markdown
markup): model and team names come from telemetry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from otel_ai_cost.ledger.report import format_amount
from otel_ai_cost.reports.console import (
    ANOMALY_LABELS,
    BUDGET_COLUMNS,
    REASONS,
    SAVING_BASIS,
    SAVING_LABELS,
    budget_rows,
    period_text,
    scope_text,
)
from otel_ai_cost.reports.daily import average_of, shown_amount
from otel_ai_cost.reports.markdown_tables import escape, markdown_table
from otel_ai_cost.reports.model import NONE, DailyReport, Line
from otel_ai_cost.reports.tables import Column

__all__ = ["render_markdown"]


def _lines(title: str, key: str, lines: Sequence[Line], total: Line | None) -> list[str]:
    if not lines:
        return [f"**{title}**: no calls", ""]
    columns = (Column(key), Column("calls", "count"), Column("amount", "money"),
               Column("average", "money", lower_bound=False), Column("unknown_cost_calls", "count"))  # fmt: skip

    def row(line: Line, name: str) -> dict[str, Any]:
        return {key: name, "calls": line.calls, "amount": shown_amount(line), "average": average_of(line),
                "unknown_cost_calls": line.unknown_cost_calls}  # fmt: skip

    rows = [row(line, line.name) for line in lines]
    last = row(total, "total") if total is not None and len(lines) > 1 else None
    return [f"**{title}**", "", markdown_table(columns, rows, total=last), ""]


def render_markdown(report: DailyReport) -> str:
    """The report as GitHub-flavoured Markdown."""
    total = report.total
    amount = shown_amount(total)
    out = [f"## AI usage report {period_text(report)}", "", f"{scope_text(report).capitalize()} · ledger "
           f"`{report.ledger or NONE}`", ""]  # fmt: skip
    if total.calls == 0:
        out.append("No calls recorded in this period.")
    elif amount is None:
        out.append(f"**Total: cost unknown** for all {total.calls:,} calls (none has a known cost).")
    elif total.unknown_cost_calls:
        out.append(
            f"**Total: at least ${format_amount(amount)}** over {total.calls:,} calls; "
            f"{total.unknown_cost_calls:,} call(s) of cost unknown are not in it (a lower bound)."
        )
    else:
        out.append(f"**Total: ${format_amount(amount)}** over {total.calls:,} calls.")
    out.append("")
    for title, key, lines in report.sections():
        out += _lines(title, key, lines, total)
    out += _budgets(report) + _anomalies(report) + _savings(report) + _unknown(report)
    return "\n".join(out).rstrip("\n") + "\n"


def _budgets(report: DailyReport) -> list[str]:
    if not report.budgets:
        return []
    return [f"**Budgets** (at {report.date})", "", markdown_table(BUDGET_COLUMNS, budget_rows(report)), ""]


def _anomalies(report: DailyReport) -> list[str]:
    if not report.anomalies:
        return ["**Anomalies**: none (each day against its 7 trailing days)", ""]
    items = [
        f"- {anomaly.day} **{ANOMALY_LABELS.get(anomaly.kind, anomaly.kind)}**: {escape(anomaly.message)}"
        for anomaly in report.anomalies
    ]
    return ["**Anomalies**", "", *items, ""]


def _savings(report: DailyReport) -> list[str]:
    if not report.savings:
        return ["**Savings**: none found", ""]
    columns = (Column("saving", header="saving"), Column("model"), Column("saved", "money", "saved USD", False),
               Column("basis", header="basis"), Column("description", header="description"))  # fmt: skip
    rows = [
        {
            "saving": SAVING_LABELS.get(saving.kind, saving.kind),
            "model": saving.subject.get("model", ""),
            "saved": saving.amount,
            "basis": SAVING_BASIS.get(saving.kind, "estimate" if saving.estimate else "exact"),
            "description": saving.message,
        }
        for saving in report.savings
    ]
    title = "**Savings** over the period (catalog prices; estimates compare prices only, they are not advice)"
    return [title, "", markdown_table(columns, rows), ""]


def _unknown(report: DailyReport) -> list[str]:
    if not report.unknown:
        return []
    columns = (Column("provider"), Column("model"), Column("calls", "count"), Column("reason", header="reason"))
    rows = [{"provider": item.provider, "model": item.model, "calls": item.calls,
             "reason": REASONS.get(item.reason, item.reason)} for item in report.unknown]  # fmt: skip
    title = "**Cost unknown** (never counted as $0: the totals above are lower bounds)"
    return [title, "", markdown_table(columns, rows), ""]
