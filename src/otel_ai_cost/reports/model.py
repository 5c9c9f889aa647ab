"""The daily report's shapes: what `reports.daily.build_daily_report` returns and every renderer reads.

Amounts are exact `Decimal`s. A figure that leaves out calls of unknown cost (unpriced, streams cut before their
usage) says so with `unknown_cost_calls` > 0: it is then a lower bound, never a total with those calls at $0.
The JSON form (`to_dict`) follows the seeds' daily report (`date`, `summary.total_cost`, `summary.by_environment`,
`summary.by_service`, `top_operations[]`, `anomalies[]`), amounts as exact decimal strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

__all__ = ["Anomaly", "BudgetBurn", "DailyReport", "DaySpend", "Line", "Saving", "UnknownCost"]

NONE = "(none)"  # how an empty attribution value (no team, no job) is shown


@dataclass(frozen=True)
class Line:
    """One group's spend: `name` is the group's value ("" when the calls had none: shown as `(none)`)."""

    name: str
    amount: Decimal
    calls: int
    unknown_cost_calls: int = 0

    @property
    def average(self) -> Decimal | None:
        """Average cost of the priced calls; None when no call has a known cost."""
        priced = self.calls - self.unknown_cost_calls
        return self.amount / priced if priced > 0 else None

    @property
    def shown_name(self) -> str:
        return self.name or NONE


@dataclass(frozen=True)
class DaySpend:
    """One UTC day's spend of one environment (the chart of spend per day by environment)."""

    day: date
    environment: str
    amount: Decimal
    calls: int = 0
    unknown_cost_calls: int = 0


@dataclass(frozen=True)
class BudgetBurn:
    """One budget against its line: spend so far in its period, per day cumulatively."""

    name: str
    period: str  # daily | monthly
    limit: Decimal
    spent: Decimal
    points: Sequence[tuple[date, Decimal]] = ()  # (day, cumulative spend of the period up to that day)
    unknown_cost_calls: int = 0

    @property
    def ratio(self) -> Decimal | None:
        return self.spent / self.limit if self.limit > 0 else None


@dataclass(frozen=True)
class Anomaly:
    """Something unusual: `kind` is spike (spend over `factor` x its trailing 7-day average), new_model,
    new_operation_type, unpriced (unpriced spend appearing) or from_zero (an environment whose spend jumps from
    about 0). `subject` names what (environment, service, operation_type, model)."""

    kind: str
    day: date
    subject: Mapping[str, str]
    message: str  # one sentence a person can act on
    amount: Decimal | None = None  # the day's spend
    baseline: Decimal | None = None  # the trailing 7-day average
    factor: Decimal | None = None  # amount / baseline


@dataclass(frozen=True)
class Saving:
    """Money the period would have saved: `kind` is batch_tier, prompt_cache or cheaper_model. `amount` is exact
    (from the ledger and the catalog); for cheaper_model it is an estimate for the same token mix, never advice to
    change quality."""

    kind: str
    subject: Mapping[str, str]
    amount: Decimal
    message: str
    estimate: bool = False


@dataclass(frozen=True)
class UnknownCost:
    """Calls whose cost is unknown, per provider and model, with why (unpriced, partial, no usage)."""

    provider: str
    model: str
    calls: int
    reason: str


@dataclass(frozen=True)
class DailyReport:
    """The report of `days` UTC days ending `date` (one day by default), for one environment or all."""

    date: date
    days: int
    environment: str | None
    generated_at: datetime
    total: Line
    by_environment: Sequence[Line] = ()
    by_service: Sequence[Line] = ()  # by provider, as the seeds' `service`
    top_operations: Sequence[Line] = ()  # by operation type, most expensive first
    by_model: Sequence[Line] = ()
    by_team: Sequence[Line] = ()
    by_job: Sequence[Line] = ()
    daily: Sequence[DaySpend] = ()  # the trailing days too (the anomaly baseline), for the chart
    budgets: Sequence[BudgetBurn] = ()
    anomalies: Sequence[Anomaly] = ()
    savings: Sequence[Saving] = ()
    unknown: Sequence[UnknownCost] = ()
    # Strict attribution: the calls recorded `(unattributed)` per call site (`path:line`), the top ones by cost.
    unattributed_sites: Sequence[Line] = ()
    ledger: str = ""  # where the figures come from, as a person reads it (never a Python repr)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def sections(self) -> tuple[tuple[str, str, Sequence[Line]], ...]:
        """(title, the grouping's field, its lines) of each breakdown, in the order every renderer shows them."""
        return (
            ("By environment", "environment", self.by_environment),
            ("By service (provider)", "provider", self.by_service),
            ("Top operations", "operation_type", self.top_operations),
            ("By model", "model", self.by_model),
            ("By team", "team", self.by_team),
            ("By job", "job_id", self.by_job),
        ) + (
            (("Top unattributed call sites", "call_site", self.unattributed_sites),) if self.unattributed_sites else ()
        )
