"""The query API: `GET /v1/usage` (this project's fields) and `GET /ai_usage` (the seeds' route and answer).

`/v1/usage` with `aggregation=day,service` answers exact sums per group (computed by the store); without it, the
matching records, oldest first, a page at a time (`limit`, and the `next_cursor` of the previous page as `cursor`).
Its `service` is the record's `service` (the OTel `service.name`).

`/ai_usage` answers the legacy tracker's query (`?start_date=&end_date=&service=openai&operation=&aggregation=day,
service`) in the legacy shape (`summary.total_cost_usd`, `aggregations.by_day`, ...): there `service` means the
provider (`openai`, `anthropic`, ...), as in the seeds and `usage.jsonl`. Its amounts are JSON numbers, as the
legacy answer's, written from their exact decimal text (`to_json`); the ledger service and the AWS Lambda handler
(`otel_ai_cost.api`) both answer it with `parse_ai_usage`, `answer` and `to_json`.

`/v1/usage` amounts are exact decimal strings. Calls of unknown cost (`otel_ai_cost.ledger.unknown_cost`: unpriced
calls, streams closed before their usage arrived, answers without usage) are counted in `unknown_cost_calls` on
every row, group and summary, never summed as $0: where that count is non-zero, a `note` says the amount is a lower
bound (on `/ai_usage` too, where every call is still counted in `api_calls`).

`/v1/usage?aggregation=day,provider&billed=true&start_date=&end_date=` adds, beside the tracked aggregation, the
billed side of the same days (`billed`): per UTC day and provider, what the provider billed (the stored billed lines
of `otel-ai-cost reconcile`, an exact decimal string; null when no bill is stored yet), whether that bill is final,
the latest reconciliation run's verdict, and `difference` = tracked - billed. It needs an aggregation with `day`
and/or `provider`, both dates (at most MAX_BILLED_DAYS days) and no filter but `provider` and `environment`: a bill
has no service, model, team or job, so a narrower tracked figure beside a whole bill would read as a discrepancy.
A token scoped to some environments sees only the bill's lines whose account is mapped to one of them; lines mapped
to no environment (organization-wide) only a token that may read every environment.

`/v1/usage?anomalies=true&end_date=2026-11-22` answers the anomalies of the days `start_date`..`end_date` (only
`end_date`: that day; at most MAX_ANOMALY_DAYS days), each day against its trailing 7 days, as the daily report
finds them (`otel_ai_cost.reports.anomalies`: spikes per environment, service and operation type at `factor`
times the 7-day average, default 3; models and operation types seen for the first time; unknown-cost calls
appearing; environments jumping from about $0): `{"query", "days", "factor", "baseline_days", "anomalies": [...]}`,
each anomaly in the daily report's JSON shape (`type`, `day`, `environment`, `description`, ...). It takes no
aggregation or paging and no filter but `environment`: a spike is measured against its environment's own history.
A parameter of `/v1/usage` rather than a route of its own, so that it shares the route's tokens, scoping and errors.

Unknown or malformed parameters are refused (400) naming the parameter: a typo in a filter must not silently widen a
cost query to everything.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Protocol

from otel_ai_cost.contract import CURRENCY, LEGACY_OPERATIONS, PricingStatus
from otel_ai_cost.ledger.record import LedgerRecord, format_timestamp, parse_timestamp
from otel_ai_cost.ledger.store import EXACT_SUMS, GROUP_BY_FIELDS, AggregateRow, BilledQuery, UsageQuery, sum_rows
from otel_ai_cost.ledger.unknown_cost import is_cost_unknown
from otel_ai_cost.reconcile.billed import BilledLine
from otel_ai_cost.reconcile.runs import ReconciledDay
from otel_ai_cost.reports.anomalies import BASELINE_DAYS, DEFAULT_FACTOR, divide

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Query-string names of the UsageQuery filters that map one to one (dates are parsed separately).
_FILTERS = tuple(f.name for f in fields(UsageQuery) if f.name not in ("start_day", "end_day"))
PARAMETERS = frozenset(
    {"start_date", "end_date", "aggregation", "limit", "cursor", "billed", "anomalies", "factor", *_FILTERS}
)
MAX_BILLED_DAYS = 366  # billed=true reads every billed line of the range: a year at most per request
BILLED_GROUPS = ("day", "provider")  # billed=true needs an aggregation with at least one of these
BILLED_FILTERS = ("provider", "environment")  # the filters a bill can honour; billed=true refuses the others
MAX_ANOMALY_DAYS = 31  # anomalies=true checks at most a month of days per request
MAX_FACTOR = Decimal(1000)
_SUMS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "reasoning_output_tokens",
)


class UsageReader(Protocol):
    """What the query API reads: a store, or a store limited to a token's environments (`access.ScopedReader`)."""

    def query(self, query: UsageQuery) -> Iterator[LedgerRecord]: ...

    def aggregate(self, query: UsageQuery, group_by: Sequence[str]) -> list[AggregateRow]: ...


class BilledReader(UsageReader, Protocol):
    """What `billed=true` reads besides: the store's billed side (limited to a token's environments by
    `access.ScopedReader`)."""

    def billed_lines(self, query: BilledQuery) -> list[BilledLine]: ...

    def reconciled_days(self, query: BilledQuery) -> list[ReconciledDay]: ...


class BadParameter(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class UsageRequest:
    query: UsageQuery
    group_by: tuple[str, ...]  # empty: list records
    limit: int
    cursor: Cursor | None
    billed: bool = False  # billed=true: the billed side beside the aggregation
    anomalies: bool = False  # anomalies=true: the anomalies of the days, not usage
    factor: Decimal = DEFAULT_FACTOR  # with anomalies=true: the spike factor


@dataclass(frozen=True)
class Cursor:
    """Where the previous page stopped: its last timestamp, and the records at that timestamp already returned
    (identities, so the next page is right whatever order the store gives records sharing a timestamp)."""

    timestamp: datetime
    seen: frozenset[tuple[str, str]]

    def encode(self) -> str:
        data = {"t": format_timestamp(self.timestamp), "k": sorted(f"{t}/{s}" for t, s in self.seen)}
        return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
            seen = frozenset(tuple(key.split("/", 1)) for key in data["k"])
            if any(len(key) != 2 for key in seen):
                raise ValueError("bad key")
            return cls(parse_timestamp(data["t"]), seen)  # type: ignore[arg-type]
        except (binascii.Error, ValueError, KeyError, TypeError, AttributeError):
            raise BadParameter("cursor", "not a cursor returned by this API") from None


def parse_parameters(params: Mapping[str, Sequence[str]]) -> UsageRequest:
    """Validates the query string (as `urllib.parse.parse_qs` gives it). Raises BadParameter."""
    for name, values in params.items():
        if name not in PARAMETERS:
            raise BadParameter(name, f"unknown parameter; expected one of {', '.join(sorted(PARAMETERS))}")
        if len(values) != 1:
            raise BadParameter(name, "given more than once")
    value = {name: values[0] for name, values in params.items()}

    start = _date(value, "start_date")
    end = _date(value, "end_date")
    if start and end and start > end:
        raise BadParameter("start_date", f"{start} is after end_date {end}")

    group_by: tuple[str, ...] = ()
    if "aggregation" in value:
        group_by = tuple(part.strip() for part in value["aggregation"].split(",") if part.strip())
        unknown = [part for part in group_by if part not in GROUP_BY_FIELDS]
        if unknown or not group_by or len(set(group_by)) != len(group_by):
            raise BadParameter(
                "aggregation", f"a comma list of distinct fields among {', '.join(GROUP_BY_FIELDS)}; got {unknown}"
            )
    if group_by and ("limit" in value or "cursor" in value):
        raise BadParameter("limit" if "limit" in value else "cursor", "paging applies to records, not aggregation")

    limit = DEFAULT_LIMIT
    if "limit" in value:
        try:
            limit = int(value["limit"])
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            raise BadParameter("limit", f"an integer from 1 to {MAX_LIMIT}")
    cursor = Cursor.decode(value["cursor"]) if "cursor" in value else None

    filters: dict[str, Any] = {}
    for name in _FILTERS:
        if name in value:
            if not value[name]:
                raise BadParameter(name, "empty")
            filters[name] = value[name]
    if "trace_id" in filters:
        filters["trace_id"] = filters["trace_id"].lower()
    billed = _billed_parameter(value, group_by, start, end, filters)
    anomalies, factor = _anomalies_parameters(value, group_by, start, end, filters)
    if anomalies and start is None:
        start = end  # one day: end_date's
    query = UsageQuery(start_day=start, end_day=end, **filters)
    return UsageRequest(query, group_by, limit, cursor, billed, anomalies, factor)


def _anomalies_parameters(
    value: Mapping[str, str], group_by: Sequence[str], start: date | None, end: date | None, filters: Mapping[str, Any]
) -> tuple[bool, Decimal]:
    """`anomalies=true|false` and `factor`, and what `true` requires: `end_date`, at most MAX_ANOMALY_DAYS days, no
    aggregation, paging or billed side, and no filter but `environment`."""
    text = value.get("anomalies", "false")
    if text not in ("true", "false"):
        raise BadParameter("anomalies", f"true or false, got {text!r}")
    if text == "false":
        if "factor" in value:
            raise BadParameter("factor", "applies to anomalies=true only")
        return False, DEFAULT_FACTOR
    for name in ("aggregation", "limit", "cursor", "billed"):
        if name in value:
            raise BadParameter(
                name, "anomalies=true answers the anomalies of the days: no aggregation, paging or billed"
            )
    if end is None:
        raise BadParameter("end_date", "required with anomalies=true (the last day checked)")
    if start is not None and (end - start).days + 1 > MAX_ANOMALY_DAYS:
        raise BadParameter("start_date", f"anomalies=true checks at most {MAX_ANOMALY_DAYS} days")
    for name in filters:
        if name != "environment":
            raise BadParameter(name, "with anomalies=true, filter by environment only")
    factor = DEFAULT_FACTOR
    if "factor" in value:
        try:
            factor = Decimal(value["factor"])
        except InvalidOperation:
            factor = Decimal(0)
        if not factor.is_finite() or not 1 < factor <= MAX_FACTOR:
            raise BadParameter("factor", f"a number above 1 and at most {MAX_FACTOR} (3 = 3x the 7-day average)")
    return True, factor


def _billed_parameter(
    value: Mapping[str, str], group_by: Sequence[str], start: date | None, end: date | None, filters: Mapping[str, Any]
) -> bool:
    """`billed=true|false`, and what `true` requires: an aggregation by day and/or provider, both dates within
    MAX_BILLED_DAYS, and no filter a bill cannot honour."""
    text = value.get("billed", "false")
    if text not in ("true", "false"):
        raise BadParameter("billed", f"true or false, got {text!r}")
    if text == "false":
        return False
    if not any(name in group_by for name in BILLED_GROUPS):
        raise BadParameter(
            "billed", "billed=true needs an aggregation that includes day and/or provider (aggregation=day,provider)"
        )
    for name, day in (("start_date", start), ("end_date", end)):
        if day is None:
            raise BadParameter(name, "required with billed=true (the bill is read day by day)")
    assert start is not None and end is not None
    if (end - start).days + 1 > MAX_BILLED_DAYS:
        raise BadParameter("end_date", f"billed=true covers at most {MAX_BILLED_DAYS} days")
    for name in filters:
        if name not in BILLED_FILTERS:
            raise BadParameter(
                name, f"a bill has no {name}: with billed=true, filter by {' and '.join(BILLED_FILTERS)} only"
            )
    return True


def _date(value: Mapping[str, str], name: str) -> date | None:
    if name not in value:
        return None
    try:
        return date.fromisoformat(value[name])
    except ValueError:
        raise BadParameter(name, f"not a date (YYYY-MM-DD): {value[name]!r}") from None


def answer(store: UsageReader, request: UsageRequest | AiUsageRequest) -> dict[str, Any]:
    """The JSON document for a validated request (`billed=true` needs a `BilledReader`)."""
    if isinstance(request, AiUsageRequest):
        return _ai_usage(store, request)
    if request.anomalies:
        return _anomalies(store, request)
    if request.group_by:
        document = _aggregated(store, request)
        if request.billed:
            document["billed"] = _billed_side(store, request)  # type: ignore[arg-type]
        return document
    return _records(store, request)


def _aggregated(store: UsageReader, request: UsageRequest) -> dict[str, Any]:
    rows = store.aggregate(request.query, list(request.group_by))
    summary = _row(sum_rows(rows))  # the group is (): the summary has the rows' measures only
    out_rows = [_row(row) for row in rows]
    return {"query": _echo(request), "aggregation": list(request.group_by), "summary": summary, "rows": out_rows}


def _anomalies(store: UsageReader, request: UsageRequest) -> dict[str, Any]:
    """The anomalies of the request's days, read through `store` (the token's environments only)."""
    # Imported here: the reports import the budgets, which import this package's metrics (an import cycle at load).
    from otel_ai_cost.reports.daily import store_anomalies
    from otel_ai_cost.reports.json_report import anomaly_dict

    query = request.query
    assert query.start_day is not None and query.end_day is not None  # parse_parameters sets both
    days = [query.start_day + timedelta(days=n) for n in range((query.end_day - query.start_day).days + 1)]
    found = store_anomalies(store, days, environment=query.environment, factor=request.factor)
    return {
        "query": _echo(request),
        "days": [day.isoformat() for day in days],
        "factor": format(request.factor, "f"),
        "baseline_days": BASELINE_DAYS,
        "anomalies": [anomaly_dict(anomaly) for anomaly in found],
    }


def _billed_side(store: BilledReader, request: UsageRequest) -> dict[str, Any]:
    """Per UTC day and provider: tracked (the ledger, the request's filters), billed (the stored billed lines),
    whether the bill is final, the latest run's verdict, and tracked - billed."""
    query = request.query
    assert query.start_day is not None and query.end_day is not None  # parse_parameters requires both
    environments = None if query.environment is None else frozenset({query.environment})
    billed_query = BilledQuery(query.start_day, query.end_day, provider=query.provider, environments=environments)
    tracked: dict[tuple[str, str], AggregateRow] = {}
    for row in store.aggregate(query, ["day", "provider"]):
        group = dict(row.group)
        tracked[(group["day"], group["provider"])] = row
    lines: dict[tuple[str, str], list[BilledLine]] = {}
    for line in store.billed_lines(billed_query):
        lines.setdefault((line.day.isoformat(), line.provider), []).append(line)
    verdicts: dict[tuple[str, str], list[ReconciledDay]] = {}
    for day in store.reconciled_days(billed_query):
        verdicts.setdefault((day.day.isoformat(), day.provider), []).append(day)

    rows = []
    summed = {"tracked": Decimal(0), "billed": Decimal(0)}
    unknown = 0
    final = True
    for key in sorted(set(tracked) | set(lines) | set(verdicts)):
        row = _billed_row(key, tracked.get(key), lines.get(key, []), verdicts.get(key, []))
        rows.append(row)
        if row["billed"] is not None:
            summed["tracked"] = EXACT_SUMS.add(summed["tracked"], Decimal(row["tracked"]))
            summed["billed"] = EXACT_SUMS.add(summed["billed"], Decimal(row["billed"]))
            unknown += row["unknown_cost_calls"]
            final = final and row["billed_final"]
    summary: dict[str, Any] = {
        "tracked": format(summed["tracked"], "f"),  # of the rows with a bill only, so that the two compare
        "billed": format(summed["billed"], "f"),
        "difference": format(EXACT_SUMS.subtract(summed["tracked"], summed["billed"]), "f"),
        "billed_final": final,
        "currency": CURRENCY,
        "unknown_cost_calls": unknown,
        "rows_without_bill": sum(1 for row in rows if row["billed"] is None),
    }
    _note_lower_bound(summary, unknown, "tracked")
    return {"summary": summary, "rows": rows}


def _billed_row(
    key: tuple[str, str], tracked: AggregateRow | None, lines: Sequence[BilledLine], days: Sequence[ReconciledDay]
) -> dict[str, Any]:
    amount = Decimal(0) if tracked is None else tracked.amount
    unknown = 0 if tracked is None else tracked.unknown_cost_calls
    billed = None
    if lines:
        billed = Decimal(0)
        for line in lines:
            billed = EXACT_SUMS.add(billed, line.amount)
    ordered = sorted(days, key=lambda day: day.environment)
    agreed = {day.verdict for day in ordered}
    out: dict[str, Any] = {
        "day": key[0],
        "provider": key[1],
        "tracked": format(amount, "f"),
        "unknown_cost_calls": unknown,
        "billed": None if billed is None else format(billed, "f"),
        "billed_final": all(line.final for line in lines) if lines else None,
        "billed_lines": len(lines),
        "difference": None if billed is None else format(EXACT_SUMS.subtract(amount, billed), "f"),
        "currency": CURRENCY,
        # The latest run's verdict; one per environment the bill's accounts are mapped to ("" = organization-wide),
        # and `verdict` only when they agree.
        "verdict": agreed.pop() if len(agreed) == 1 else None,
        "verdicts": [{"environment": day.environment, "verdict": day.verdict} for day in ordered],
        "reconciled_at": format_timestamp(max(day.finished_at for day in ordered)) if ordered else None,
    }
    _note_lower_bound(out, unknown, "tracked")
    return out


def _row(row: AggregateRow) -> dict[str, Any]:
    out: dict[str, Any] = dict(row.group)
    out["amount"] = format(row.amount, "f")
    if row.computed_amount is not None:
        out["computed_amount"] = format(row.computed_amount, "f")
    out["currency"] = CURRENCY
    out["calls"] = row.calls
    out["unpriced_calls"] = row.unpriced_calls
    out["unknown_cost_calls"] = row.unknown_cost_calls
    for name in _SUMS:
        out[name] = getattr(row, name)
    _note_lower_bound(out, row.unknown_cost_calls)
    return out


def _note_lower_bound(out: dict[str, Any], unknown_cost_calls: int, amount: str = "amount") -> None:
    """Says, on a row or summary that includes calls of unknown cost, that its amount is a lower bound."""
    if unknown_cost_calls:
        out["note"] = f"{unknown_cost_calls} call(s) of unknown cost: {amount} is a lower bound"


def _records(store: UsageReader, request: UsageRequest) -> dict[str, Any]:
    query = request.query
    cursor = request.cursor
    if cursor is not None:
        # Let the store skip whole days before the cursor; the rest is skipped here.
        resume_day = cursor.timestamp.date()
        if query.start_day is None or query.start_day < resume_day:
            query = _replace(query, start_day=resume_day)
    page: list[LedgerRecord] = []
    more = False
    for record in store.query(query):
        if cursor is not None:
            if record.timestamp < cursor.timestamp:
                continue
            if record.timestamp == cursor.timestamp and record.key in cursor.seen:
                continue
        if len(page) == request.limit:
            more = True
            break
        page.append(record)
    next_cursor = None
    if more and page:
        last = page[-1].timestamp
        seen = {r.key for r in page if r.timestamp == last}
        if cursor is not None and cursor.timestamp == last:
            seen |= cursor.seen
        next_cursor = Cursor(last, frozenset(seen)).encode()
    return {"query": _echo(request), "records": [r.to_dict() for r in page], "next_cursor": next_cursor}


def _replace(query: UsageQuery, **changes: Any) -> UsageQuery:
    values = {f.name: getattr(query, f.name) for f in fields(query)}
    values.update(changes)
    return UsageQuery(**values)


def _echo(request: UsageRequest) -> dict[str, Any]:
    """The filters applied, as the caller would write them back."""
    out: dict[str, Any] = {}
    query = request.query
    if query.start_day:
        out["start_date"] = query.start_day.isoformat()
    if query.end_day:
        out["end_date"] = query.end_day.isoformat()
    for name in _FILTERS:
        if getattr(query, name) is not None:
            out[name] = getattr(query, name)
    if request.billed:
        out["billed"] = True
    if request.anomalies:
        out["anomalies"] = True
        out["factor"] = format(request.factor, "f")
    return out


# --- GET /ai_usage: the legacy tracker's route ---------------------------------------------------------------------
# Served by the ledger service (`app.py`) and by the AWS Lambda handler (`otel_ai_cost.api`): one parser, one
# aggregation, one encoder, two transports.
AI_USAGE_LEVELS = ("day", "service", "model", "operation", "hour")
AI_USAGE_PARAMETERS = frozenset({"start_date", "end_date", "service", "operation", "aggregation", "environment"})
AI_USAGE_DEFAULT_DAYS = 30  # without start_date: from 30 days before today, as the legacy endpoint
_TOKEN_AVERAGE_PLACES = Decimal("0.01")  # average_tokens_per_call: 2 places, as the legacy endpoint rounds it
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)  # YYYY-MM-DD only (fromisoformat takes more)
_ROLLUP = ("day", "provider", "model", "operation")  # one store aggregate answers every level but the hour
# A legacy client's `operation=completion` still finds its calls: `contract.LEGACY_OPERATIONS`, as the importer maps.


@dataclass(frozen=True)
class AiUsageRequest:
    query: UsageQuery  # the legacy `service` is the provider filter here
    operation: str | None
    levels: tuple[str, ...]
    start: date
    end: date


def parse_ai_usage(params: Mapping[str, Sequence[str]], today: date) -> AiUsageRequest:
    """Validates the legacy query string (as `urllib.parse.parse_qs` gives it; `service` = provider) for the UTC
    day `today`. Raises BadParameter.

    As the legacy endpoint: `start_date` defaults to 30 days before today and `end_date` to today, whether or
    not the other is given; an empty `service` or `operation` means every one; `aggregation` is a comma list
    (default `day`), and may be repeated (API Gateway's HTTP API joins repeats with commas:
    `aggregation=day&aggregation=model` is `day,model` there too), a level named twice counting once. The legacy
    operation names `completion` and `embedding` filter on what they became in the ledger (`chat`, `embeddings`:
    LEGACY_OPERATIONS, the importer's mapping). Unlike it, anything it would have ignored or
    mis-read is refused, naming the parameter: unknown parameters and levels, other repeated parameters, dates not
    YYYY-MM-DD, a start after the end, an empty date or environment."""
    for name, values in params.items():
        if name not in AI_USAGE_PARAMETERS:
            expected = ", ".join(sorted(AI_USAGE_PARAMETERS))
            raise BadParameter(name, f"unknown parameter; expected one of {expected}")
        if len(values) != 1 and name != "aggregation":
            raise BadParameter(name, "given more than once")
    value = {name: ",".join(values) for name, values in params.items()}
    end = _ai_usage_day(value, "end_date") or today
    start = _ai_usage_day(value, "start_date") or today - timedelta(days=AI_USAGE_DEFAULT_DAYS)
    if start > end:
        if "start_date" in value:
            raise BadParameter("start_date", f"{start} is after end_date {end}")
        raise BadParameter(
            "start_date",
            f"defaults to {AI_USAGE_DEFAULT_DAYS} days before today ({start}), which is after end_date {end}: "
            "give start_date",
        )
    parts = [part.strip() for part in value.get("aggregation", "day").split(",")]
    levels = tuple(dict.fromkeys(part for part in parts if part))
    unknown = [level for level in levels if level not in AI_USAGE_LEVELS]
    if unknown or not levels:
        raise BadParameter(
            "aggregation",
            f"a comma list of levels among {', '.join(AI_USAGE_LEVELS)}; got {unknown or value['aggregation']!r}",
        )
    if "environment" in value and not value["environment"]:
        raise BadParameter("environment", "empty")
    query = UsageQuery(
        start_day=start, end_day=end, provider=value.get("service") or None, environment=value.get("environment")
    )
    operation = value.get("operation") or None
    if operation is not None:
        operation = LEGACY_OPERATIONS.get(operation, operation)
    return AiUsageRequest(query, operation, levels, start, end)


def _ai_usage_day(value: Mapping[str, str], name: str) -> date | None:
    if name not in value:
        return None
    text = value[name]
    if not text:
        raise BadParameter(name, "empty; give a date (YYYY-MM-DD) or leave the parameter out")
    try:
        if not _ISO_DAY.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise BadParameter(name, f"not a date (YYYY-MM-DD): {text!r}") from None


class _Group:
    """Exact sums of one `aggregations` entry (or of the summary)."""

    def __init__(self) -> None:
        self.cost = Decimal(0)
        self.tokens = 0
        self.calls = 0
        self.unpriced = 0
        self.unknown = 0
        self.names: dict[str, set[str]] = {}

    def add(self, amount: Decimal, tokens: int, calls: int, unpriced: int, unknown: int, **names: str) -> None:
        self.cost = EXACT_SUMS.add(self.cost, amount)
        self.tokens += tokens
        self.calls += calls
        self.unpriced += unpriced
        self.unknown += unknown
        for key, name in names.items():
            self.names.setdefault(key, set()).add(name)

    def document(self) -> dict[str, Any]:
        """The legacy fields first (`cost_usd`, `tokens`, `api_calls`, the names), then ours."""
        out: dict[str, Any] = {"cost_usd": _plain(self.cost), "tokens": self.tokens, "api_calls": self.calls}
        for key, names in sorted(self.names.items()):
            out[key] = sorted(names)
        out["unpriced_calls"] = self.unpriced  # no price: not in cost_usd, never counted as $0
        out["unknown_cost_calls"] = self.unknown  # every call of unknown cost, the unpriced ones included
        _note_lower_bound(out, self.unknown, "cost_usd")
        return out

    def average_cost(self) -> Decimal | None:
        """Cost per call of known cost (exact, else 12 places); 0 without any call, as the legacy endpoint; None
        when every call's cost is unknown (never $0)."""
        if not self.calls:
            return Decimal(0)
        known = self.calls - self.unknown
        return _plain(divide(self.cost, Decimal(known))) if known else None


def _plain(value: Decimal) -> Decimal:
    """Without trailing zeros and never in exponent form for whole numbers (1E+1 -> 10), as the stores give sums."""
    normalized = EXACT_SUMS.normalize(value)
    exponent = normalized.as_tuple().exponent
    return (
        normalized.quantize(Decimal(1), context=EXACT_SUMS)
        if isinstance(exponent, int) and exponent > 0
        else normalized
    )


def _ai_usage(store: UsageReader, request: AiUsageRequest) -> dict[str, Any]:
    rows = [
        row
        for row in store.aggregate(request.query, list(_ROLLUP))
        if request.operation is None or dict(row.group)["operation"] == request.operation
    ]
    total = _Group()
    levels: dict[str, dict[str, _Group]] = {level: {} for level in request.levels if level != "hour"}
    for row in rows:
        group = dict(row.group)
        sums = (row.amount, row.input_tokens + row.output_tokens, row.calls, row.unpriced_calls, row.unknown_cost_calls)
        total.add(*sums)
        keys_and_names = {
            "day": (group["day"], {"services": group["provider"]}),
            "service": (group["provider"], {"models": group["model"], "operations": group["operation"]}),
            "model": (group["model"], {"services": group["provider"]}),
            "operation": (group["operation"], {"services": group["provider"]}),
        }
        for level, by_key in levels.items():
            key, names = keys_and_names[level]
            by_key.setdefault(key, _Group()).add(*sums, **names)
    aggregations: dict[str, Any] = {}
    for level in request.levels:  # in the order asked, as the legacy endpoint
        if level == "hour":
            aggregations["by_hour"] = _by_hour(store, request)
        else:
            by_key = levels[level]
            aggregations[f"by_{level}"] = {key: _level_entry(level, group) for key, group in sorted(by_key.items())}
    summary: dict[str, Any] = {
        "total_cost_usd": _plain(total.cost),
        "total_tokens": total.tokens,
        "total_api_calls": total.calls,
        "average_cost_per_call": total.average_cost(),
        "date_range": {"start": request.start.isoformat(), "end": request.end.isoformat()},
        "unpriced_calls": total.unpriced,
        "unknown_cost_calls": total.unknown,
        "currency": CURRENCY,
    }
    _note_lower_bound(summary, total.unknown, "total_cost_usd")
    query = {"service": request.query.provider, "operation": request.operation, "aggregation": list(request.levels)}
    if request.query.environment is not None:
        query["environment"] = request.query.environment
    return {"summary": summary, "aggregations": aggregations, "query": query}


def _level_entry(level: str, group: _Group) -> dict[str, Any]:
    out = group.document()
    if level == "service":
        out["average_cost_per_call"] = group.average_cost()
    if level == "model":
        services = out.pop("services")
        # The legacy entry names one service; a model name two providers share names both, comma-joined.
        out["service"] = ",".join(services)
        average = Decimal(group.tokens) / Decimal(group.calls)  # a group has at least one call
        out["average_tokens_per_call"] = average.quantize(_TOKEN_AVERAGE_PLACES, rounding=ROUND_HALF_EVEN)
    return out


def _by_hour(store: UsageReader, request: AiUsageRequest) -> dict[str, Any]:
    """Per UTC hour of the day (`00`..`23`), over the whole range (`cost_usd`, `api_calls` and our counts; no
    tokens, as the legacy entry). The rollup has no hour, so this reads the matching records (one pass over the
    range: ask for `hour` over short ranges)."""
    hours: dict[str, _Group] = {}
    for record in store.query(request.query):
        if request.operation is not None and record.operation != request.operation:
            continue
        # Counted by the rule the stores' aggregates use, so the hours add up to the other levels.
        unpriced = int(record.pricing_status == PricingStatus.UNPRICED.value)
        amount = Decimal(0) if record.amount is None else record.amount
        tokens = record.input_tokens + record.output_tokens
        hours.setdefault(f"{record.timestamp.hour:02d}", _Group()).add(
            amount, tokens, 1, unpriced, int(is_cost_unknown(record))
        )
    out = {}
    for hour, group in sorted(hours.items()):
        entry = group.document()
        del entry["tokens"]
        out[hour] = entry
    return out


# --- JSON with exact numbers ---------------------------------------------------------------------------------------
class _HasDecimal(Exception):
    """A Decimal met by the fast path: the document takes the exact one."""


def to_json(document: Any) -> bytes:
    """Compact JSON of a query API document, every `Decimal` written as the JSON number of its exact decimal text
    (`0.000450000000000001`, never a float's rounding of it). `/ai_usage` answers its amounts so, as numbers, as the
    legacy endpoint did (its clients compare and add them); `/v1/usage` answers decimal strings, and is encoded by
    the standard library alone."""

    def refuse(value: Any) -> Any:
        if isinstance(value, Decimal):
            raise _HasDecimal
        raise TypeError(f"not JSON serializable: {type(value).__name__}")

    try:
        return json.dumps(document, separators=(",", ":"), default=refuse).encode()
    except _HasDecimal:
        parts: list[str] = []
        _encode_exact(document, parts)
        return "".join(parts).encode()


def _encode_exact(value: Any, out: list[str]) -> None:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a JSON number: {value}")
        out.append(format(value, "f"))
    elif isinstance(value, dict):
        out.append("{")
        for n, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys are strings, not {type(key).__name__}")
            out.append(("," if n else "") + json.dumps(key) + ":")
            _encode_exact(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _encode_exact(item, out)
        out.append("]")
    elif isinstance(value, float):
        raise TypeError("a float is not an exact amount: give a Decimal")
    else:
        out.append(json.dumps(value))  # str, int, bool, None (another type fails here, loudly)
