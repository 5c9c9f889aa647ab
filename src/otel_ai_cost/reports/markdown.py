"""The daily report as Markdown: `render_markdown(report)`, for a GitHub step summary, a pull request comment or
Slack (`otel-ai-cost report daily --format markdown`).

The same sections and figures as the console (`reports.console`): amounts exact and padded to one precision per
column (`reports.tables.money_cells`), right-aligned, `>= ` for a lower bound, `unknown` when no call of a group has
a known cost (never $0), `(none)` for an empty attribution. Table cells are escaped (`|`, newlines, Markdown
markup): model and team names come from telemetry.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from otel_ai_cost.ledger.report import format_amount
from otel_ai_cost.reports.anomalies import divide
from otel_ai_cost.reports.console import ANOMALY_LABELS, REASONS, SAVING_BASIS, SAVING_LABELS, period_text, scope_text
from otel_ai_cost.reports.daily import average_of, shown_amount
from otel_ai_cost.reports.model import NONE, DailyReport, Line
from otel_ai_cost.reports.tables import HEADERS, money_cells

__all__ = ["render_markdown"]

_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#~])")


def _cell(text: object) -> str:
    value = str(text).replace("\r", " ").replace("\n", " ")
    return _SPECIAL.sub(r"\\\1", value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def _lines(title: str, key: str, lines: Sequence[Line], total: Line | None) -> list[str]:
    if not lines:
        return [f"**{title}**: no calls", ""]
    shown = [*lines, *([total] if total is not None and len(lines) > 1 else [])]
    bounds = [line.unknown_cost_calls > 0 for line in shown]
    amounts = money_cells([shown_amount(line) for line in shown], bounds)
    averages = money_cells([average_of(line) for line in shown])
    rows = []
    for index, line in enumerate(shown):
        is_total = total is not None and index == len(lines)
        name = "**total**" if is_total else _cell(line.shown_name)
        rows.append([name, f"{line.calls:,}", amounts[index], averages[index], f"{line.unknown_cost_calls:,}"])
    headers = [HEADERS.get(key, key), HEADERS["calls"], HEADERS["amount"], HEADERS["average"],
               HEADERS["unknown_cost_calls"]]  # fmt: skip
    return [f"**{title}**", "", *_table(headers, rows, [False, True, True, True, True]), ""]


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
    limits = money_cells([burn.limit for burn in report.budgets])
    spent = money_cells(
        [burn.spent for burn in report.budgets], [burn.unknown_cost_calls > 0 for burn in report.budgets]
    )
    rows = []
    for index, burn in enumerate(report.budgets):
        ratio: Decimal | None = divide(burn.spent, burn.limit) if burn.limit > 0 else None
        percent = "" if ratio is None else f"{ratio * 100:.1f}%"
        rows.append([_cell(burn.name), burn.period, limits[index], spent[index], percent])
    headers = ["budget", "period", HEADERS["limit"], HEADERS["spent"], HEADERS["percent"]]
    return [f"**Budgets** (at {report.date})", "", *_table(headers, rows, [False, False, True, True, True]), ""]


def _anomalies(report: DailyReport) -> list[str]:
    if not report.anomalies:
        return ["**Anomalies**: none (each day against its 7 trailing days)", ""]
    items = [
        f"- {anomaly.day} **{ANOMALY_LABELS.get(anomaly.kind, anomaly.kind)}**: {_cell(anomaly.message)}"
        for anomaly in report.anomalies
    ]
    return ["**Anomalies**", "", *items, ""]


def _savings(report: DailyReport) -> list[str]:
    if not report.savings:
        return ["**Savings**: none found", ""]
    amounts = money_cells([saving.amount for saving in report.savings])
    rows = [
        [
            SAVING_LABELS.get(saving.kind, saving.kind),
            _cell(saving.subject.get("model", "") or NONE),
            amounts[index],
            SAVING_BASIS.get(saving.kind, "estimate" if saving.estimate else "exact"),
            _cell(saving.message),
        ]
        for index, saving in enumerate(report.savings)
    ]
    headers = ["saving", "model", "saved USD", "basis", "description"]
    title = "**Savings** over the period (catalog prices; estimates compare prices only, they are not advice)"
    return [title, "", *_table(headers, rows, [False, False, True, False, False]), ""]


def _unknown(report: DailyReport) -> list[str]:
    if not report.unknown:
        return []
    rows: list[list[Any]] = [
        [_cell(item.provider), _cell(item.model or NONE), f"{item.calls:,}", REASONS.get(item.reason, item.reason)]
        for item in report.unknown
    ]
    headers = ["provider", "model", HEADERS["calls"], "reason"]
    title = "**Cost unknown** (never counted as $0: the totals above are lower bounds)"
    return [title, "", *_table(headers, rows, [False, False, True, False]), ""]
