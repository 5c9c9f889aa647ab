"""The small interface every ledger store implements, and the query it answers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Context, Decimal, Inexact, Rounded
from typing import Protocol


class StoreUnavailable(Exception):
    """The store cannot take writes now (down, throttling beyond the retry budget). Nothing was lost: the caller
    still holds the records and must retry (the ledger service answers 503 with Retry-After)."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InvalidRecord(ValueError):
    """A record this store can never hold as it is (for example an amount beyond the store's numeric precision).
    Retrying cannot help, so the caller rejects that record (the ledger service reports it in `partial_success`)
    instead of retrying the whole batch forever. Nothing of the failed `write()` was stored.

    `key` is the (trace_id, span_id) of the record at fault when the store knows it: the caller drops that record
    and writes the rest again. Without it (None), the caller finds the record by writing smaller slices."""

    def __init__(self, message: str, key: tuple[str, str] | None = None) -> None:
        super().__init__(message)
        self.key = key


class RetryBatch(Exception):
    """This batch failed for a reason of its own that a retry can cure (a transaction conflict, a batch too large
    for one transaction), while the store itself is healthy. Nothing of the failed `write()` was stored, or what
    was is recognised as a duplicate on the retry: the caller writes the records again, split or later.

    Every error a store's `write()` raises is one of three classes, and callers act on the class alone:
    `InvalidRecord` (this record: reject it alone), `RetryBatch` (this batch: retry it) and `StoreUnavailable`
    (the store: retry later; the service answers 503). Anything else escaping a store is a bug in that store."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    written: int  # new records
    duplicates: int  # records whose identity was already stored (ignored, never counted twice)
    retries: int = 0  # transient failures retried inside this write
    # Of the duplicates, those whose stored record has DIFFERENT content (another amount, other token counts): the
    # stored record is kept and the new one ignored, but this is not a harmless replay, so it is counted apart.
    conflicts: int = 0
    # Of the duplicates, those dated on or before their environment's prune horizon (SQLite, `ledger prune`): their
    # day's records were deleted and the rollup kept, so the record is refused rather than counted a second time.
    pruned: int = 0


@dataclass(frozen=True, slots=True)
class UsageQuery:
    """Filters; every one optional. Days are UTC and inclusive."""

    start_day: date | None = None
    end_day: date | None = None
    environment: str | None = None
    service: str | None = None
    provider: str | None = None
    model: str | None = None  # matches request_model or response_model
    operation_type: str | None = None
    team: str | None = None
    job_id: str | None = None
    batch_id: str | None = None
    cicd_run_id: str | None = None
    trace_id: str | None = None


@dataclass(frozen=True, slots=True)
class Totals:
    """Exact running totals of one period (a UTC day `YYYY-MM-DD` or month `YYYY-MM`)."""

    period: str
    environment: str
    amount: Decimal
    calls: int
    unpriced_calls: int
    by_provider_model: dict[tuple[str, str], Decimal]
    # Spend per team and per operation type ("" for calls without one), from running totals too: the service's
    # scoped /metrics gauges read these in a bounded number of reads, whatever the number of records.
    by_team: dict[str, Decimal] = field(default_factory=dict)
    by_operation_type: dict[str, Decimal] = field(default_factory=dict)
    # Calls of unknown cost (`otel_ai_cost.ledger.unknown_cost`; the unpriced ones included): when non-zero, `amount`
    # is a lower bound. A DynamoDB total item written before this count gives a lower bound of it (see the store).
    unknown_cost_calls: int = 0

    def __post_init__(self) -> None:
        _count_unpriced_as_unknown(self)


GROUP_BY_FIELDS = ("day", "month", "environment", "service", "provider", "model", "operation", "operation_type",
                   "team", "job_id", "batch_id", "cicd_run_id", "pricing_tier", "record_source",
                   "cost_source", "call_site")  # fmt: skip  # "model" = response model, else request


@dataclass(frozen=True, slots=True)
class AggregateRow:
    """One group of a report: exact sums over the records that share `group`'s values."""

    group: tuple[tuple[str, str], ...]  # ((field, value), ...) in the order asked
    amount: Decimal  # priced records only
    calls: int
    unpriced_calls: int  # calls with usage but no price: their cost is unknown, never zero
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_write_input_tokens: int  # 5m + 1h
    reasoning_output_tokens: int
    # `amount` with our catalog's figure (`computed_amount`) in place of the provider-reported amount of each call
    # that has both (cost_source provider); None when no call of the group has one. `amount - computed_amount` is
    # how much more the providers reported than the catalog says.
    computed_amount: Decimal | None = None
    # Calls whose cost is unknown by `otel_ai_cost.ledger.unknown_cost.is_cost_unknown`: the unpriced ones, streams
    # closed before their usage arrived, answers without usage, streams priced from part of their usage. When
    # non-zero, `amount` is a lower bound.
    unknown_cost_calls: int = 0

    def __post_init__(self) -> None:
        _count_unpriced_as_unknown(self)


EXACT_SUMS = Context(prec=400, traps=[Inexact, Rounded])  # sums of exact amounts must never round

_COUNTS = ("calls", "unpriced_calls", "unknown_cost_calls", "input_tokens", "output_tokens", "cache_read_input_tokens",
           "cache_write_input_tokens", "reasoning_output_tokens")  # fmt: skip


def sum_rows(rows: Sequence[AggregateRow], group: tuple[tuple[str, str], ...] = ()) -> AggregateRow:
    """One row summing `rows` exactly: a report's total, or the same group merged across environments.
    `computed_amount` is set when any row has one (a row without it adds its `amount`)."""
    amount = Decimal(0)
    for row in rows:
        amount = EXACT_SUMS.add(amount, row.amount)
    computed = None
    if any(row.computed_amount is not None for row in rows):
        computed = Decimal(0)
        for row in rows:
            computed = EXACT_SUMS.add(computed, row.amount if row.computed_amount is None else row.computed_amount)
    counts = {name: sum(getattr(row, name) for row in rows) for name in _COUNTS}
    return AggregateRow(group=group, amount=amount, computed_amount=computed, **counts)


def _count_unpriced_as_unknown(sums: AggregateRow | Totals) -> None:
    """Unpriced calls are calls of unknown cost: a row or total made without the count (by code that predates it)
    still counts those, never fewer calls of unknown cost than unpriced ones."""
    if sums.unknown_cost_calls < sums.unpriced_calls:
        object.__setattr__(sums, "unknown_cost_calls", sums.unpriced_calls)


class LedgerStore(Protocol):
    """Idempotent on (trace_id, span_id); a query for one environment never returns another's records."""

    def write(self, records: Sequence[LedgerRecord]) -> WriteResult:
        """Stores the records; retries transient failures with bounded backoff, then raises StoreUnavailable."""
        ...

    def query(self, query: UsageQuery) -> Iterator[LedgerRecord]:
        """Matching records, oldest first."""
        ...

    def aggregate(self, query: UsageQuery, group_by: Sequence[str]) -> list[AggregateRow]:
        """Sums per group (fields from GROUP_BY_FIELDS), computed by the store (SQL GROUP BY, not a Python loop
        over records: a report over a million records must stay under 2 s)."""
        ...

    def totals(self, environment: str, period: str) -> Totals:
        """Running totals for a day ('2026-11-22') or a month ('2026-11'), without scanning records."""
        ...

    # -- the billed side (`otel_ai_cost.reconcile`): what the providers billed, and each reconciliation run --------

    def replace_billed(self, pull: BilledPull) -> BilledWrite:
        """Stores a billing source's pull: every line and usage row of `pull.source` on the days
        `pull.start_day`..`pull.end_day` is replaced by the pull's (a day re-pulled is replaced, never added to; a
        line the provider dropped is gone). A line or usage row outside the window raises ValueError."""
        ...

    def write_billed(self, lines: Sequence[BilledLine]) -> BilledWrite:
        """Upserts lines by `BilledLine.key` (figures entered by hand: the latest figure for a key wins)."""
        ...

    def billed_lines(self, query: BilledQuery) -> list[BilledLine]:
        """Stored billed lines matching `query`, by day, then source, account and line."""
        ...

    def billed_usage(self, query: BilledQuery) -> list[BilledUsage]:
        """Stored billed usage rows matching `query`, by day, then source, account, model and tier."""
        ...

    def write_reconciliation(self, run: RunRecord) -> None:
        """Stores a run, and makes its days the latest verdict for each (provider, day, environment)."""
        ...

    def reconciled_days(self, query: BilledQuery) -> list[ReconciledDay]:
        """The latest run's verdict per (provider, day, environment) matching `query`, by day then provider."""
        ...

    def reconciliation_runs(self, limit: int = 20) -> list[RunRecord]:
        """The latest runs, newest first, each with its days and document."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class BilledQuery:
    """Filters of the billed side; days are UTC and inclusive. `environments`: None for every line (the
    organization-wide ones, environment "", included); a set for the lines mapped to those environments only."""

    start_day: date
    end_day: date
    provider: str | None = None
    source: str | None = None
    environments: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class BilledWrite:
    written: int  # lines and usage rows stored
    removed: int = 0  # stored lines and usage rows of the window that the pull no longer has


from otel_ai_cost.ledger.record import LedgerRecord  # noqa: E402  (for the annotations above)
from otel_ai_cost.reconcile.billed import BilledLine, BilledPull, BilledUsage  # noqa: E402
from otel_ai_cost.reconcile.runs import ReconciledDay, RunRecord  # noqa: E402
