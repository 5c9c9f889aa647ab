"""The ledger service's Prometheus metrics: the one table of their names, the counters, and the text exposition.

Spend gauges are read from the store's exact running totals at scrape time, not counted in memory: the ledger is
the single long-lived writer, so they are exact, restart-safe and free of the undercount that short-lived CI
processes cause in Prometheus counters. Operational counters (records written, duplicates, ...) live in memory.

Naming follows Prometheus conventions and `contract.SPEND` (`ai_cost_spend_USD_total`): the `USD` unit suffix keeps
its case, counters end in `_total`, gauges have no suffix beyond the unit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Protocol, runtime_checkable

from otel_ai_cost import contract
from otel_ai_cost.ledger.store import LedgerStore, UsageQuery

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# The metric names are part of the telemetry contract: alert rules and dashboards are generated from it.
MetricDef = contract.PrometheusMetric
CALLS = contract.LEDGER_CALLS
DUPLICATES = contract.LEDGER_DUPLICATES
HTTP_REQUESTS = contract.LEDGER_HTTP_REQUESTS
RECORDS_WRITTEN = contract.LEDGER_RECORDS_WRITTEN
SPANS_IGNORED = contract.LEDGER_SPANS_IGNORED
SPANS_RECEIVED = contract.LEDGER_SPANS_RECEIVED
SPANS_REJECTED = contract.LEDGER_SPANS_REJECTED
SPEND = contract.LEDGER_SPEND
SPEND_BY_MODEL = contract.LEDGER_SPEND_BY_MODEL
SPEND_BY_OPERATION_TYPE = contract.LEDGER_SPEND_BY_OPERATION_TYPE
SPEND_BY_TEAM = contract.LEDGER_SPEND_BY_TEAM
STORE_UP = contract.LEDGER_STORE_UP
UNPRICED_CALLS = contract.LEDGER_UNPRICED_CALLS
WRITE_FAILURES = contract.LEDGER_WRITE_FAILURES
WRITE_RETRIES = contract.LEDGER_WRITE_RETRIES

COUNTERS: tuple[MetricDef, ...] = (
    SPANS_RECEIVED,
    SPANS_IGNORED,
    SPANS_REJECTED,
    RECORDS_WRITTEN,
    DUPLICATES,
    WRITE_FAILURES,
    WRITE_RETRIES,
    HTTP_REQUESTS,
)
GAUGES: tuple[MetricDef, ...] = (
    SPEND, SPEND_BY_MODEL, SPEND_BY_TEAM, SPEND_BY_OPERATION_TYPE, CALLS, UNPRICED_CALLS, STORE_UP,
)  # fmt: skip
METRICS: tuple[MetricDef, ...] = GAUGES + COUNTERS

PERIOD_DAY = "day"
PERIOD_MONTH = "month"
SCOPED_SPEND_CACHE_S = 30.0  # per-team / per-operation-type spend: an aggregate, so cached
# (the record field each scoped gauge groups by, and the gauge)
SCOPED_GAUGES: tuple[tuple[str, MetricDef], ...] = (
    ("team", SPEND_BY_TEAM),
    ("operation_type", SPEND_BY_OPERATION_TYPE),
)
MAX_TRACKED_ENVIRONMENTS = 1000  # environments are few; the bound only guards memory against garbage input


@runtime_checkable
class ListsEnvironments(Protocol):
    """Optional store method: every environment the store has records for, read cheaply (the DynamoDB store keeps
    a registry; a mapping such as {environment: shards} iterates as the names). Stores without it are asked
    through `aggregate` over the current month instead (cached)."""

    def environments(self) -> Iterable[str]: ...


class ServiceStats:
    """Thread-safe in-memory counters, plus the environments this process has written records for."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, tuple[str, ...]], int] = {}
        self._environments: set[str] = set()

    def add(self, metric: MetricDef, value: int = 1, labels: tuple[str, ...] = ()) -> None:
        if len(labels) != len(metric.labels):
            raise ValueError(f"{metric.name} takes labels {metric.labels}, got {labels}")
        with self._lock:
            key = (metric.name, labels)
            self._values[key] = self._values.get(key, 0) + value

    def saw_environments(self, environments: Iterable[str]) -> None:
        with self._lock:
            for environment in environments:
                if len(self._environments) >= MAX_TRACKED_ENVIRONMENTS:
                    break
                self._environments.add(environment)

    def value(self, metric: MetricDef, labels: tuple[str, ...] = ()) -> int:
        with self._lock:
            return self._values.get((metric.name, labels), 0)

    def environments(self) -> set[str]:
        with self._lock:
            return set(self._environments)

    def samples(self, metric: MetricDef) -> list[tuple[tuple[str, ...], int]]:
        with self._lock:
            found = [(labels, value) for (name, labels), value in self._values.items() if name == metric.name]
        return sorted(found) or ([((), 0)] if not metric.labels else [])


class EnvironmentFinder:
    """The environments to report spend for: those the store lists (or, failing that, those with records this
    month), plus those this process has written. The fallback through `aggregate` groups a month of records, so its
    answer is cached."""

    def __init__(
        self,
        store: LedgerStore,
        stats: ServiceStats,
        cache_s: float = 60.0,
        scoped_cache_s: float = SCOPED_SPEND_CACHE_S,
    ) -> None:
        self._store = store
        self._stats = stats
        self._cache_s = cache_s
        self._scoped_cache_s = scoped_cache_s
        self._cached: tuple[float, str, frozenset[str]] | None = None
        self._scoped: tuple[float, date, dict[str, list[tuple[tuple[str, ...], str]]]] | None = None
        self._lock = threading.Lock()

    def scoped_spend(self, today: date) -> dict[str, list[tuple[tuple[str, ...], str]]]:
        """Samples of the per-team and per-operation-type spend gauges: exact sums from `aggregate` over the UTC
        day and month so far, grouped by environment and the field. An aggregate may read records (DynamoDB), so
        the answer is cached for `scoped_cache_s` (the gauges lag by at most that); records without the field
        are left out."""
        with self._lock:
            now = time.monotonic()
            if self._scoped and self._scoped[1] == today and now - self._scoped[0] < self._scoped_cache_s:
                return self._scoped[2]
        found: dict[str, list[tuple[tuple[str, ...], str]]] = {metric.name: [] for _, metric in SCOPED_GAUGES}
        for period_label, start in ((PERIOD_DAY, today), (PERIOD_MONTH, today.replace(day=1))):
            query = UsageQuery(start_day=start, end_day=today)
            for field_name, metric in SCOPED_GAUGES:
                for row in self._store.aggregate(query, ["environment", field_name]):
                    values = dict(row.group)
                    if values[field_name]:
                        labels = (values["environment"], period_label, values[field_name])
                        found[metric.name].append((labels, _decimal(row.amount)))
        with self._lock:
            self._scoped = (now, today, found)
        return found

    def environments(self, today: date) -> list[str]:
        month = today.strftime("%Y-%m")
        if isinstance(self._store, ListsEnvironments):
            found = set(self._store.environments())
        else:
            found = set(self._aggregated(today, month))
        return sorted(found | self._stats.environments())

    def _aggregated(self, today: date, month: str) -> frozenset[str]:
        with self._lock:
            now = time.monotonic()
            if self._cached and self._cached[1] == month and now - self._cached[0] < self._cache_s:
                return self._cached[2]
            rows = self._store.aggregate(UsageQuery(start_day=today.replace(day=1), end_day=today), ["environment"])
            found = frozenset(value for row in rows for name, value in row.group if name == "environment")
            self._cached = (now, month, found)
            return found


def render(
    stats: ServiceStats,
    store: LedgerStore,
    finder: EnvironmentFinder,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> str:
    """The Prometheus text exposition (format 0.0.4). Counters are always there; spend gauges only when the store
    answers (`ai_cost_ledger_store_up` says which), so a store outage never turns into a fake zero spend."""
    today = now().astimezone(timezone.utc).date()
    periods = ((PERIOD_DAY, today.isoformat()), (PERIOD_MONTH, today.strftime("%Y-%m")))
    gauges: dict[str, list[tuple[tuple[str, ...], str]]] = {m.name: [] for m in GAUGES}
    try:
        for environment in finder.environments(today):
            for period_label, period in periods:
                totals = store.totals(environment, period)
                labels = (environment, period_label)
                gauges[SPEND.name].append((labels, _decimal(totals.amount)))
                gauges[CALLS.name].append((labels, str(totals.calls)))
                gauges[UNPRICED_CALLS.name].append((labels, str(totals.unpriced_calls)))
                for (provider, model), amount in sorted(totals.by_provider_model.items()):
                    gauges[SPEND_BY_MODEL.name].append(((*labels, provider, model), _decimal(amount)))
        up = "1"
    except Exception:  # the scrape must still answer with the counters; store_up tells the outage
        gauges = {m.name: [] for m in GAUGES}
        up = "0"
    if up == "1":
        try:  # an aggregate, not the running totals: its failure leaves these gauges out, the others stand
            gauges.update(finder.scoped_spend(today))
        except Exception:
            pass
    gauges[STORE_UP.name] = [((), up)]

    lines: list[str] = []
    for metric in GAUGES:
        _family(lines, metric, gauges[metric.name])
    for metric in COUNTERS:
        _family(lines, metric, [(labels, str(value)) for labels, value in stats.samples(metric)])
    return "\n".join(lines) + "\n"


def _family(lines: list[str], metric: MetricDef, samples: list[tuple[tuple[str, ...], str]]) -> None:
    lines.append(f"# HELP {metric.name} {metric.help}")
    lines.append(f"# TYPE {metric.name} {metric.kind}")
    for labels, value in samples:
        if labels:
            pairs = ",".join(f'{name}="{_escape(v)}"' for name, v in zip(metric.labels, labels, strict=True))
            lines.append(f"{metric.name}{{{pairs}}} {value}")
        else:
            lines.append(f"{metric.name} {value}")


def _decimal(value: Decimal) -> str:
    return format(value, "f")  # exact: no float rounding, no exponent


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
