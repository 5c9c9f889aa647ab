"""Budgets: burn per budget (period-to-date spend / budget) and the forecast to month end.

Everything here reads the budget recording rules (`budget_rules`), which take the spend from the ledger's exact
period-to-date gauges; the ledger's own health is shown too, since the budgets depend on it.
"""

from __future__ import annotations

from typing import Any

from otel_ai_cost import contract
from otel_ai_cost.dashboards import budget_rules
from otel_ai_cost.dashboards import panels as p
from otel_ai_cost.dashboards import promql as q
from otel_ai_cost.dashboards.budget_rules import DEFAULT, LEGEND, BudgetRuleNames, select
from otel_ai_cost.dashboards.dashboard import dashboard
from otel_ai_cost.dashboards.layout import Grid
from otel_ai_cost.dashboards.variables import filter_variables

UID = "ai-cost-budgets"
USD = "currencyUSD"
BURN_THRESHOLDS: list[tuple[float | None, str]] = [(None, "green"), (0.8, "orange"), (0.95, "red"), (1.0, "dark-red")]

LEDGER_BY_MODEL = q.ledger(contract.LEDGER_SPEND_BY_MODEL)
LEDGER_CALLS = q.ledger(contract.LEDGER_CALLS)
LEDGER_STORE_UP = q.ledger(contract.LEDGER_STORE_UP)
LEDGER_WRITE_FAILURES = q.ledger(contract.LEDGER_WRITE_FAILURES)


def forecast_vs_budget(rules: BudgetRuleNames) -> str:
    """Each monthly budget's month-end forecast as a share of the budget."""
    return f"{select(rules.forecast, 'month')} / on (budget) {select(rules.budget, 'month')}"


def build(rules: BudgetRuleNames = DEFAULT) -> dict[str, Any]:
    grid = Grid()
    grid.row("Burn per budget (period-to-date spend / budget)")
    for period, label in (("day", "today"), ("month", "this month")):
        grid.add(
            p.bargauge(
                f"Burn {label}",
                [p.target(budget_rules.burn(rules, period), LEGEND, instant=True)],
                unit="percentunit",
                thresholds=BURN_THRESHOLDS,
                max_value=1,
                description="Alerts fire at 80% (warning), 95% (critical) and 100% (exceeded) by default.",
            ),
            w=12,
            h=8,
        )
    grid.add(
        p.timeseries(
            "Burn over time",
            [p.target(budget_rules.burn(rules), LEGEND)],
            unit="percentunit",
            description="Resets at 00:00 UTC (daily budgets) and on the 1st (monthly budgets).",
        ),
        w=24,
        h=8,
    )
    grid.row("Forecast to month end (monthly budgets)")
    grid.add(
        p.timeseries(
            "Month to date, forecast and budget",
            [
                p.target(select(rules.spend, "month"), f"spent {LEGEND}"),
                p.target(select(rules.forecast, "month"), f"forecast {LEGEND}"),
                p.target(select(rules.budget, "month"), f"budget {LEGEND}"),
            ],
            unit=USD,
            description="Forecast: predict_linear over the last 6 h of month-to-date spend, to the end of the UTC "
            "month. In a month's first hours the window straddles the reset: read it with care.",
        ),
        w=16,
        h=9,
    )
    grid.add(
        p.bargauge(
            "Forecast / budget at month end",
            [p.target(forecast_vs_budget(rules), LEGEND, instant=True)],
            unit="percentunit",
            thresholds=BURN_THRESHOLDS,
            max_value=1.5,
        ),
        w=8,
        h=9,
    )
    grid.row("Budgets and the ledger they are computed from")
    grid.add(
        p.table(
            "Budgets",
            [
                p.target(select(rules.budget), instant=True, table=True),
                p.target(select(rules.spend), instant=True, table=True),
                p.target(budget_rules.burn(rules), instant=True, table=True),
            ],
            unit=USD,
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True, "__name__": True},
                        "renameByName": {"Value #A": "budget", "Value #B": "spent", "Value #C": "burn"},
                    },
                },
            ],
            overrides=[
                {
                    "matcher": {"id": "byName", "options": "burn"},
                    "properties": [
                        {"id": "unit", "value": "percentunit"},
                        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                        {
                            "id": "thresholds",
                            "value": {
                                "mode": "absolute",
                                "steps": [{"value": v, "color": c} for v, c in BURN_THRESHOLDS],
                            },
                        },
                    ],
                }
            ],
        ),
        w=12,
        h=9,
    )
    grid.add(
        p.stat(
            "Ledger store up",
            [p.target(LEDGER_STORE_UP.select(), "store", instant=True)],
            thresholds=[(None, "red"), (1, "green")],
            description="0: the ledger could not read its totals; spend gauges (and burn) are absent, not zero.",
        ),
        w=4,
        h=9,
    )
    grid.add(
        p.stat(
            "Ledger write failures (selected range)",
            [p.target(f"{q.sum_increase(LEDGER_WRITE_FAILURES.select())} or vector(0)", "failures", instant=True)],
            thresholds=[(None, "green"), (1, "red")],
            description="Store writes that failed (the collector retries them); spend may lag until they succeed.",
        ),
        w=4,
        h=9,
    )
    grid.add(
        p.stat(
            "Calls recorded today",
            [
                p.target(
                    f"sum by (environment) ({LEDGER_CALLS.select(q.period('day'))})", "{{environment}}", instant=True
                )
            ],
        ),
        w=4,
        h=9,
    )
    return dashboard(
        UID,
        "AI cost: budgets",
        grid.panels,
        filter_variables(LEDGER_BY_MODEL),
        description="Burn and month-end forecast per budget (config/budgets.yaml), from the ledger's exact totals.",
        time_from="now-7d",
    )
