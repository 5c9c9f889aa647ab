"""Retention for the SQLite ledger: what `SQLiteStore.prune_plan()` and `prune()` do (`otel-ai-cost ledger prune`).

```python
[plan] = store.prune_plan({"production": date(2026, 9, 9)})       # changes nothing
plan.records, plan.days, plan.amount                              # 1204, 31, Decimal('48.012345')
store.prune({"production": date(2026, 9, 9)}, progress=bar)       # deletes them, in one transaction
store.prune_horizons()                                            # {'production': date(2026, 9, 8)}
```

**What goes, what stays.** Each environment's records dated (UTC day) before its cutoff (`before`) are deleted;
the daily rollup (`daily`) and the running totals (`totals`) are kept, so `totals()` and every `aggregate()` the
rollup answers (grouped and filtered by day, month, environment, service, provider, model, operation, operation type,
team) give the same exact figures after a prune as before. What needs the records themselves (a job, batch, CI
run or trace id, `query()`, grouping by `pricing_tier`, `record_source` or `cost_source`, the catalog-vs-provider
comparison of `computed_amount`) no longer sees the pruned days.

**The horizon** (`prune_horizons`, schema version 5): per environment, the last UTC day whose records were
deleted. A record dated on or before its environment's horizon is refused by `write()` (counted in
`WriteResult.pruned`, and as a duplicate), because after a prune a replay of a deleted record (a JSONL file imported
again, a collector retrying) would no longer match a stored primary key and would be added to the rollup a second
time. The horizon only moves forward, and only to a day whose records were actually deleted: an empty prune sets
nothing.

**All or nothing.** The count, the deletes (in chunks, for the progress bar) and the horizon are one `BEGIN
IMMEDIATE` transaction: an error or Ctrl-C midway rolls everything back. Writers wait for it (busy timeout, then
their retries). Before deleting, the plan's rollup is checked against the records it covers: if the rollup holds
fewer or more calls than the records for those days, nothing is deleted (`PruneRefused`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from otel_ai_cost.ledger.record import format_timestamp

__all__ = ["CHUNK", "PrunePlan", "PruneRefused", "cutoff", "delete", "horizons", "plan", "pruned_notes"]

CHUNK = 10_000  # records deleted per statement: a progress step, not a transaction (the transaction is the whole)

Progress = Callable[[int, int], None]  # (records done, records in all)

# Schema version 5: the horizon per environment. `records`: how many were pruned in all; `pruned_at`: ISO UTC.
SCHEMA = """CREATE TABLE IF NOT EXISTS prune_horizons (
    environment TEXT PRIMARY KEY,
    through_day TEXT NOT NULL,
    records INTEGER NOT NULL,
    pruned_at TEXT NOT NULL
) WITHOUT ROWID"""


class PruneRefused(RuntimeError):
    """The daily rollup does not match the records a prune would delete: deleting them would lose figures."""


@dataclass(frozen=True, slots=True)
class PrunePlan:
    """What a prune of one environment removes (or removed): records dated before `before`, exact figures."""

    environment: str
    before: date  # the first UTC day kept
    records: int  # records deleted
    days: int  # UTC days that had records
    first_day: date | None  # of the records deleted (None: nothing to delete)
    last_day: date | None
    amount: Decimal  # their exact spend, from the daily rollup (priced calls)
    unknown_cost_calls: int  # their calls of unknown cost: when non-zero, `amount` is a lower bound
    previous_horizon: date | None  # the environment's horizon before this prune

    @property
    def horizon(self) -> date | None:
        """The environment's horizon after the prune: the last day deleted, never earlier than before."""
        days = [d for d in (self.previous_horizon, self.last_day) if d is not None]
        return max(days) if days else None


def horizons(cursor: sqlite3.Cursor) -> dict[str, date]:
    """Every environment's horizon: the last UTC day whose records were pruned."""
    rows = cursor.execute("SELECT environment, through_day FROM prune_horizons").fetchall()
    return {environment: date.fromisoformat(day) for environment, day in rows}


def plan(cursor: sqlite3.Cursor, environment: str, before: date) -> PrunePlan:
    """What pruning `environment` before `before` would delete, read in the caller's transaction. Records per day
    through the (environment, day) index; money from the rollup rows of the days after the previous horizon
    (their records are all still there), checked against the records' count."""
    from otel_ai_cost.ledger.sqlite_store import rollup_sums

    previous = horizons(cursor).get(environment)
    first_kept = before.isoformat()
    per_day = cursor.execute(
        "SELECT day, COUNT(*) FROM records INDEXED BY records_environment_day "
        "WHERE environment = ? AND day < ? GROUP BY day ORDER BY day",
        (environment, first_kept),
    ).fetchall()
    records = sum(count for _, count in per_day)
    after = "" if previous is None else previous.isoformat()
    where = "environment = ? AND day > ? AND day < ?"
    calls, amount, unknown = rollup_sums(cursor, where, (environment, after, first_kept))
    if calls != records:
        raise PruneRefused(
            f"the daily rollup of {environment!r} before {first_kept} counts {calls} calls but {records} records are "
            "stored for those days: pruning them would change the reports, so nothing was deleted"
        )
    return PrunePlan(
        environment=environment,
        before=before,
        records=records,
        days=len(per_day),
        first_day=date.fromisoformat(per_day[0][0]) if per_day else None,
        last_day=date.fromisoformat(per_day[-1][0]) if per_day else None,
        amount=amount,
        unknown_cost_calls=unknown,
        previous_horizon=previous,
    )


def delete(cursor: sqlite3.Cursor, plans: Sequence[PrunePlan], progress: Progress | None, chunk: int = CHUNK) -> None:
    """Deletes the planned records in chunks (reporting progress after each) and moves the horizons, in the caller's
    transaction. The rollup and the running totals are not touched."""
    total = sum(planned.records for planned in plans)
    done = 0
    if progress is not None:
        progress(done, total)
    for planned in plans:
        if planned.records == 0:
            continue
        removed = 0
        while removed < planned.records:
            deleted = cursor.execute(
                "DELETE FROM records WHERE rowid IN (SELECT rowid FROM records INDEXED BY records_environment_day "
                "WHERE environment = ? AND day < ? LIMIT ?)",
                (planned.environment, planned.before.isoformat(), chunk),
            ).rowcount
            if deleted <= 0:
                break
            removed += deleted
            done += deleted
            if progress is not None:
                progress(done, total)
        if removed != planned.records:  # cannot happen under the write lock; never commit what was not planned
            raise PruneRefused(f"deleted {removed} records where {planned.records} were planned: nothing was deleted")
        assert planned.horizon is not None
        cursor.execute(
            "INSERT INTO prune_horizons (environment, through_day, records, pruned_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (environment) DO UPDATE SET through_day = MAX(through_day, excluded.through_day), "
            "records = records + excluded.records, pruned_at = excluded.pruned_at",
            (planned.environment, planned.horizon.isoformat(), removed, format_timestamp(datetime.now(timezone.utc))),
        )


def cutoff(today: date, older_than_days: int) -> date:
    """The first UTC day kept by "older than N days": records of days before `today - N` go."""
    return today - timedelta(days=older_than_days)


def pruned_notes(
    pruned: Mapping[str, date], environment: str | None, start: date | None, *, from_rollup: bool, what: str
) -> list[str]:
    """The lines a report or `jobs show` prints (on standard error) when its range reaches pruned days:
    `pruned` is `SQLiteStore.prune_horizons()`, `environment` the report's (None: all), `start` its first day
    (None: all time), `from_rollup` whether its figures come from the daily rollup, `what` the answer's name."""
    notes = []
    for name, horizon in sorted(pruned.items()):
        if (environment is not None and name != environment) or (start is not None and start > horizon):
            continue
        head = f"records of {name} dated {horizon} or earlier were pruned (otel-ai-cost ledger prune)"
        if from_rollup:
            notes.append(
                f"note: {head}; calls, cost and tokens of those days come from the daily rollup and are complete "
                "(a catalog USD column counts the kept records only)"
            )
        else:
            hint = (
                " (group by day, month, environment, service, provider, model, operation, operation_type or team "
                "for complete figures)"
                if what == "this report"
                else ""
            )
            notes.append(f"warning: {head}; {what} reads the records themselves, so it misses those days' calls{hint}")
    return notes
