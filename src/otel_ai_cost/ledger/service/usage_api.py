"""`GET /v1/usage`: the query API, in the shape of the seeds' `/ai_usage` endpoint.

With `aggregation=day,service` it answers exact sums per group (computed by the store); without it, the matching
records, oldest first, a page at a time (`limit`, and the `next_cursor` of the previous page as `cursor`).
Amounts are exact decimal strings. Unknown or malformed parameters are refused (400) naming the parameter: a typo in
a filter must not silently widen a cost query to everything.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Context, Decimal, Inexact, Rounded
from typing import Any

from otel_ai_cost.contract import CURRENCY
from otel_ai_cost.ledger.record import LedgerRecord, format_timestamp, parse_timestamp
from otel_ai_cost.ledger.store import GROUP_BY_FIELDS, AggregateRow, LedgerStore, UsageQuery

_EXACT = Context(prec=400, traps=[Inexact, Rounded])  # sums of exact amounts must never round
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Query-string names of the UsageQuery filters that map one to one (dates are parsed separately).
_FILTERS = tuple(f.name for f in fields(UsageQuery) if f.name not in ("start_day", "end_day"))
PARAMETERS = frozenset({"start_date", "end_date", "aggregation", "limit", "cursor", *_FILTERS})
_SUMS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "reasoning_output_tokens",
)


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
    return UsageRequest(UsageQuery(start_day=start, end_day=end, **filters), group_by, limit, cursor)


def _date(value: Mapping[str, str], name: str) -> date | None:
    if name not in value:
        return None
    try:
        return date.fromisoformat(value[name])
    except ValueError:
        raise BadParameter(name, f"not a date (YYYY-MM-DD): {value[name]!r}") from None


def answer(store: LedgerStore, request: UsageRequest) -> dict[str, Any]:
    """The JSON document for a validated request."""
    if request.group_by:
        return _aggregated(store, request)
    return _records(store, request)


def _aggregated(store: LedgerStore, request: UsageRequest) -> dict[str, Any]:
    rows = store.aggregate(request.query, list(request.group_by))
    summary: dict[str, Any] = {"amount": Decimal(0), "calls": 0, "unpriced_calls": 0, **dict.fromkeys(_SUMS, 0)}
    out_rows = []
    for row in rows:
        out_rows.append(_row(row))
        summary["amount"] += row.amount
        summary["calls"] += row.calls
        summary["unpriced_calls"] += row.unpriced_calls
        for name in _SUMS:
            summary[name] += getattr(row, name)
    summary["amount"] = format(summary["amount"], "f")
    if any(row.computed_amount is not None for row in rows):  # provider-reported amounts with our figure beside
        computed = Decimal(0)
        for row in rows:
            computed = _EXACT.add(computed, row.amount if row.computed_amount is None else row.computed_amount)
        summary["computed_amount"] = format(computed, "f")
    summary["currency"] = CURRENCY
    return {"query": _echo(request), "aggregation": list(request.group_by), "summary": summary, "rows": out_rows}


def _row(row: AggregateRow) -> dict[str, Any]:
    out: dict[str, Any] = dict(row.group)
    out["amount"] = format(row.amount, "f")
    if row.computed_amount is not None:
        out["computed_amount"] = format(row.computed_amount, "f")
    out["currency"] = CURRENCY
    out["calls"] = row.calls
    out["unpriced_calls"] = row.unpriced_calls
    for name in _SUMS:
        out[name] = getattr(row, name)
    return out


def _records(store: LedgerStore, request: UsageRequest) -> dict[str, Any]:
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
    return out
