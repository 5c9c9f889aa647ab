"""The Prometheus rule file generated from the budgets (`otel-ai-cost budgets render`).

One rule group, so each evaluation computes budget -> spend -> alerts in order (groups run independently):

- `ai_cost:budget_USD{budget, environment, period, scope[, provider|team|operation_type]}`: each budget's amount;
- `ai_cost:budget_spend_USD{...}`: its exact period-to-date spend, from the ledger service's gauges (the single
  writer; never summed from short-lived processes' counters): `ai_cost_ledger_spend_USD` for an environment,
  `..._by_model_USD` for a provider, `..._by_team_USD` / `..._by_operation_type_USD` for a team / operation type;
- `ai_cost:budget_spend_ratio{...}`: spend / budget (dashboards);
- `ai_cost:budget_forecast_USD{...}` (monthly budgets): `predict_linear` of the spend to the end of the UTC month;
- `AICostBudgetThreshold` per budget and threshold (`severity` warning | critical | exceeded, `threshold` the
  percent): spend >= the threshold's exact amount (Decimal arithmetic here, no float ratio at the boundary);
- `AICostBudgetForecastOverrun` per monthly budget: the forecast passes the budget (quiet in the month's first 6 h,
  when the 6 h regression window straddles the reset);
- `AICostEnvironmentWithoutBudget`: an environment spends this month but has no budget at all.

Calendar days and months are UTC: the ledger's period totals are.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import yaml

from otel_ai_cost import contract
from otel_ai_cost.budgets.config import (
    SCOPE_ENVIRONMENT,
    SCOPE_OPERATION_TYPE,
    SCOPE_PROVIDER,
    SCOPE_TEAM,
    Budget,
    BudgetConfig,
    Threshold,
)
from otel_ai_cost.ledger.service.metrics import PERIOD_DAY, PERIOD_MONTH

__all__ = [
    "ALERT_FORECAST",
    "ALERT_NO_BUDGET",
    "ALERT_THRESHOLD",
    "GROUP_NAME",
    "RECORD_BUDGET",
    "RECORD_FORECAST",
    "RECORD_RATIO",
    "RECORD_SPEND",
    "RUNBOOK_BASE",
    "budget_labels",
    "render_rules",
    "spend_expr",
]

GROUP_NAME = "ai-cost-budgets"
RECORD_BUDGET = "ai_cost:budget_USD"
RECORD_SPEND = "ai_cost:budget_spend_USD"
RECORD_RATIO = "ai_cost:budget_spend_ratio"
RECORD_FORECAST = "ai_cost:budget_forecast_USD"
ALERT_THRESHOLD = "AICostBudgetThreshold"
ALERT_FORECAST = "AICostBudgetForecastOverrun"
ALERT_NO_BUDGET = "AICostEnvironmentWithoutBudget"
RUNBOOK_BASE = "docs/operations.md"  # anchors: the alert name in lower case (a `### AlertName` heading)

LABEL_BUDGET = "budget"
LABEL_SCOPE = "scope"
LABEL_SEVERITY = "severity"
LABEL_THRESHOLD = "threshold"
FORECAST_WINDOW = "6h"
FORECAST_QUIET_HOURS = 6
FORECAST_FOR = "30m"
NO_BUDGET_FOR = "15m"

# The ledger gauge that holds each scope's spend, and the label of its scope value.
_SCOPE_GAUGES: dict[str, tuple[contract.PrometheusMetric, str | None]] = {
    SCOPE_ENVIRONMENT: (contract.LEDGER_SPEND, None),
    SCOPE_PROVIDER: (contract.LEDGER_SPEND_BY_MODEL, "provider"),
    SCOPE_TEAM: (contract.LEDGER_SPEND_BY_TEAM, "team"),
    SCOPE_OPERATION_TYPE: (contract.LEDGER_SPEND_BY_OPERATION_TYPE, "operation_type"),
}
_PERIOD_WORD = {PERIOD_DAY: "daily", PERIOD_MONTH: "monthly"}
# Seconds left in the current UTC month at evaluation time.
_SECONDS_TO_MONTH_END = "scalar((days_in_month() - day_of_month() + 1) * 86400 - hour() * 3600 - minute() * 60)"


def label(metric: contract.PrometheusMetric, name: str) -> str:
    """A label name of a ledger metric, checked against the contract (so a renamed label fails here)."""
    if name not in metric.labels:
        raise KeyError(f"{metric.name} has no label {name!r} (labels: {', '.join(metric.labels)})")
    return name


ENVIRONMENT = label(contract.LEDGER_SPEND, "environment")
PERIOD = label(contract.LEDGER_SPEND, "period")


def spend_expr(budget: Budget) -> str:
    """PromQL for a budget's exact period-to-date spend (also what `budgets check --prometheus` asks)."""
    metric, scope_label = _SCOPE_GAUGES[budget.scope]
    matchers = [f'{label(metric, ENVIRONMENT)}="{budget.environment}"', f'{label(metric, PERIOD)}="{budget.period}"']
    if scope_label is not None:
        matchers.append(f'{label(metric, scope_label)}="{budget.scope_value}"')
    return f"sum({metric.name}{{{','.join(matchers)}}})"


def budget_labels(budget: Budget) -> dict[str, str]:
    """The labels every series and alert of one budget carries."""
    labels = {LABEL_BUDGET: budget.id, ENVIRONMENT: budget.environment, PERIOD: budget.period}
    labels[LABEL_SCOPE] = budget.scope
    if budget.scope != SCOPE_ENVIRONMENT:
        labels[_SCOPE_GAUGES[budget.scope][1] or budget.scope] = budget.scope_value or ""
    return labels


def render_rules(config: BudgetConfig, *, source: str = "config/budgets.yaml", runbook_base: str = RUNBOOK_BASE) -> str:
    """The rule file's text (deterministic: the committed `alerts/budgets.rules.yml` is compared to it)."""
    rules = [*_records(config), *_alerts(config, runbook_base)]
    document = {"groups": [{"name": GROUP_NAME, "rules": rules}]}
    header = (
        f"# GENERATED by `otel-ai-cost budgets render {source}`: do not edit; change the budgets file and render.\n"
        "# Spend: the ledger service's exact period-to-date gauges (UTC days and months).\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, width=120, allow_unicode=True)


def _records(config: BudgetConfig) -> Iterator[dict[str, Any]]:
    for budget in config.budgets:
        yield {"record": RECORD_BUDGET, "expr": f"vector({_number(budget.amount)})", "labels": budget_labels(budget)}
    for budget in config.budgets:
        yield {"record": RECORD_SPEND, "expr": spend_expr(budget), "labels": budget_labels(budget)}
    yield {"record": RECORD_RATIO, "expr": f"{RECORD_SPEND} / {RECORD_BUDGET}"}
    if any(budget.period == PERIOD_MONTH for budget in config.budgets):
        yield {
            "record": RECORD_FORECAST,
            "expr": f'predict_linear({RECORD_SPEND}{{{PERIOD}="{PERIOD_MONTH}"}}[{FORECAST_WINDOW}], '
            f"{_SECONDS_TO_MONTH_END})",
        }


def _alerts(config: BudgetConfig, runbook_base: str) -> Iterator[dict[str, Any]]:
    for budget in config.budgets:
        for threshold in config.thresholds:
            yield _threshold_alert(budget, threshold, runbook_base)
    for budget in config.budgets:
        if budget.period == PERIOD_MONTH:
            yield _forecast_alert(budget, runbook_base)
    spending = f'sum by ({ENVIRONMENT}) ({contract.LEDGER_SPEND.name}{{{PERIOD}="{PERIOD_MONTH}"}}) > 0'
    yield {
        "alert": ALERT_NO_BUDGET,
        "expr": f"{spending} unless on({ENVIRONMENT}) {RECORD_BUDGET}",
        "for": NO_BUDGET_FOR,
        "labels": {LABEL_SEVERITY: "warning"},
        "annotations": {
            "summary": f"AI spend in environment {{{{ $labels.{ENVIRONMENT} }}}} has no budget",
            "description": f'Environment {{{{ $labels.{ENVIRONMENT} }}}} has spent {{{{ $value | printf "%.2f" }}}} '
            "USD this UTC month but no daily or monthly budget covers it, so no budget alert can fire for it. "
            "Add it to the budgets file and render the rules.",
            "runbook_url": _runbook(runbook_base, ALERT_NO_BUDGET),
        },
    }


def _threshold_alert(budget: Budget, threshold: Threshold, runbook_base: str) -> dict[str, Any]:
    limit = budget.amount * threshold.percent / 100
    what = _describe(budget)
    return {
        "alert": ALERT_THRESHOLD,
        "expr": f'{RECORD_SPEND}{{{LABEL_BUDGET}="{budget.id}"}} >= {_number(limit)}',
        "labels": {
            **budget_labels(budget),
            LABEL_SEVERITY: threshold.severity,
            LABEL_THRESHOLD: _number(threshold.percent),
        },
        "annotations": {
            "summary": f"AI spend reached {_number(threshold.percent)}% of the {what} budget",
            "description": f'{{{{ $value | printf "%.2f" }}}} USD spent of the {what} budget of '
            f"{_money(budget.amount)} USD (threshold {_number(threshold.percent)}% = {_money(limit)} USD).",
            "runbook_url": _runbook(runbook_base, ALERT_THRESHOLD),
        },
    }


def _forecast_alert(budget: Budget, runbook_base: str) -> dict[str, Any]:
    quiet = f"and on() (day_of_month() > 1 or hour() >= {FORECAST_QUIET_HOURS})"
    what = _describe(budget)
    return {
        "alert": ALERT_FORECAST,
        "expr": f'{RECORD_FORECAST}{{{LABEL_BUDGET}="{budget.id}"}} > {_number(budget.amount)} {quiet}',
        "for": FORECAST_FOR,
        "labels": {**budget_labels(budget), LABEL_SEVERITY: "warning"},
        "annotations": {
            "summary": f"AI spend is on course to exceed the {what} budget by the end of the month",
            "description": f'At the last {FORECAST_WINDOW}\'s pace, {{{{ $value | printf "%.2f" }}}} USD will be spent '
            f"by the end of the UTC month, over the {what} budget of {_money(budget.amount)} USD.",
            "runbook_url": _runbook(runbook_base, ALERT_FORECAST),
        },
    }


def _describe(budget: Budget) -> str:
    scope = "" if budget.scope == SCOPE_ENVIRONMENT else f" {budget.scope.replace('_', ' ')} {budget.scope_value}"
    return f"{_PERIOD_WORD[budget.period]} {budget.environment}{scope}"


def _runbook(base: str, alert: str) -> str:
    return f"{base}#{alert.lower()}"


def _number(value: Decimal) -> str:
    """Exact decimal text without exponent or trailing zeros (`80`, `0.95`, `12.5`)."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _money(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")) if value == value.quantize(Decimal("0.01")) else value, "f")
