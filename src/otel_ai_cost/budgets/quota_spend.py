"""What the ledger says a limit's scope has spent so far: the reads behind the usage quotas.

| limit                                   | read                                                              |
|-----------------------------------------|-------------------------------------------------------------------|
| environment, day or month               | `store.totals(environment, period)`: running totals, no record    |
| team / operation type, day or month     | the same totals' `by_team` / `by_operation_type`                  |
| job (its whole total, or a day/month)   | `store.aggregate` of the job's records (the stores index jobs)    |
| user, day or month                      | the period's records of the environment, summed per user          |

The ledger keeps no running total per user: a user limit reads the period's records (once per read round for every
user at once). On a large ledger give such limits a longer `refresh_seconds`.

`unknown_cost_calls` is what the ledger counts for that scope (None where it keeps no count: teams and operation
types), so that a figure that is only a lower bound says so.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from otel_ai_cost.budgets.config import (
    PERIOD_JOB,
    SCOPE_ENVIRONMENT,
    SCOPE_JOB,
    SCOPE_OPERATION_TYPE,
    SCOPE_TEAM,
    SCOPE_USER,
    QuotaLimit,
)
from otel_ai_cost.ledger.service.metrics import PERIOD_DAY
from otel_ai_cost.ledger.store import EXACT_SUMS, LedgerStore, Totals, UsageQuery, sum_rows
from otel_ai_cost.ledger.unknown_cost import is_cost_unknown

__all__ = ["LedgerReads", "Spend", "period_days"]


@dataclass(frozen=True, slots=True)
class Spend:
    amount: Decimal
    unknown_cost_calls: int | None  # None: the ledger keeps no such count for this scope


def period_days(period: str, period_key: str) -> tuple[date | None, date | None]:
    """The UTC days a period key covers: a day `2026-05-04`, a month `2026-05` (all its days), a job (any day)."""
    if period == PERIOD_JOB:
        return None, None
    if period == PERIOD_DAY:
        day = date.fromisoformat(period_key)
        return day, day
    year, month = (int(part) for part in period_key.split("-"))
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


class LedgerReads:
    """One round of reads: each ledger figure (an environment's totals, a period's users) is asked once per round,
    however many limits and scopes need it."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self._totals: dict[tuple[str, str], Totals] = {}
        self._users: dict[tuple[str, str], dict[str, Spend]] = {}

    def spend(self, limit: QuotaLimit, period_key: str, value: str) -> Spend:
        """The ledger's spend of one scope of `limit` (`value`: the team, user or job; "" for the environment)."""
        scope, environment = limit.scope, limit.environment
        if scope == SCOPE_JOB or limit.period == PERIOD_JOB:
            start, end = period_days(limit.period, period_key)
            query = UsageQuery(start_day=start, end_day=end, environment=environment, job_id=value)
            row = sum_rows(self.store.aggregate(query, []))
            return Spend(row.amount, row.unknown_cost_calls)
        if scope == SCOPE_USER:
            return self._users_of(limit, period_key).get(value, Spend(Decimal(0), 0))
        totals = self._totals_of(environment, period_key)
        if scope == SCOPE_ENVIRONMENT:
            return Spend(totals.amount, totals.unknown_cost_calls)
        if scope == SCOPE_TEAM:
            return Spend(totals.by_team.get(value, Decimal(0)), None)
        if scope == SCOPE_OPERATION_TYPE:
            return Spend(totals.by_operation_type.get(value, Decimal(0)), None)
        raise ValueError(f"a limit of scope {scope!r} cannot be read")  # config.py allows no other scope

    def _totals_of(self, environment: str, period_key: str) -> Totals:
        key = (environment, period_key)
        totals = self._totals.get(key)
        if totals is None:
            totals = self._totals[key] = self.store.totals(environment, period_key)
        return totals

    def _users_of(self, limit: QuotaLimit, period_key: str) -> dict[str, Spend]:
        key = (limit.environment, period_key)
        users = self._users.get(key)
        if users is None:
            start, end = period_days(limit.period, period_key)
            amounts: dict[str, Decimal] = {}
            unknown: dict[str, int] = {}
            for record in self.store.query(UsageQuery(start_day=start, end_day=end, environment=limit.environment)):
                user = record.user_id
                if not user:
                    continue
                amounts[user] = EXACT_SUMS.add(amounts.get(user, Decimal(0)), record.amount or Decimal(0))
                unknown[user] = unknown.get(user, 0) + (1 if is_cost_unknown(record) else 0)
            users = self._users[key] = {user: Spend(amounts[user], unknown[user]) for user in amounts}
        return users
