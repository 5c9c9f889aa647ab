"""The daily report on a terminal: `render_console(report)`, tables of `reports.tables` (the header words of every
command, amounts exact and aligned on the decimal point, `(none)` for an empty attribution, a total row).

Sections: the summary, by environment, by service (provider), top operations (calls, cost, average), by model,
team and job, budgets (with a budgets file), anomalies, savings, and the calls of unknown cost. An amount that
leaves out calls of unknown cost is a lower bound (`>= 1.20`) and those calls are counted in the `cost unknown`
column; a group none of whose calls has a known cost shows `unknown`, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timezone
from typing import Any

from otel_ai_cost.ledger.report import format_amount
from otel_ai_cost.reports.anomalies import divide
from otel_ai_cost.reports.daily import REASON_UNPRICED, average_of, shown_amount
from otel_ai_cost.reports.model import NONE, DailyReport, Line
from otel_ai_cost.reports.tables import Column, render, table

__all__ = ["ANOMALY_LABELS", "SAVING_BASIS", "SAVING_LABELS", "period_text", "render_console", "scope_text"]

ANOMALY_LABELS: Mapping[str, str] = {
    "spike": "spike",
    "from_zero": "up from ~$0",
    "new_model": "new model",
    "new_operation_type": "new operation type",
    "unpriced": "unpriced spend",
}
SAVING_LABELS: Mapping[str, str] = {
    "batch_tier": "batch tier",
    "prompt_cache": "prompt cache",
    "cheaper_model": "cheaper model",
}
SAVING_BASIS: Mapping[str, str] = {"batch_tier": "exact", "prompt_cache": "at most", "cheaper_model": "estimate"}
REASONS: Mapping[str, str] = {REASON_UNPRICED: "no price", "partial_or_no_usage": "partial stream or no usage"}
_LINE_COLUMNS = (Column("calls", "count"), Column("amount", "money"), Column("average", "money", lower_bound=False),
                 Column("unknown_cost_calls", "count"))  # fmt: skip


def period_text(report: DailyReport) -> str:
    start = report.extra.get("start_date")
    if report.days == 1 or start is None:
        return report.date.isoformat()
    return f"{start} to {report.date} ({report.days} days)"


def scope_text(report: DailyReport) -> str:
    return "all environments" if report.environment is None else f"environment {report.environment}"


def _row(key: str, line: Line) -> dict[str, Any]:
    return {
        key: line.name,
        "calls": line.calls,
        "amount": shown_amount(line),
        "average": average_of(line),
        "unknown_cost_calls": line.unknown_cost_calls,
    }


def _lines(title: str, key: str, lines: Sequence[Line], total: Line | None) -> Any:
    if not lines:
        return f"{title}: no calls"
    columns = [Column(key), *_LINE_COLUMNS]
    total_row = None
    if total is not None and len(lines) > 1:
        total_row = {**_row(key, total), key: "total"}
    return table(columns, [_row(key, line) for line in lines], title=title, total=total_row)


def render_console(report: DailyReport, *, width: int | None = None) -> str:
    """The report as text for a terminal or a file (no colours)."""
    total = report.total
    generated = report.generated_at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    head = [
        f"AI usage report {period_text(report)}, {scope_text(report)}",
        f"ledger {report.ledger or NONE} · generated {generated}",
        "",
    ]
    amount = shown_amount(total)
    if total.calls == 0:
        summary = "Total: no calls recorded in this period."
    elif amount is None:
        summary = f"Total: cost unknown for all {total.calls:,} calls (none has a known cost)."
    elif total.unknown_cost_calls:
        summary = (
            f"Total: at least ${format_amount(amount)} over {total.calls:,} calls; {total.unknown_cost_calls:,} "
            "call(s) of cost unknown are not in it (a lower bound)."
        )
    else:
        summary = f"Total: ${format_amount(amount)} over {total.calls:,} calls."
    parts: list[Any] = [*head, summary, ""]
    for title, key, lines in report.sections():
        parts += [_lines(title, key, lines, total), ""]
    if report.budgets:
        parts += [_budgets(report), ""]
    parts += [_anomalies(report), "", _savings(report), "", *_unknown(report)]
    return render(*parts, width=width)


# The budgets table, the same in the console and in Markdown. A limit is never a sum of calls: never a lower bound.
BUDGET_COLUMNS = (
    Column("budget", header="budget"),
    Column("period", header="period"),
    Column("limit", "money", lower_bound=False),
    Column("spent", "money"),
    Column("percent", "percent"),
    Column("unknown_cost_calls", "count"),
)


def budget_rows(report: DailyReport) -> list[dict[str, Any]]:
    """One row per budget of the report, keyed by `BUDGET_COLUMNS`."""
    return [
        {
            "budget": burn.name,
            "period": burn.period,
            "limit": burn.limit,
            "spent": burn.spent,
            "percent": divide(burn.spent, burn.limit) if burn.limit > 0 else None,
            "unknown_cost_calls": burn.unknown_cost_calls,
        }
        for burn in report.budgets
    ]


def _budgets(report: DailyReport) -> Any:
    return table(BUDGET_COLUMNS, budget_rows(report), title=f"Budgets (at {report.date})")


def _anomalies(report: DailyReport) -> Any:
    if not report.anomalies:
        return "Anomalies: none (each day against its 7 trailing days)."
    rows = [
        {
            "day": anomaly.day.isoformat(),
            "kind": ANOMALY_LABELS.get(anomaly.kind, anomaly.kind),
            "environment": anomaly.subject.get("environment", ""),
            "message": anomaly.message,
        }
        for anomaly in report.anomalies
    ]
    columns = [Column("day"), Column("kind", header="anomaly"), Column("environment"),
               Column("message", header="description")]  # fmt: skip
    return table(columns, rows, title="Anomalies")


def _savings(report: DailyReport) -> Any:
    if not report.savings:
        return "Savings: none found (batch tier, prompt cache, cheaper model of the same family)."
    rows = [
        {
            "kind": SAVING_LABELS.get(saving.kind, saving.kind),
            "model": saving.subject.get("model", ""),
            "amount": saving.amount,
            "basis": SAVING_BASIS.get(saving.kind, "estimate" if saving.estimate else "exact"),
            "message": saving.message,
        }
        for saving in report.savings
    ]
    columns = [Column("kind", header="saving"), Column("model"), Column("amount", "money", header="saved USD"),
               Column("basis", header="basis"), Column("message", header="description")]  # fmt: skip
    return table(columns, rows, title="Savings over the period (prices of the catalog; estimates are not advice)")


def _unknown(report: DailyReport) -> list[Any]:
    if not report.unknown:
        return ["Cost unknown: none (every call has a known cost)."]
    rows = [
        {"provider": item.provider, "model": item.model, "calls": item.calls, "reason": _reason(item.reason)}
        for item in report.unknown
    ]
    columns = [Column("provider"), Column("model"), Column("calls", "count"), Column("reason", header="reason")]
    note = "These calls are in no amount above, never counted as $0: the amounts that leave them out are lower bounds."
    return [table(columns, rows, title="Cost unknown"), note]


def _reason(reason: str) -> str:
    return REASONS.get(reason, reason)
