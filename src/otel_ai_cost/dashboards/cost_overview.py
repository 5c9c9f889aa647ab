"""Cost overview: period-to-date spend per environment against budget, spend rate, top spenders, unpriced calls."""

from __future__ import annotations

from typing import Any

from otel_ai_cost import contract
from otel_ai_cost.contract import PricingStatus
from otel_ai_cost.dashboards import budget_rules
from otel_ai_cost.dashboards import panels as p
from otel_ai_cost.dashboards import promql as q
from otel_ai_cost.dashboards.budget_rules import DEFAULT, BudgetRuleNames
from otel_ai_cost.dashboards.dashboard import dashboard
from otel_ai_cost.dashboards.layout import Grid
from otel_ai_cost.dashboards.variables import filter_variables

UID = "ai-cost-overview"
USD = "currencyUSD"
BUDGET_THRESHOLDS: list[tuple[float | None, str]] = [(None, "green"), (0.8, "orange"), (0.95, "red"), (1.0, "dark-red")]

SPEND = q.otel(contract.SPEND)
REQUESTS = q.otel(contract.REQUESTS)
LEDGER_SPEND = q.ledger(contract.LEDGER_SPEND)
LEDGER_BY_MODEL = q.ledger(contract.LEDGER_SPEND_BY_MODEL)
LEDGER_UNPRICED = q.ledger(contract.LEDGER_UNPRICED_CALLS)
MODEL_LEGEND = f"{{{{{q.PROVIDER}}}}} / {{{{{q.MODEL}}}}}"


def build(rules: BudgetRuleNames = DEFAULT) -> dict[str, Any]:
    grid = Grid()
    grid.row("Spend against budget (exact, from the ledger; UTC days and months)")
    for period, label in (("day", "today"), ("month", "this month")):
        expr = f"sum by (environment) ({LEDGER_SPEND.select(q.period(period))})"
        grid.add(
            p.stat(
                f"Spend {label}",
                [p.target(expr, "{{environment}}", instant=True)],
                unit=USD,
                decimals=2,
                description=f"Exact spend recorded by the ledger {label} (UTC), per environment.",
            ),
            w=6,
            h=5,
        )
    for period, label in (("day", "daily"), ("month", "monthly")):
        grid.add(
            p.bargauge(
                f"Spend vs {label} budget",
                [p.target(budget_rules.burn(rules, period), budget_rules.LEGEND, instant=True)],
                unit="percentunit",
                thresholds=BUDGET_THRESHOLDS,
                max_value=1,
                description=f"Period-to-date spend / {label} budget (budget recording rules from budgets.yaml).",
            ),
            w=6,
            h=5,
        )
    grid.row("Spend rate (OTel counters; click a dot for the call's trace)")
    grid.add(
        p.timeseries(
            "Spend rate per hour by provider / model",
            [p.target(f"{q.sum_rate(SPEND.select(), (q.PROVIDER, q.MODEL))} * 3600", MODEL_LEGEND, exemplar=True)],
            unit=USD,
            stack=True,
            description="USD per hour. Exemplars link each point to the trace of a call behind it.",
        ),
        w=16,
        h=9,
    )
    top_models = f"topk(10, sum by (provider, model) ({LEDGER_BY_MODEL.select(q.period('day'))}))"
    grid.add(
        p.bargauge(
            "Top models today (ledger)",
            [p.target(top_models, "{{provider}} / {{model}}", instant=True)],
            unit=USD,
            description="Exact spend today per provider and model, from the ledger.",
        ),
        w=8,
        h=9,
    )
    for label, title in ((q.MODEL, "Top models"), (q.OPERATION_TYPE, "Top operation types"), (q.TEAM, "Top teams")):
        expr = f"topk(10, {q.sum_increase(SPEND.select(), (label,))})"
        grid.add(
            p.bargauge(
                f"{title} (selected range)",
                [p.target(expr, f"{{{{{label}}}}}", instant=True)],
                unit=USD,
                description=f"Spend over the dashboard's time range by {label} (OTel counters, approximate).",
            ),
            w=8,
            h=8,
        )
    grid.row("Unpriced calls (usage known, price missing: cost unknown, never $0)")
    unpriced_today = f"sum by (environment) ({LEDGER_UNPRICED.select(q.period('day'))})"
    grid.add(
        p.stat(
            "Unpriced calls today",
            [p.target(unpriced_today, "{{environment}}", instant=True)],
            thresholds=[(None, "green"), (1, "red")],
            description="Calls the ledger recorded today without a price. Add the model to the price file.",
        ),
        w=8,
        h=7,
    )
    unpriced = q.sum_rate(
        REQUESTS.select(f'{q.PRICING_STATUS}="{PricingStatus.UNPRICED.value}"'), (q.PROVIDER, q.MODEL)
    )
    base = q.sum_rate(REQUESTS.select(), (q.PROVIDER, q.MODEL))
    grid.add(
        p.timeseries(
            "Unpriced calls per minute by provider / model",
            [p.target(f"{q.zero_filled(unpriced, base)} * 60", MODEL_LEGEND, exemplar=True)],
            description="Calls whose usage is known but whose model has no price (0 when every call is priced).",
        ),
        w=16,
        h=7,
    )
    return dashboard(
        UID,
        "AI cost: overview",
        grid.panels,
        filter_variables(SPEND),
        description="Where the money goes: spend per environment against budget, by provider, model, team and "
        "operation type.",
    )
