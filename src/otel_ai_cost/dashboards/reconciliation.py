"""Reconciliation: tracked spend per provider and day (ledger, and the OTel counters as a cross-check).

The billed side (provider invoices / usage exports) is not imported yet: its panel is a labelled placeholder.
"""

from __future__ import annotations

from typing import Any

from otel_ai_cost import contract
from otel_ai_cost.dashboards import panels as p
from otel_ai_cost.dashboards import promql as q
from otel_ai_cost.dashboards.dashboard import dashboard
from otel_ai_cost.dashboards.layout import Grid
from otel_ai_cost.dashboards.variables import filter_variables

UID = "ai-cost-reconciliation"
USD = "currencyUSD"
DAY_WINDOW = "86399s"  # one day minus a second: the day that ended at the point's 00:00 UTC, not the one before

LEDGER_BY_MODEL = q.ledger(contract.LEDGER_SPEND_BY_MODEL)
SPEND = q.otel(contract.SPEND)

BILLED_PLACEHOLDER = """\
### Billed (placeholder)

Provider-billed amounts are **not imported yet** (the billing reconciliation work has not landed).
When it does, this panel becomes *billed vs tracked per provider and day*, with the difference highlighted.

Until then, compare the tracked totals here with the provider consoles, or query the ledger:
`/v1/usage?aggregation=day,provider&start_date=YYYY-MM-DD&end_date=YYYY-MM-DD`.
"""


def daily_tracked() -> str:
    """Each UTC day's final ledger total per provider: the peak of the day-so-far gauge, stamped at the next 00:00.
    Summing per-model maxima is exact (each model's day total only grows during the day)."""
    return f"sum by (provider) (max_over_time({LEDGER_BY_MODEL.select(q.period('day'))}[{DAY_WINDOW}]))"


def build() -> dict[str, Any]:
    grid = Grid()
    grid.row("Tracked spend (ledger: exact, UTC days)")
    daily = p.timeseries(
        "Tracked per provider and day",
        [p.target(daily_tracked(), "{{provider}}")],
        unit=USD,
        bars=True,
        description="Each bar, at 00:00 UTC, is the total of the day that ended then (the last bar is today so "
        "far, up to now).",
    )
    daily["interval"] = "1d"
    daily["maxDataPoints"] = 100
    grid.add(daily, w=16, h=9)
    grid.add(
        p.table(
            "Tracked today and this month per provider",
            [
                p.target(f"sum by (provider) ({LEDGER_BY_MODEL.select(q.period('day'))})", instant=True, table=True),
                p.target(f"sum by (provider) ({LEDGER_BY_MODEL.select(q.period('month'))})", instant=True, table=True),
            ],
            unit=USD,
            transformations=[
                {"id": "merge", "options": {}},
                {
                    "id": "organize",
                    "options": {
                        "excludeByName": {"Time": True},
                        "renameByName": {"Value #A": "today", "Value #B": "this month"},
                    },
                },
            ],
        ),
        w=8,
        h=9,
    )
    grid.add(p.text("Billed per provider and day: not available yet", BILLED_PLACEHOLDER), w=12, h=8)
    counters = q.sum_increase(SPEND.select(), (q.PROVIDER,), window="1d")
    grid.add(
        p.timeseries(
            "Cross-check: OTel counters, last 24 h per provider",
            [p.target(counters, f"{{{{{q.PROVIDER}}}}}")],
            unit=USD,
            description="Rolling 24 h from Prometheus counters: approximate (extrapolation, short-lived processes "
            "undercount). A large gap to the ledger means spans are not reaching it.",
        ),
        w=12,
        h=8,
    )
    return dashboard(
        UID,
        "AI cost: reconciliation",
        grid.panels,
        filter_variables(LEDGER_BY_MODEL),
        description="Tracked spend per provider and day; billed side pending the billing import.",
        time_from="now-30d",
    )
