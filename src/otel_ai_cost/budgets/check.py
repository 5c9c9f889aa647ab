"""`budgets check`: the budgets evaluated against the ledger (exact totals) or a Prometheus server.

The ledger answers from its running totals (`store.totals`) for environment and provider budgets and from
`store.aggregate` for team and operation-type budgets; Prometheus is asked the same PromQL the rule file records
(`rules.spend_expr`), so the gate and the alerts agree.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from otel_ai_cost.budgets.config import (
    SCOPE_ENVIRONMENT,
    SCOPE_OPERATION_TYPE,
    SCOPE_PROVIDER,
    SCOPE_TEAM,
    SEVERITY_EXCEEDED,
    Budget,
    BudgetConfig,
    Threshold,
)
from otel_ai_cost.budgets.rules import spend_expr
from otel_ai_cost.decimal_text import parse_decimal
from otel_ai_cost.ledger.service.metrics import PERIOD_DAY
from otel_ai_cost.ledger.store import LedgerStore, UsageQuery

__all__ = [
    "STATUS_NO_DATA",
    "STATUS_OK",
    "BudgetStatus",
    "PrometheusError",
    "evaluate",
    "format_table",
    "ledger_spend",
    "prometheus_spend",
]

STATUS_OK = "ok"
_MAX_SPEND = Decimal(10**15)  # USD a Prometheus answer may claim for one budget before it is taken as garbage
STATUS_NO_DATA = "no data"
SpendSource = Callable[[Budget], Decimal | None]


class PrometheusError(RuntimeError):
    """Prometheus could not answer a query."""


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    spent: Decimal | None  # None: the source has no figure (Prometheus without the series)
    threshold: Threshold | None  # the highest threshold reached

    @property
    def status(self) -> str:
        if self.spent is None:
            return STATUS_NO_DATA
        return self.threshold.severity if self.threshold else STATUS_OK

    @property
    def percent(self) -> Decimal | None:
        return None if self.spent is None else self.spent * 100 / self.budget.amount

    @property
    def exceeded(self) -> bool:
        """At or over 100% of the budget (whatever the thresholds are called)."""
        return self.spent is not None and self.spent >= self.budget.amount

    @property
    def alerting(self) -> bool:
        return self.threshold is not None


def evaluate(
    config: BudgetConfig, spend: SpendSource, *, environment: str | None = None, period: str | None = None
) -> list[BudgetStatus]:
    """Every budget (optionally of one environment and/or period) with its spend and the threshold reached."""
    out = []
    for budget in config.budgets:
        if (environment and budget.environment != environment) or (period and budget.period != period):
            continue
        spent = spend(budget)
        reached = None
        if spent is not None:
            for threshold in config.thresholds:
                if spent >= budget.amount * threshold.percent / 100:
                    reached = threshold
        out.append(BudgetStatus(budget, spent, reached))
    return out


def ledger_spend(store: LedgerStore, today: date) -> SpendSource:
    """Exact period-to-date spend from the ledger, for the UTC day or month containing `today`."""

    def spend(budget: Budget) -> Decimal:
        key = today.isoformat() if budget.period == PERIOD_DAY else today.strftime("%Y-%m")
        if budget.scope in (SCOPE_ENVIRONMENT, SCOPE_PROVIDER):
            totals = store.totals(budget.environment, key)
            if budget.scope == SCOPE_ENVIRONMENT:
                return totals.amount
            amounts = (a for (provider, _), a in totals.by_provider_model.items() if provider == budget.scope_value)
            return sum(amounts, Decimal(0))
        start = today if budget.period == PERIOD_DAY else today.replace(day=1)
        query = UsageQuery(
            start_day=start,
            end_day=today,
            environment=budget.environment,
            team=budget.scope_value if budget.scope == SCOPE_TEAM else None,
            operation_type=budget.scope_value if budget.scope == SCOPE_OPERATION_TYPE else None,
        )
        return sum((row.amount for row in store.aggregate(query, [])), Decimal(0))

    return spend


def prometheus_spend(base_url: str, *, timeout_s: float = 10.0) -> SpendSource:
    """Spend from a Prometheus server's `/api/v1/query` (the ledger gauges it scraped); None when no series."""

    def spend(budget: Budget) -> Decimal | None:
        url = f"{base_url.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": spend_expr(budget)})
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                body = json.loads(response.read().decode("utf-8"))
        except (OSError, ValueError) as exc:
            raise PrometheusError(f"cannot query {base_url}: {exc}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"{base_url} answered {body.get('errorType')}: {body.get('error')}")
        result = body.get("data", {}).get("result", [])
        if not result:
            return None
        try:
            text = result[0]["value"][1]
        except (KeyError, IndexError, TypeError) as exc:
            raise PrometheusError(f"{base_url} answered an unexpected result: {result!r}") from exc
        try:  # Prometheus answers NaN and +Inf too: never compared with a budget, never shown as a figure
            return parse_decimal(str(text), maximum=_MAX_SPEND, what="spend")
        except ValueError as exc:
            raise PrometheusError(f"{base_url} answered {text!r} for {budget.id}, which is no amount ({exc})") from exc

    return spend


def format_table(statuses: Iterable[BudgetStatus]) -> str:
    """A plain-text table: budget, spent, amount, percent, status."""
    header = ("BUDGET", "SPENT (USD)", "BUDGET (USD)", "USED", "STATUS")
    rows = [header]
    for s in statuses:
        spent = "-" if s.spent is None else format(s.spent.quantize(Decimal("0.01"), ROUND_HALF_UP), "f")
        percent = "-" if s.percent is None else f"{s.percent.quantize(Decimal('0.1'), ROUND_HALF_UP)}%"
        status = s.status.upper() if s.status == SEVERITY_EXCEEDED else s.status
        rows.append((s.budget.id, spent, format(s.budget.amount, "f"), percent, status))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0]), *(cell.rjust(w) for cell, w in zip(row[1:4], widths[1:4], strict=True))]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    return "\n".join(lines)
