"""The daily report as JSON: `report_dict(report)`, in the seeds' shape plus this project's sections.

The seeds' part: `date`, `summary.total_cost`, `summary.by_environment` and `summary.by_service` (name: cost),
`top_operations[]` (`operation_type`, `cost`, `count`, `avg_cost`) and `anomalies[]` (`type`, `environment`, ...,
`description`). Beside them: the period (`start_date`, `end_date`, `days`), the calls of unknown cost everywhere
(`unknown_cost_calls`), `by_environment[]`, `by_service[]`, `by_model[]`, `by_team[]`, `by_job[]` (with counts
and averages), `daily[]` (spend per day and environment, the 7 trailing days included), `budgets[]`, `savings[]`,
`unknown_cost[]` and where the figures come from (`ledger`).

Amounts are exact decimal strings with at least cents (`"8.00"`, `"0.00027"`), never floats; ratios and factors
likewise, without trailing zeros (`"4"`, `"0.4"`). An amount is `null` when none of its calls has a
known cost, and is a lower bound when `unknown_cost_calls` > 0 (`lower_bound: true`); never $0 for an unknown cost.
Averages are a division: exact when it ends, else rounded half-even to 12 decimal places. The document validates
against `daily_report.schema.json` (beside this module; `SCHEMA_PATH`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from importlib import resources
from typing import Any

from otel_ai_cost.contract import CURRENCY
from otel_ai_cost.ledger.report import format_amount
from otel_ai_cost.reports.anomalies import divide
from otel_ai_cost.reports.daily import average_of, shown_amount
from otel_ai_cost.reports.model import Anomaly, BudgetBurn, DailyReport, DaySpend, Line, Saving, UnknownCost

__all__ = ["SCHEMA_ID", "SCHEMA_VERSION", "anomaly_dict", "load_schema", "render_json", "report_dict"]

SCHEMA_VERSION = 1
SCHEMA_ID = "https://otel-ai-cost.dev/schemas/daily-report/1.json"


def money(value: Decimal | None) -> str | None:
    """An amount as an exact decimal string with at least cents, never in exponent form: `8.00`, `0.0000001`."""
    return None if value is None else format_amount(value)


def number(value: Decimal | None) -> str | None:
    """A ratio or factor as an exact decimal string without trailing zeros: `4`, `0.4`, `2.999`."""
    if value is None:
        return None
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def load_schema() -> dict[str, Any]:
    """The JSON Schema of `report_dict`'s documents (`daily_report.schema.json`)."""
    text = resources.files("otel_ai_cost.reports").joinpath("daily_report.schema.json").read_text("utf-8")
    return json.loads(text)


def render_json(report: DailyReport) -> str:
    """`report_dict(report)` as indented JSON text."""
    return json.dumps(report_dict(report), indent=2, ensure_ascii=False) + "\n"


def report_dict(report: DailyReport) -> dict[str, Any]:
    """The report as a JSON-ready dict (see the module documentation)."""
    extra = dict(report.extra)
    start = extra.pop("start_date", None) or report.date
    end = extra.pop("end_date", None) or report.date
    total = report.total
    return {
        "schema_version": SCHEMA_VERSION,
        "date": report.date.isoformat(),
        "start_date": _day(start),
        "end_date": _day(end),
        "days": report.days,
        "environment": report.environment,
        "generated_at": _time(report.generated_at),
        "currency": CURRENCY,
        "ledger": report.ledger,
        "summary": {
            "total_cost": money(shown_amount(total)),
            "calls": total.calls,
            "unknown_cost_calls": total.unknown_cost_calls,
            "lower_bound": total.unknown_cost_calls > 0,
            "by_environment": {line.name: money(shown_amount(line)) for line in report.by_environment},
            "by_service": {line.name: money(shown_amount(line)) for line in report.by_service},
        },
        "top_operations": [_operation(line) for line in report.top_operations],
        "anomalies": [anomaly_dict(anomaly) for anomaly in report.anomalies],
        "by_environment": [_line(line) for line in report.by_environment],
        "by_service": [_line(line) for line in report.by_service],
        "by_model": [_line(line) for line in report.by_model],
        "by_team": [_line(line) for line in report.by_team],
        "by_job": [_line(line) for line in report.by_job],
        "daily": [_day_spend(spend) for spend in report.daily],
        "budgets": [_budget(burn) for burn in report.budgets],
        "savings": [_saving(saving) for saving in report.savings],
        "unknown_cost": [_unknown(item) for item in report.unknown],
        "unattributed_call_sites": [_line(line) for line in report.unattributed_sites],
        "extra": {key: _plain(value) for key, value in extra.items()},
    }


def _day(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def _time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return number(value)
    if isinstance(value, datetime):
        return _time(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _line(line: Line) -> dict[str, Any]:
    return {
        "name": line.name,
        "cost": money(shown_amount(line)),
        "count": line.calls,
        "avg_cost": money(average_of(line)),
        "unknown_cost_calls": line.unknown_cost_calls,
        "lower_bound": line.unknown_cost_calls > 0,
    }


def _operation(line: Line) -> dict[str, Any]:
    out = _line(line)
    return {"operation_type": out.pop("name"), **out}


def anomaly_dict(anomaly: Anomaly) -> dict[str, Any]:
    """One anomaly in the seeds' shape (`type`, `environment`, `description`) with its day, subject and figures;
    shared with the ledger service's `/v1/usage?anomalies=true`."""
    subject = dict(anomaly.subject)
    out: dict[str, Any] = {"type": anomaly.kind, "day": anomaly.day.isoformat()}
    out["environment"] = subject.pop("environment", None)
    if "provider" in subject:
        out["service"] = subject.pop("provider")  # the seeds' `service` is the provider
    for key in ("operation_type", "model"):
        if key in subject:
            out[key] = subject.pop(key)
    out.update(subject)
    out["description"] = anomaly.message
    out["amount"] = money(anomaly.amount)
    out["baseline"] = money(anomaly.baseline)
    out["factor"] = number(anomaly.factor)
    return out


def _day_spend(spend: DaySpend) -> dict[str, Any]:
    shown = None if spend.calls and spend.unknown_cost_calls >= spend.calls else spend.amount
    return {
        "day": spend.day.isoformat(),
        "environment": spend.environment,
        "cost": money(shown),
        "count": spend.calls,
        "unknown_cost_calls": spend.unknown_cost_calls,
    }


def _budget(burn: BudgetBurn) -> dict[str, Any]:
    return {
        "name": burn.name,
        "period": burn.period,
        "limit": money(burn.limit),
        "spent": money(burn.spent),
        "ratio": number(divide(burn.spent, burn.limit)) if burn.limit > 0 else None,
        "unknown_cost_calls": burn.unknown_cost_calls,
        "lower_bound": burn.unknown_cost_calls > 0,
        "points": [{"day": day.isoformat(), "spent": money(spent)} for day, spent in burn.points],
    }


def _saving(saving: Saving) -> dict[str, Any]:
    return {
        "type": saving.kind,
        "amount": money(saving.amount),
        "estimate": saving.estimate,
        "subject": dict(saving.subject),
        "description": saving.message,
    }


def _unknown(item: UnknownCost) -> dict[str, Any]:
    return {"provider": item.provider, "model": item.model, "calls": item.calls, "reason": item.reason}
