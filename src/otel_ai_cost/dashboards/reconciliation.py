"""Reconciliation: tracked spend per provider and day, and beside it what each provider billed.

The tracked side comes from the ledger's running totals (and the OTel counters as a cross-check). The billed side
comes from the ledger service's reconciliation gauges (`otel-ai-cost reconcile` stores each run in the ledger; the
service's `/metrics` reads the latest run of each day): billed vs tracked per provider, the discrepancy ratio against
the alert's threshold (the `ai_cost:reconciliation_discrepancy_threshold` series of `alerts/reconciliation.rules.yml`,
so the line moves with the alert), the reconciled days by verdict, and the age of the last run.
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
BILLED = q.ledger(contract.LEDGER_BILLED)
RECONCILED_TRACKED = q.ledger(contract.LEDGER_RECONCILED_TRACKED)
RATIO = q.ledger(contract.LEDGER_RECONCILIATION_DISCREPANCY_RATIO)
VERDICT_DAYS = q.ledger(contract.LEDGER_RECONCILIATION_DAYS)
LAST_RUN = q.ledger(contract.LEDGER_RECONCILIATION_LAST_RUN)

# Recorded by alerts/reconciliation.rules.yml: the alert's threshold, one place to change it for the alert and here.
THRESHOLD_RULE = "ai_cost:reconciliation_discrepancy_threshold"
RECORDED_RULES: frozenset[str] = frozenset({THRESHOLD_RULE})
STALE_AFTER_S = 2 * 86400  # AICostReconciliationStale fires past this age (alerts/reconciliation.rules.yml)
MONTH = contract.RECONCILIATION_PERIOD_MONTH
DAY = contract.RECONCILIATION_PERIOD_DAY


def daily_tracked() -> str:
    """Each UTC day's final ledger total per provider: the peak of the day-so-far gauge, stamped at the next 00:00.
    Summing per-model maxima is exact (each model's day total only grows during the day)."""
    return f"sum by (provider) (max_over_time({LEDGER_BY_MODEL.select(q.period('day'))}[{DAY_WINDOW}]))"


def billed(period: str) -> str:
    return f"sum by (provider) ({BILLED.select(q.period(period))})"


def reconciled_tracked(period: str) -> str:
    return f"sum by (provider) ({RECONCILED_TRACKED.select(q.period(period))})"


def _merged(names: dict[str, str]) -> list[dict[str, Any]]:
    """Instant table queries merged into one row per provider, their value columns renamed (`Value #A` -> ...)."""
    return [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {"Time": True}, "renameByName": names}},
    ]


def _instant(expr: str) -> dict[str, Any]:
    return p.target(expr, instant=True, table=True)


def _tracked_panels(grid: Grid) -> None:
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
                _instant(f"sum by (provider) ({LEDGER_BY_MODEL.select(q.period('day'))})"),
                _instant(f"sum by (provider) ({LEDGER_BY_MODEL.select(q.period('month'))})"),
            ],
            unit=USD,
            transformations=_merged({"Value #A": "today", "Value #B": "this month"}),
        ),
        w=8,
        h=9,
    )


def _billed_panels(grid: Grid) -> None:
    grid.row("Billed vs tracked (reconciliation runs: otel-ai-cost reconcile)")
    grid.add(
        p.barchart(
            "Billed vs tracked per provider, month to date",
            [_instant(billed(MONTH)), _instant(reconciled_tracked(MONTH))],
            x_field="provider",
            unit=USD,
            description="Over the current UTC month's reconciled days that have a bill, as the latest "
            "reconciliation run of each day found them: what the provider billed beside what the ledger tracked "
            "for the same days. Days without a bill yet are in neither bar.",
            transformations=_merged({"Value #A": "billed", "Value #B": "tracked"}),
        ),
        w=12,
        h=9,
    )
    ratio = p.timeseries(
        "Discrepancy per provider, month to date: (tracked - billed) / billed",
        [
            p.target(RATIO.select(), "{{provider}}"),
            p.target(THRESHOLD_RULE, "alert threshold"),
            p.target(f"-{THRESHOLD_RULE}", "-alert threshold"),
        ],
        unit="percentunit",
        description="Positive: more tracked than billed (a price too high, calls tracked twice); negative: less "
        "(calls not instrumented, usage outside our calls, a stale price). Outside the dashed lines for an hour, "
        "AICostReconciliationDiscrepancy fires (threshold: alerts/reconciliation.rules.yml).",
    )
    ratio["fieldConfig"]["overrides"] = [
        {
            "matcher": {"id": "byRegexp", "options": ".*alert threshold"},
            "properties": [
                {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
            ],
        }
    ]
    grid.add(ratio, w=12, h=9)
    grid.add(
        p.table(
            "Billed and tracked per provider: latest billed day and month to date",
            [
                _instant(billed(DAY)),
                _instant(reconciled_tracked(DAY)),
                _instant(billed(MONTH)),
                _instant(reconciled_tracked(MONTH)),
            ],
            unit=USD,
            description="The latest day is each provider's latest reconciled UTC day with a bill (bills arrive a "
            "day or more late).",
            transformations=_merged(
                {
                    "Value #A": "billed, latest day",
                    "Value #B": "tracked, latest day",
                    "Value #C": "billed, month",
                    "Value #D": "tracked, month",
                }
            ),
        ),
        w=10,
        h=8,
    )
    grid.add(
        p.table(
            "Reconciled days this month by verdict",
            [_instant(f"sum by (provider, verdict) ({VERDICT_DAYS.select()})")],
            description="The latest run's verdict of each UTC day of the month (one per day and environment the "
            "bill's accounts are mapped to): match, over, under, no bill yet, not tracked.",
            transformations=[
                {
                    "id": "groupingToMatrix",
                    "options": {"columnField": "verdict", "rowField": "provider", "valueField": "Value"},
                }
            ],
        ),
        w=8,
        h=8,
    )
    grid.add(
        p.stat(
            "Last reconciliation run",
            [p.target(f"time() - max({LAST_RUN.select()})", "age")],
            unit="s",
            description="Time since the latest reconciliation run finished. Past 2 days, AICostReconciliationStale "
            "fires: the job (cron, timer, workflow or Lambda) is not running.",
            thresholds=[(None, "green"), (STALE_AFTER_S // 2, "orange"), (STALE_AFTER_S, "red")],
        ),
        w=6,
        h=8,
    )


def build() -> dict[str, Any]:
    grid = Grid()
    _tracked_panels(grid)
    _billed_panels(grid)
    grid.row("Cross-check")
    counters = q.sum_increase(SPEND.select(), (q.PROVIDER,), window="1d")
    grid.add(
        p.timeseries(
            "Cross-check: OTel counters, last 24 h per provider",
            [p.target(counters, f"{{{{{q.PROVIDER}}}}}")],
            unit=USD,
            description="Rolling 24 h from Prometheus counters: approximate (extrapolation, short-lived processes "
            "undercount). A large gap to the ledger means spans are not reaching it.",
        ),
        w=24,
        h=8,
    )
    return dashboard(
        UID,
        "AI cost: reconciliation",
        grid.panels,
        filter_variables(LEDGER_BY_MODEL),
        description="Tracked spend per provider and day, and what each provider billed: billed vs tracked, the "
        "discrepancy ratio against the alert threshold, days by verdict, the last run.",
        time_from="now-30d",
    )
