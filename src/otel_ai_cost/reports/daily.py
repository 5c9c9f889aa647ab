"""The daily report: `build_daily_report(store, day=...)` fills a `reports.model.DailyReport` from the ledger.

```python
from datetime import date
from otel_ai_cost.ledger.open_store import open_store
from otel_ai_cost.reports.daily import build_daily_report
from otel_ai_cost.reports.console import render_console

store = open_store("sqlite:///var/ledger.db", create=False)
print(render_console(build_daily_report(store, day=date(2026, 11, 22), days=7, environment="cicd")))
```

Every figure comes from the store's aggregates (SQL GROUP BY, or DynamoDB's rollups), never from a loop over the
records, so a report over a million records costs a handful of queries:

1. the report's days and the 7 before them, per (day, environment, provider, operation type, model): the summary,
   by environment, by service (provider), top operations, by model, spend per day (`daily`: the report's days and
   the 7 trailing days, every environment on every day, $0 where it spent nothing), the anomalies
   (`reports.anomalies`) and the calls of unknown cost;
2. the report's days per team, and per job;
3. the report's days per (day, provider, model, operation type, pricing tier): the savings (`reports.savings`);
4. whether the ledger has any call in the `LOOKBACK_DAYS` (28) days before those, so that nothing looks "new" on
   a ledger's first day (a bounded read: a scope quiet for longer starts afresh);
5. with a budgets file, per budget, its period's spend per day (`budgets.check` evaluates the budget itself).

Amounts are exact. A figure that leaves out calls of unknown cost says so with `unknown_cost_calls` > 0: it is a
lower bound, never a total with those calls at $0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from otel_ai_cost.budgets.check import evaluate, ledger_spend
from otel_ai_cost.budgets.config import (
    SCOPE_OPERATION_TYPE,
    SCOPE_PROVIDER,
    SCOPE_TEAM,
    Budget,
    BudgetConfig,
    load_budgets,
)
from otel_ai_cost.contract import UNATTRIBUTED
from otel_ai_cost.ledger.service.metrics import PERIOD_DAY
from otel_ai_cost.ledger.store import EXACT_SUMS, AggregateRow, LedgerStore, UsageQuery, sum_rows
from otel_ai_cost.pricing.catalog import PriceCatalog, default_catalog
from otel_ai_cost.reports import anomalies as anomaly_rules
from otel_ai_cost.reports import savings as saving_rules
from otel_ai_cost.reports.anomalies import BASELINE_DAYS, DEFAULT_FACTOR, divide
from otel_ai_cost.reports.model import Anomaly, BudgetBurn, DailyReport, DaySpend, Line, UnknownCost

__all__ = [
    "LOOKBACK_DAYS",
    "MAX_DAYS",
    "REASON_PARTIAL_OR_NO_USAGE",
    "REASON_UNPRICED",
    "AggregateReader",
    "average_of",
    "build_daily_report",
    "calls_before",
    "describe_store",
    "report_days",
    "shown_amount",
    "store_anomalies",
]

MAX_DAYS = 366  # a report covers at most a year of days
TOP_UNATTRIBUTED_SITES = 10  # call sites listed in "Top unattributed call sites"
LOOKBACK_DAYS = 28  # how far before the trailing days a call makes the ledger "not new" (see the anomalies)
REASON_UNPRICED = "unpriced"  # usage known, no price for the model
# A stream closed before its usage arrived, a priced part of a stream, an answer without usage: the aggregates
# count these together (`ledger.unknown_cost`), so the report cannot tell them apart.
REASON_PARTIAL_OR_NO_USAGE = "partial_or_no_usage"
_MAIN_GROUPS = anomaly_rules.GROUP_BY  # (day, environment, provider, operation_type, model)
_BUDGET_PERIODS = {"day": "daily", "month": "monthly"}


def report_days(day: date, days: int = 1) -> list[date]:
    """The report's UTC days, oldest first: `days` days ending `day`."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be from 1 to {MAX_DAYS}, got {days}")
    return [day - timedelta(days=n) for n in range(days - 1, -1, -1)]


def average_of(line: Line) -> Decimal | None:
    """The line's average cost per priced call as shown (exact when the division ends, else rounded half-even to
    12 decimal places); None when no call has a known cost."""
    priced = line.calls - line.unknown_cost_calls
    return divide(line.amount, Decimal(priced)) if priced > 0 else None


def shown_amount(line: Line) -> Decimal | None:
    """The line's amount as shown: None ("cost unknown") when it has calls and none of a known cost, never $0."""
    return None if line.calls and line.unknown_cost_calls >= line.calls else line.amount


def describe_store(store: LedgerStore) -> str:
    """The ledger as a person reads it (a URL), never a Python repr."""
    path = getattr(store, "path", None)
    if path is not None:
        return f"sqlite://{Path(path).resolve()}" if Path(path).is_absolute() else f"sqlite://{path}"
    table = getattr(store, "table", None)
    if isinstance(table, str):
        region = getattr(store, "region", None)
        return f"dynamodb://{table}" + (f"?region={region}" if isinstance(region, str) and region else "")
    return type(store).__name__


class AggregateReader(Protocol):
    """What the anomalies read: a store, or the ledger service's reader limited to a token's environments."""

    def aggregate(self, query: UsageQuery, group_by: Sequence[str]) -> list[AggregateRow]: ...


def calls_before(reader: AggregateReader, day: date, environment: str | None = None) -> bool:
    """Whether the ledger has a call in the `LOOKBACK_DAYS` days before `day` (one aggregate, no group)."""
    query = UsageQuery(start_day=day - timedelta(days=LOOKBACK_DAYS), end_day=day - timedelta(days=1),
                       environment=environment)  # fmt: skip
    return bool(reader.aggregate(query, []))


def store_anomalies(
    reader: AggregateReader, days: Sequence[date], *, environment: str | None = None, factor: Decimal = DEFAULT_FACTOR
) -> list[Anomaly]:
    """The anomalies of `days` (`reports.anomalies`) read from a store: the days and their 7 trailing days per
    (day, environment, provider, operation type, model), and whether there were calls before them."""
    first, last = min(days), max(days)
    window = anomaly_rules.window_start(first)
    rows = reader.aggregate(UsageQuery(start_day=window, end_day=last, environment=environment), list(_MAIN_GROUPS))
    earlier = calls_before(reader, window, environment)
    return anomaly_rules.find_anomalies(rows, days, factor=factor, earlier_calls=earlier)


def build_daily_report(
    store: LedgerStore,
    *,
    day: date,
    days: int = 1,
    environment: str | None = None,
    budgets: BudgetConfig | str | Path | None = None,
    factor: Decimal = DEFAULT_FACTOR,
    catalog: PriceCatalog | None = None,
    now: datetime | None = None,
    ledger: str | None = None,
) -> DailyReport:
    """The report of the `days` UTC days ending `day`, for `environment` (None: every environment).

    `budgets` is a budgets file (a path, or one `budgets.config.load_budgets` read): each of its budgets (of
    `environment`, when given) is evaluated at `day` as `budgets check` does, with its period's spend per day.
    `factor` flags spikes (`reports.anomalies`); `catalog` prices the savings (default: the process catalog);
    `now` is the report's time of generation (default: now); `ledger` names the ledger in the report (default: the
    store's URL)."""
    if factor <= 0:
        raise ValueError(f"factor must be positive, got {factor}")
    period = report_days(day, days)
    start, end = period[0], period[-1]
    window = anomaly_rules.window_start(start)
    scope = UsageQuery(start_day=start, end_day=end, environment=environment)

    main = store.aggregate(UsageQuery(start_day=window, end_day=end, environment=environment), list(_MAIN_GROUPS))
    in_period = [row for row in main if start.isoformat() <= _value(row, "day") <= end.isoformat()]
    earlier = calls_before(store, window, environment)
    priced_rows = store.aggregate(scope, list(saving_rules.GROUP_BY))
    config = load_budgets(budgets) if isinstance(budgets, (str, Path)) else budgets

    total = _line("total", sum_rows(in_period))
    return DailyReport(
        date=day,
        days=days,
        environment=environment,
        generated_at=(now or datetime.now(timezone.utc)).astimezone(timezone.utc),
        total=total,
        by_environment=_lines(in_period, "environment"),
        by_service=_lines(in_period, "provider"),
        top_operations=_lines(in_period, "operation_type"),
        by_model=_lines(in_period, "model"),
        by_team=_ordered(_line(_value(row, "team"), row) for row in store.aggregate(scope, ["team"])),
        by_job=_ordered(_line(_value(row, "job_id"), row) for row in store.aggregate(scope, ["job_id"])),
        daily=_daily(main, window, end),
        budgets=_budgets(store, config, day, period, environment) if config is not None else (),
        anomalies=anomaly_rules.find_anomalies(main, period, factor=factor, earlier_calls=earlier),
        savings=saving_rules.find_savings(priced_rows, catalog or default_catalog()),
        unknown=_unknown(in_period),
        unattributed_sites=_unattributed_sites(store, scope, in_period),
        ledger=ledger or describe_store(store),
        extra={
            "start_date": start,
            "end_date": end,
            "baseline_days": BASELINE_DAYS,
            "factor": factor,
            "budgets_file": config.path if config is not None else None,
        },
    )


def _unattributed_sites(store: LedgerStore, scope: UsageQuery, in_period: Sequence[AggregateRow]) -> list[Line]:
    """The top `TOP_UNATTRIBUTED_SITES` call sites of the calls recorded `(unattributed)` (strict attribution), by
    cost; read only when the period has such calls (the main aggregate says so)."""
    if not any(_value(row, "operation_type") == UNATTRIBUTED for row in in_period):
        return []
    query = replace(scope, operation_type=UNATTRIBUTED)
    lines = _ordered(_line(_value(row, "call_site"), row) for row in store.aggregate(query, ["call_site"]))
    return lines[:TOP_UNATTRIBUTED_SITES]


def _value(row: AggregateRow, name: str) -> str:
    return dict(row.group).get(name, "")


def _line(name: str, row: AggregateRow) -> Line:
    return Line(name, row.amount, row.calls, row.unknown_cost_calls)


def _ordered(lines: Iterable[Line]) -> list[Line]:
    """Most expensive first; then the most calls of unknown cost (their cost is unknown, not small); then by name."""
    return sorted(lines, key=lambda line: (-line.amount, -line.unknown_cost_calls, -line.calls, line.name))


def _lines(rows: Sequence[AggregateRow], name: str) -> list[Line]:
    groups: dict[str, list[AggregateRow]] = {}
    for row in rows:
        groups.setdefault(_value(row, name), []).append(row)
    return _ordered(_line(value, sum_rows(members)) for value, members in groups.items())


def _daily(rows: Sequence[AggregateRow], first: date, last: date) -> list[DaySpend]:
    """Every environment on every day from `first` to `last` ($0 on a day it made no call), by day then name."""
    sums: dict[tuple[str, str], list[AggregateRow]] = {}
    for row in rows:
        sums.setdefault((_value(row, "day"), _value(row, "environment")), []).append(row)
    environments = sorted({environment for _, environment in sums})
    out = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        for environment in environments:
            summed = sum_rows(sums.get((day.isoformat(), environment), []))
            out.append(DaySpend(day, environment, summed.amount, summed.calls, summed.unknown_cost_calls))
    return out


def _unknown(rows: Sequence[AggregateRow]) -> list[UnknownCost]:
    per_model: dict[tuple[str, str], list[AggregateRow]] = {}
    for row in rows:
        if row.unknown_cost_calls:
            per_model.setdefault((_value(row, "provider"), _value(row, "model")), []).append(row)
    out = []
    for (provider, model), members in sorted(per_model.items()):
        summed = sum_rows(members)
        if summed.unpriced_calls:
            out.append(UnknownCost(provider, model, summed.unpriced_calls, REASON_UNPRICED))
        other = summed.unknown_cost_calls - summed.unpriced_calls
        if other:
            out.append(UnknownCost(provider, model, other, REASON_PARTIAL_OR_NO_USAGE))
    return sorted(out, key=lambda item: (-item.calls, item.provider, item.model, item.reason))


def _budgets(
    store: LedgerStore, config: BudgetConfig, day: date, period: Sequence[date], environment: str | None
) -> list[BudgetBurn]:
    """Each budget evaluated at `day` (`budgets.check`), with its period's cumulative spend per day: for a daily
    budget each report day's own spend, for a monthly one every day of `day`'s month up to `day`."""
    out = []
    for status in evaluate(config, ledger_spend(store, day), environment=environment):
        budget = status.budget
        first = period[0] if budget.period == PERIOD_DAY else day.replace(day=1)
        rows = {_value(row, "day"): row for row in store.aggregate(_budget_query(budget, first, day), ["day"])}
        points: list[tuple[date, Decimal]] = []
        running = Decimal(0)
        unknown = 0
        for offset in range((day - first).days + 1):
            seen = first + timedelta(days=offset)
            row = rows.get(seen.isoformat())
            spent = row.amount if row is not None else Decimal(0)
            if budget.period == PERIOD_DAY:
                running = spent
                unknown = row.unknown_cost_calls if row is not None else 0
            else:
                running = EXACT_SUMS.add(running, spent)
                unknown += row.unknown_cost_calls if row is not None else 0
            points.append((seen, running))
        spent = status.spent if status.spent is not None else running
        period_name = _BUDGET_PERIODS.get(budget.period, budget.period)
        out.append(BudgetBurn(budget.id, period_name, budget.amount, spent, tuple(points), unknown))
    return out


def _budget_query(budget: Budget, first: date, last: date) -> UsageQuery:
    values: dict[str, Any] = {"start_day": first, "end_day": last, "environment": budget.environment}
    if budget.scope == SCOPE_PROVIDER:
        values["provider"] = budget.scope_value
    elif budget.scope == SCOPE_TEAM:
        values["team"] = budget.scope_value
    elif budget.scope == SCOPE_OPERATION_TYPE:
        values["operation_type"] = budget.scope_value
    return UsageQuery(**values)
