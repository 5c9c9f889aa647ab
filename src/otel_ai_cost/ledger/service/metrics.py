"""The ledger service's Prometheus metrics: the one table of their names, the counters, and the text exposition.

Spend gauges are read from the store's exact running totals at scrape time, not counted in memory: the ledger is
the single long-lived writer, so they are exact, restart-safe and free of the undercount that short-lived CI
processes cause in Prometheus counters. Operational counters (records written, duplicates, ...) live in memory.

Reconciliation gauges (billed beside tracked, the discrepancy ratio, days by verdict, the last run's time) are read
at scrape time too, from the latest reconciliation run of each provider's day (`LedgerStore.reconciled_days`), over
the current UTC month and the 7 days before today only, so a scrape reads at most about 38 days of verdicts,
whatever the history. A scoped token sees the days of its readable environments; the organization-wide days (bill
accounts mapped to no environment, `ReconciledDay.environment == ""`) only a token that may read every environment.

Naming follows Prometheus conventions and `contract.SPEND` (`ai_cost_spend_USD_total`): the `USD` unit suffix keeps
its case, counters end in `_total`, gauges have no suffix beyond the unit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Context, Decimal, Inexact, Rounded
from typing import Protocol, TypeVar, runtime_checkable

from otel_ai_cost import contract
from otel_ai_cost.ledger.api_keys import lookback_start
from otel_ai_cost.ledger.store import BilledQuery, LedgerStore, Totals, UsageQuery

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# The metric names are part of the telemetry contract: alert rules and dashboards are generated from it.
MetricDef = contract.PrometheusMetric
CALLS = contract.LEDGER_CALLS
CONNECTIONS_EVICTED = contract.LEDGER_CONNECTIONS_EVICTED
CONNECTIONS_REFUSED = contract.LEDGER_CONNECTIONS_REFUSED
CONNECTIONS_TIMED_OUT = contract.LEDGER_CONNECTIONS_TIMED_OUT
DUPLICATES = contract.LEDGER_DUPLICATES
HTTP_REQUESTS = contract.LEDGER_HTTP_REQUESTS
RECORD_CONFLICTS = contract.LEDGER_RECORD_CONFLICTS
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
BILLED = contract.LEDGER_BILLED
RECONCILED_TRACKED = contract.LEDGER_RECONCILED_TRACKED
DISCREPANCY_RATIO = contract.LEDGER_RECONCILIATION_DISCREPANCY_RATIO
RECONCILED_DAYS = contract.LEDGER_RECONCILIATION_DAYS
LAST_RUN = contract.LEDGER_RECONCILIATION_LAST_RUN
SHARED_API_KEYS = contract.LEDGER_SHARED_API_KEYS

COUNTERS: tuple[MetricDef, ...] = (
    SPANS_RECEIVED,
    SPANS_IGNORED,
    SPANS_REJECTED,
    RECORDS_WRITTEN,
    DUPLICATES,
    RECORD_CONFLICTS,
    WRITE_FAILURES,
    WRITE_RETRIES,
    HTTP_REQUESTS,
    CONNECTIONS_EVICTED,
    CONNECTIONS_TIMED_OUT,
    CONNECTIONS_REFUSED,
)
RECONCILIATION: tuple[MetricDef, ...] = (BILLED, RECONCILED_TRACKED, DISCREPANCY_RATIO, RECONCILED_DAYS, LAST_RUN)
GAUGES: tuple[MetricDef, ...] = (
    SPEND, SPEND_BY_MODEL, SPEND_BY_TEAM, SPEND_BY_OPERATION_TYPE, CALLS, UNPRICED_CALLS, STORE_UP, *RECONCILIATION,
    SHARED_API_KEYS,
)  # fmt: skip
METRICS: tuple[MetricDef, ...] = GAUGES + COUNTERS

PERIOD_DAY = "day"
PERIOD_MONTH = "month"
MAX_TRACKED_ENVIRONMENTS = 1000  # environments are few; the bound only guards memory against garbage input
# Label bounds (docs/ledger.md, "Bounded labels"): models, teams and operation types are chosen by whoever sends
# spans, so each family keeps the top N values by spend per (environment, period) and sums the rest into OTHER;
# environments are bounded the same way. Sums over a family's series stay exact.
OTHER = "other"
DEFAULT_TOP_N = 20
DEFAULT_MAX_ENVIRONMENTS = 20
_EXACT = Context(prec=400, traps=[Inexact, Rounded])  # folding amounts into `other` must never round


@dataclass(frozen=True)
class LabelBounds:
    """How many label values /metrics shows: `top_n` models, teams and operation types per (environment,
    period), and `environments` environments (by month-to-date spend); the rest of each is summed into `other`."""

    top_n: int = DEFAULT_TOP_N
    environments: int = DEFAULT_MAX_ENVIRONMENTS

    def __post_init__(self) -> None:
        if self.top_n < 1 or self.environments < 1:
            raise ValueError(f"label bounds must be at least 1, got {self}")


@runtime_checkable
class ListsEnvironments(Protocol):
    """Optional store method: every environment the store has records for, read cheaply (the DynamoDB store keeps
    a registry; a mapping such as {environment: shards} iterates as the names). Stores without it are asked
    through `aggregate` over the current month instead (cached)."""

    def environments(self) -> Iterable[str]: ...


class ServiceStats:
    """Thread-safe in-memory counters, plus the environments this process has written records for.

    A counter kept elsewhere (the connection table's) is `observe`d: read from its owner at each scrape."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, tuple[str, ...]], int] = {}
        self._observed: dict[str, Callable[[], int]] = {}
        self._environments: set[str] = set()

    def observe(self, metric: MetricDef, read: Callable[[], int]) -> None:
        """`metric` (a counter without labels) is `read()` whenever it is exposed."""
        if metric.labels:
            raise ValueError(f"{metric.name}: only a counter without labels can be observed")
        with self._lock:
            self._observed[metric.name] = read

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
            read = self._observed.get(metric.name)
        if read is not None:
            return [((), read())]
        with self._lock:
            found = [(labels, value) for (name, labels), value in self._values.items() if name == metric.name]
        return sorted(found) or ([((), 0)] if not metric.labels else [])


class EnvironmentFinder:
    """The environments to report spend for: those the store lists (or, failing that, those with records this
    month), plus those this process has written. The fallback through `aggregate` groups a month of records, so its
    answer is cached."""

    def __init__(self, store: LedgerStore, stats: ServiceStats, cache_s: float = 60.0) -> None:
        self._store = store
        self._stats = stats
        self._cache_s = cache_s
        self._cached: tuple[float, str, frozenset[str]] | None = None
        self._lock = threading.Lock()

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


Samples = list[tuple[tuple[str, ...], str]]
_Key = TypeVar("_Key", str, tuple[str, str])


def render(
    stats: ServiceStats,
    store: LedgerStore,
    finder: EnvironmentFinder,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    bounds: LabelBounds | None = None,
    readable: Callable[[str], bool] | None = None,
) -> str:
    """The Prometheus text exposition (format 0.0.4). Counters are always there; spend and reconciliation gauges
    only when the store answers (`ai_cost_ledger_store_up` says which), so a store outage never turns into a fake
    zero spend.

    Every spend gauge is read from the running totals (two reads per environment: the day and the month), whatever
    the number of records; the reconciliation gauges from one bounded `reconciled_days` read. `readable` limits the
    environments shown (a scoped token); `bounds` limits label values (providers: the top N)."""
    bounds = bounds or LabelBounds()
    today = now().astimezone(timezone.utc).date()
    try:
        environments = [e for e in finder.environments(today) if readable is None or readable(e)]
        gauges = _spend_gauges(store, environments, today, bounds)
        gauges.update(_reconciliation_gauges(store, today, bounds.top_n, readable))
        gauges[SHARED_API_KEYS.name] = _shared_api_keys(store, today, bounds.top_n, readable)
        up = "1"
    except Exception:  # the scrape must still answer with the counters; store_up tells the outage
        gauges = {m.name: [] for m in GAUGES}
        up = "0"
    gauges[STORE_UP.name] = [((), up)]

    lines: list[str] = []
    for metric in GAUGES:
        _family(lines, metric, gauges[metric.name])
    for metric in COUNTERS:
        _family(lines, metric, [(labels, str(value)) for labels, value in stats.samples(metric)])
    return "\n".join(lines) + "\n"


def _spend_gauges(
    store: LedgerStore, environments: Sequence[str], today: date, bounds: LabelBounds
) -> dict[str, Samples]:
    """The spend gauges' samples, environments beyond the bound folded into `other`."""
    periods = ((PERIOD_DAY, today.isoformat()), (PERIOD_MONTH, today.strftime("%Y-%m")))
    read = {env: {label: store.totals(env, period) for label, period in periods} for env in environments}
    gauges: dict[str, Samples] = {m.name: [] for m in GAUGES}
    for environment, members in _fold_environments(read, bounds.environments).items():
        for period_label, _ in periods:
            totals = _merge([read[member][period_label] for member in members])
            _add_period(gauges, (environment, period_label), totals, bounds.top_n)
    return gauges


def _reconciliation_gauges(
    store: LedgerStore, today: date, top_n: int, readable: Callable[[str], bool] | None
) -> dict[str, Samples]:
    """The reconciliation gauges' samples, from the latest run's verdict of each (provider, day, environment) of the
    current UTC month and the RECONCILIATION_LOOKBACK_DAYS before today.

    A day "with a bill" is one whose `billed` is known. The top `top_n` providers (by the month's billed amount,
    tracked where no bill yet) keep their name, the rest are summed as `other`; the sums stay exact."""
    out: dict[str, Samples] = {metric.name: [] for metric in RECONCILIATION}
    read = getattr(store, "reconciled_days", None)
    if read is None:  # a store from code that predates the billed side: nothing reconciled, nothing shown
        return out
    month_start = today.replace(day=1)
    start = min(month_start, today - timedelta(days=contract.RECONCILIATION_LOOKBACK_DAYS))
    # "" (organization-wide) is readable only by a token that may read every environment: tokens-file environment
    # names are never empty, so `readable("")` holds for exactly those.
    query = BilledQuery(start_day=start, end_day=today)
    days = [day for day in read(query) if readable is None or readable(day.environment)]
    if not days:
        return out
    out[LAST_RUN.name].append(((), _unix_seconds(max(day.finished_at for day in days))))

    month = [day for day in days if day.day >= month_start]
    weight = {day.provider: Decimal(0) for day in days}
    for day in month:
        weight[day.provider] = _EXACT.add(weight[day.provider], day.tracked if day.billed is None else day.billed)
    kept = {provider for provider, _ in _bound(weight, top_n, OTHER) if provider != OTHER}

    def label(provider: str) -> str:
        return provider if provider in kept else OTHER

    # period=day: each provider's latest day with a bill (all its environments' parts of that day).
    billed_days = [(day, day.billed) for day in days if day.billed is not None]
    last_billed: dict[str, date] = {}
    for day, _ in billed_days:
        last_billed[day.provider] = max(last_billed.get(day.provider, day.day), day.day)
    sums: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    for day, amount in billed_days:
        periods = [contract.RECONCILIATION_PERIOD_MONTH] if day.day >= month_start else []
        if day.day == last_billed[day.provider]:
            periods.append(contract.RECONCILIATION_PERIOD_DAY)
        for period in periods:
            key = (label(day.provider), period)
            tracked, billed = sums.get(key, (Decimal(0), Decimal(0)))
            sums[key] = (_EXACT.add(tracked, day.tracked), _EXACT.add(billed, amount))
    for (provider, period), (tracked, billed) in sorted(sums.items()):
        out[BILLED.name].append(((provider, period), _decimal(billed)))
        out[RECONCILED_TRACKED.name].append(((provider, period), _decimal(tracked)))
        if period == contract.RECONCILIATION_PERIOD_MONTH and billed != 0:
            out[DISCREPANCY_RATIO.name].append(((provider,), _decimal((tracked - billed) / billed)))

    verdicts: dict[str, dict[str, int]] = {}
    for day in month:
        counts = verdicts.setdefault(label(day.provider), dict.fromkeys(contract.RECONCILIATION_VERDICTS, 0))
        verdict = day.verdict if day.verdict in contract.RECONCILIATION_VERDICTS else OTHER
        counts[verdict] = counts.get(verdict, 0) + 1
    for provider, counts in sorted(verdicts.items()):
        for verdict, count in counts.items():
            out[RECONCILED_DAYS.name].append(((provider, verdict), str(count)))
    return out


def _shared_api_keys(store: LedgerStore, today: date, top_n: int, readable: Callable[[str], bool] | None) -> Samples:
    """Per provider, the keys seen in more than one (readable) environment over the lookback window: a count, the
    fingerprints themselves are never labels (`otel-ai-cost doctor` names them). Absent when there are none."""
    read = getattr(store, "shared_api_keys", None)
    if read is None:  # a store that keeps no fingerprints
        return []
    counts: dict[str, Decimal] = {}
    for key in read(lookback_start(today)):
        environments = [e for e in key.environments if readable is None or readable(e)]
        if len(environments) > 1:
            counts[key.provider] = counts.get(key.provider, Decimal(0)) + 1
    return [((provider,), _decimal(count)) for provider, count in _bound(counts, top_n, OTHER)]


def _unix_seconds(moment: datetime) -> str:
    """Exact to the microsecond (no float on the way)."""
    micros = (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)
    return _decimal(Decimal(micros).scaleb(-6))


def _fold_environments(read: Mapping[str, Mapping[str, Totals]], limit: int) -> dict[str, list[str]]:
    """{label: environments summed under it}: the `limit` environments with the most month-to-date spend keep
    their name, the rest (and a real environment named `other`, once folding happens) are summed as `other`."""
    if len(read) <= limit:
        return {environment: [environment] for environment in sorted(read)}
    ranked = sorted(read, key=lambda env: (-read[env][PERIOD_MONTH].amount, env))
    kept = [env for env in ranked if env != OTHER][:limit]
    out = {environment: [environment] for environment in sorted(kept)}
    out[OTHER] = [env for env in ranked if env not in out]
    return out


def _merge(parts: Sequence[Totals]) -> Totals:
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    return Totals(
        period=first.period,
        environment=OTHER,
        amount=_sum(p.amount for p in parts),
        calls=sum(p.calls for p in parts),
        unpriced_calls=sum(p.unpriced_calls for p in parts),
        unknown_cost_calls=sum(p.unknown_cost_calls for p in parts),
        by_provider_model=_sum_maps(p.by_provider_model for p in parts),
        by_team=_sum_maps(p.by_team for p in parts),
        by_operation_type=_sum_maps(p.by_operation_type for p in parts),
    )


def _add_period(gauges: dict[str, Samples], labels: tuple[str, str], totals: Totals, top_n: int) -> None:
    gauges[SPEND.name].append((labels, _decimal(totals.amount)))
    gauges[CALLS.name].append((labels, str(totals.calls)))
    gauges[UNPRICED_CALLS.name].append((labels, str(totals.unpriced_calls)))
    for (provider, model), amount in _bound_models(totals.by_provider_model, top_n):
        gauges[SPEND_BY_MODEL.name].append(((*labels, provider, model), _decimal(amount)))
    for metric, values in ((SPEND_BY_TEAM, totals.by_team), (SPEND_BY_OPERATION_TYPE, totals.by_operation_type)):
        named = {value: amount for value, amount in values.items() if value}  # calls without one: left out
        # `(unattributed)` (strict attribution) keeps its own series whatever its rank: its alert divides it by
        # the environment's spend, which a fold into `other` would hide.
        unattributed = named.pop(contract.UNATTRIBUTED, None) if metric is SPEND_BY_OPERATION_TYPE else None
        bounded = _bound(named, top_n, OTHER)
        if unattributed is not None:
            bounded = sorted([*bounded, (contract.UNATTRIBUTED, unattributed)])
        for value, amount in bounded:
            gauges[metric.name].append(((*labels, value), _decimal(amount)))


def _bound(values: Mapping[_Key, Decimal], top_n: int, other: _Key) -> list[tuple[_Key, Decimal]]:
    """The `top_n` values by amount (ties by name), the rest summed under `other`; sorted by key."""
    if len(values) <= top_n:
        return sorted(values.items())
    ranked = sorted((key for key in values if key != other), key=lambda key: (-values[key], key))
    out = {key: values[key] for key in ranked[:top_n]}
    out[other] = _sum(amount for key, amount in values.items() if key not in out)
    return sorted(out.items())


def _bound_models(values: Mapping[tuple[str, str], Decimal], top_n: int) -> list[tuple[tuple[str, str], Decimal]]:
    """Per (provider, model): the top N providers keep their name (provider budgets sum this family by provider),
    the rest become provider `other`; then the top N pairs keep their model and each provider's remaining models
    are summed as model `other`. At most N + (providers shown) + 1 series; sums per provider stay exact."""
    by_provider: dict[str, Decimal] = {}
    for (provider, _), amount in values.items():
        by_provider[provider] = _EXACT.add(by_provider.get(provider, Decimal(0)), amount)
    providers = {provider for provider, _ in _bound(by_provider, top_n, OTHER) if provider != OTHER}
    renamed: dict[tuple[str, str], Decimal] = {}
    for (provider, model), amount in values.items():
        key = (provider, model) if provider in providers else (OTHER, OTHER)
        renamed[key] = _EXACT.add(renamed.get(key, Decimal(0)), amount)
    if len(renamed) <= top_n:
        return sorted(renamed.items())
    ranked = sorted((k for k in renamed if k[1] != OTHER), key=lambda key: (-renamed[key], key))
    out = {key: renamed[key] for key in ranked[:top_n]}
    for (provider, model), amount in renamed.items():
        if (provider, model) not in out:
            key = (provider, OTHER)
            out[key] = _EXACT.add(out.get(key, Decimal(0)), amount)
    return sorted(out.items())


def _sum(amounts: Iterable[Decimal]) -> Decimal:
    total = Decimal(0)
    for amount in amounts:
        total = _EXACT.add(total, amount)
    return total


def _sum_maps(maps: Iterable[Mapping[_Key, Decimal]]) -> dict[_Key, Decimal]:
    out: dict[_Key, Decimal] = {}
    for values in maps:
        for key, amount in values.items():
            out[key] = _EXACT.add(out.get(key, Decimal(0)), amount)
    return out


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
