"""What `budgets check` tells CI: the cost summary for the job summary page, and its JSON (`--json PATH`).

**The job summary** (`$GITHUB_STEP_SUMMARY`, written whenever the variable is set) reads:

```markdown
### AI spend: 1 budget exceeded (cicd)

| budget | spent USD | limit USD | % used | status |
|---|--:|--:|--:|---|
| cicd/day | 9.50 | 10.00 | 95.0% | 🔶 critical |
| cicd/day/team=platform | 6.00 | 4.00 | 150.0% | ⛔ EXCEEDED |

| environment | period | cost USD | calls | cost unknown |
|---|---|--:|--:|--:|
| cicd | 2026-12-04 | 9.50 | 3 | 0 |
| cicd | 2026-12 | 41.25 | 57 | 0 |

From `sqlite:///…/usage.db` against `config/budgets.yaml`, checked 2026-12-04 10:00 UTC. The gate fails the job
when a budget is exceeded (`--fail-on-exceeded`).
```

Amounts are exact; a spend that leaves out calls of unknown cost reads `≥ 9.50` and says how many. The heading
names the worst status: `within budget`, `N budget(s) past a threshold` or `N budget(s) exceeded`.

**The JSON** (`budget_check_json`): `status` (the worst: `ok`, a threshold's severity such as `warning` or
`critical`, `exceeded`, or `no data`), `exceeded` (budget ids), `checked_at`, `ledger` (absent for Prometheus),
`budgets[]` (`budget`, `environment`, `period`, `scope`, `scope_value`, `limit`, `spent`, `percent`, `status`,
`unknown_cost_calls`) and, from the ledger, `environments` per environment: `day`, `spent_day`, `calls_day`,
`unknown_cost_calls_day`, `month`, `spent_month`, `calls_month`, `unknown_cost_calls_month` (the day checked, today
unless `--date`, and its month to date).
Amounts are exact decimal strings; `spent` is null when the source has no figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from otel_ai_cost.budgets.check import STATUS_NO_DATA, STATUS_OK, BudgetStatus
from otel_ai_cost.budgets.config import SEVERITY_EXCEEDED
from otel_ai_cost.reports.markdown_tables import code, escape, markdown_table
from otel_ai_cost.reports.tables import Column

__all__ = [
    "BUDGET_COLUMNS",
    "PeriodSpend",
    "budget_check_json",
    "budget_rows",
    "budget_summary_markdown",
    "worst_status",
]

BUDGET_COLUMNS = (
    Column("budget"),
    Column("spent", "money"),
    Column("limit", "money", lower_bound=False),
    Column("percent", "percent"),
    Column("status"),
)
# A glance at the status column; the word stays beside the icon.
_ICONS = {STATUS_OK: "✅", SEVERITY_EXCEEDED: "⛔", "warning": "⚠️", "critical": "🔶"}
_SPEND_COLUMNS = (
    Column("environment"),
    Column("period", header="period"),
    Column("amount", "money"),
    Column("calls", "count"),
    Column("unknown_cost_calls", "count"),
)


@dataclass(frozen=True)
class PeriodSpend:
    """An environment's spend in one UTC day or month, from the ledger's running totals."""

    environment: str
    period: str  # YYYY-MM-DD or YYYY-MM
    amount: Decimal
    calls: int
    unknown_cost_calls: int  # when > 0, `amount` is a lower bound


def worst_status(statuses: Sequence[BudgetStatus]) -> str:
    """`exceeded` when a budget is at or over 100%, else the severity of the highest threshold reached, else `ok`
    (`no data` when no budget had a figure)."""
    if any(s.exceeded for s in statuses):
        return SEVERITY_EXCEEDED
    alerting = [s for s in statuses if s.threshold is not None]
    if alerting:
        return max(alerting, key=lambda s: s.threshold.percent if s.threshold else Decimal(0)).status
    if statuses and all(s.spent is None for s in statuses):
        return STATUS_NO_DATA
    return STATUS_OK


def budget_rows(statuses: Sequence[BudgetStatus], unknown: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """The rows of the budgets table (console and Markdown); `unknown` counts calls of unknown cost per budget id."""
    unknown = unknown or {}
    return [
        {
            "budget": s.budget.id,
            "spent": s.spent,
            "limit": s.budget.amount,
            "percent": None if s.spent is None else s.spent / s.budget.amount,
            "status": s.status.upper() if s.status == SEVERITY_EXCEEDED else s.status,
            "unknown_cost_calls": unknown.get(s.budget.id, 0),
        }
        for s in statuses
    ]


def budget_summary_markdown(
    statuses: Sequence[BudgetStatus],
    *,
    spend: Sequence[PeriodSpend] = (),
    unknown: Mapping[str, int] | None = None,
    source: str,
    checked_at: datetime,
    environment: str | None = None,
    gate: bool = False,
    budgets_file: str | None = None,
) -> str:
    """The job summary's section for one `budgets check` (see the module documentation). `source` is the ledger
    URL or the Prometheus address the figures come from, `budgets_file` the budgets file read."""
    over = [s for s in statuses if s.exceeded]
    alerting = [s for s in statuses if s.alerting]
    if over:
        heading = f"{len(over)} budget{'s' if len(over) != 1 else ''} exceeded"
    elif alerting:
        heading = f"{len(alerting)} budget{'s' if len(alerting) != 1 else ''} past a threshold"
    elif statuses and all(s.spent is None for s in statuses):
        heading = "no data"
    else:
        heading = "within budget"
    parts = [f"### AI spend: {heading}" + (f" ({escape(environment)})" if environment else "")]
    if statuses:
        rows = budget_rows(statuses, unknown)
        for row, status in zip(rows, statuses, strict=True):
            row["status"] = f"{_ICONS.get(status.status, '')} {row['status']}".strip()
        parts.append(markdown_table(BUDGET_COLUMNS, rows))
    else:
        parts.append("No budget matches this check.")
    if spend:
        rows = [
            {"environment": p.environment, "period": p.period, "amount": p.amount, "calls": p.calls,
             "unknown_cost_calls": p.unknown_cost_calls}
            for p in spend
        ]  # fmt: skip
        parts.append(markdown_table(_SPEND_COLUMNS, rows))
    notes = []
    if any(p.unknown_cost_calls for p in spend) or any((unknown or {}).values()):
        notes.append(
            "Some calls have an unknown cost (unpriced, or streams cut before their usage): the amounts marked "
            "&ge; leave them out and are lower bounds."
        )
    when = checked_at.strftime("%Y-%m-%d %H:%M UTC")
    gate_text = " The gate fails the job when a budget is exceeded (`--fail-on-exceeded`)." if gate else ""
    against = f" against {code(budgets_file)}" if budgets_file else ""
    notes.append(f"From {code(source)}{against}, checked {when}.{gate_text}")
    parts.append(" ".join(notes))
    return "\n\n".join(parts)


def budget_check_json(
    statuses: Sequence[BudgetStatus],
    *,
    spend: Sequence[PeriodSpend] = (),
    unknown: Mapping[str, int] | None = None,
    checked_at: datetime,
    ledger: str | None,
) -> dict[str, Any]:
    """The JSON of one check (see the module documentation)."""
    unknown = unknown or {}
    environments: dict[str, dict[str, Any]] = {}
    for p in spend:
        entry = environments.setdefault(p.environment, {})
        which = "day" if len(p.period) == len("YYYY-MM-DD") else "month"
        entry[which] = p.period
        entry[f"spent_{which}"] = format(p.amount, "f")
        entry[f"calls_{which}"] = p.calls
        entry[f"unknown_cost_calls_{which}"] = p.unknown_cost_calls
    out: dict[str, Any] = {
        "status": worst_status(statuses),
        "exceeded": [s.budget.id for s in statuses if s.exceeded],
        "checked_at": checked_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "budgets": [
            {
                "budget": s.budget.id,
                "environment": s.budget.environment,
                "period": s.budget.period,
                "scope": s.budget.scope,
                "scope_value": s.budget.scope_value,
                "limit": format(s.budget.amount, "f"),
                "spent": None if s.spent is None else format(s.spent, "f"),
                "percent": None if s.percent is None else format(s.percent.quantize(Decimal("0.01")), "f"),
                "status": s.status,
                "unknown_cost_calls": unknown.get(s.budget.id, 0),
            }
            for s in statuses
        ],
    }
    if ledger is not None:
        out["ledger"] = ledger
        out["environments"] = environments
    return out
