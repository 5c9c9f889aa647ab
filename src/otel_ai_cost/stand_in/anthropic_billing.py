"""Anthropic's usage and cost reports (Admin API), answered from the stand-in's billing book.

The routes are the paths anthropic 2.x calls (`client.beta.organization.analytics`, read in
`anthropic/resources/beta/organization/analytics/`), with the shapes its types parse:

- `GET /v1/organizations/analytics/cost` (`analytics.cost.list`) and `GET /v1/organizations/analytics/usage`
  (`analytics.usage.list`): one row per time bucket (`time_bucket_width=1d`) and combination of the `group_by[]`
  dimensions that has cost (or usage), `{"starting_at", "ending_at", "group": {...}, "cost" | "usage": {...}}`.
  `limit` rows a page (default 20, at most 1000); the cost report's `cost_type` / `token_type` fan-out rows do not
  count toward it. `order_by` `time` (oldest first with `order=asc`) or a metric. This is what
  `reconcile/anthropic_costs.py` reads: it is the report that breaks cost out by workspace and service tier.
- `GET /v1/organizations/analytics/cost_report` and `.../usage_report` (the legacy reports, `analytics.cost_report`
  and `analytics.usage_report`): daily buckets `{"starting_at", "ending_at", "results": [...]}`, empty days with
  `results: []`, `limit` buckets a page (default 7, at most 31); they cannot group by workspace or tier.

Pagination is `has_more` + an opaque `next_page` (`page_...`) sent back as `page`. Amounts are decimal strings in
cents (`"123.45"` is $1.2345). Each served call is priced on its own with the shipped catalog
(`pricing.catalog.default_catalog()`, the prices the instrumentation uses, long-context thresholds included), so a
call's billed cost is what our instrumentation priced it. As the real API: Priority Tier usage shows in the usage
report but has no cost rows (it is billed under the Priority Tier commitment), and Workbench (console) usage has a
null `api_key_id`. A call the catalog cannot price shows in the usage report only: the stand-in does not invent a
price. Only `1d` buckets are served (the book knows days, not hours).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from . import anthropic_api
from .billing_book import BillingBook, ServedUsage, today
from .scenario import Answer, RecordedRequest, digest

__all__ = [
    "COST_PATH",
    "COST_REPORT_PATH",
    "ROUTES",
    "USAGE_PATH",
    "USAGE_REPORT_PATH",
    "served_usage",
]

COST_PATH = "/v1/organizations/analytics/cost"
USAGE_PATH = "/v1/organizations/analytics/usage"
COST_REPORT_PATH = "/v1/organizations/analytics/cost_report"
USAGE_REPORT_PATH = "/v1/organizations/analytics/usage_report"
MESSAGES_PATH = "/v1/messages"
STAND_IN_API_KEY_ID = "key_stand_in"

BillingHandler = Callable[[RecordedRequest, BillingBook], Answer]

_DAY = timedelta(days=1)
_MAX_RANGE = timedelta(days=31)
_LONG_CONTEXT = 200_000  # Anthropic's context-window pricing tiers: 0-200k and 200k-1M input tokens
_FAN_OUT = ("cost_type", "token_type")
# Group fields of the analytics reports (BetaAnalyticsCostGroup / BetaAnalyticsUsageGroup): every field is sent,
# null unless grouped by, as the API does.
_GROUP_FIELDS = (
    "actor", "actor_type", "agent_id", "api_key_id", "claude_tag_category", "claude_tag_user_id", "context_window",
    "deployment_id", "environment_id", "inference_geo", "model", "organization_id", "product", "rbac_group_id",
    "service_tier", "session_id", "slack_channel_id", "speed", "user_profile_id", "workspace_id",
)  # fmt: skip
# The legacy reports' dimensions (their `group_by[]` Literal) and the fields their results carry.
_LEGACY_FIELDS = (
    "claude_tag_category", "claude_tag_user_id", "context_window", "inference_geo", "model", "product",
    "rbac_group_id", "slack_channel_id", "speed",
)  # fmt: skip
# Filters honoured (query parameter -> dimension); the others are accepted and ignored.
_FILTERS = {
    "models": "model",
    "workspace_ids": "workspace_id",
    "service_tiers": "service_tier",
    "api_key_ids": "api_key_id",
    "context_windows": "context_window",
    "products": "product",
}
# The catalog's cost components (`Quote.components` keys) as the cost report's (cost_type, token_type).
_COMPONENTS: dict[str, tuple[str, str | None]] = {
    "input": ("tokens", "uncached_input_tokens"),
    "input_image": ("tokens", "uncached_input_tokens"),
    "input_audio": ("tokens", "uncached_input_tokens"),
    "output": ("tokens", "output_tokens"),
    "reasoning": ("tokens", "output_tokens"),
    "output_image": ("tokens", "output_tokens"),
    "output_audio": ("tokens", "output_tokens"),
    "cache_read": ("tokens", "cache_read_input_tokens"),
    "cache_write_5m": ("tokens", "cache_creation.ephemeral_5m_input_tokens"),
    "cache_write_1h": ("tokens", "cache_creation.ephemeral_1h_input_tokens"),
    "web_search": ("web_search", None),
}


class _BadRequest(Exception):
    """A query the real API answers with 400 invalid_request_error."""


# --- What a served call bills ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Billed:
    """One served call: its dimensions, and its cost by (cost_type, token_type) (empty: not in the cost report)."""

    day: date
    dims: Mapping[str, str | None]
    usage: ServedUsage
    costs: Mapping[tuple[str, str | None], Decimal]


def _dimensions(entry: ServedUsage) -> dict[str, str | None]:
    return {
        "workspace_id": entry.account or None,
        "api_key_id": entry.api_key_id,
        "model": entry.model,
        "service_tier": entry.tier or "standard",
        "context_window": "0-200k" if entry.input_tokens <= _LONG_CONTEXT else "200k-1M",
        "inference_geo": None,  # the stand-in's answers set no inference region
        "speed": "standard",
        "product": "messages_api" if entry.api_key_id is not None else "claude_console",
    }


def _costs(entry: ServedUsage) -> dict[tuple[str, str | None], Decimal]:
    """The call's cost components as the catalog prices it (the instrumentation's figure), in USD."""
    if entry.tier == "priority":
        return {}  # Priority Tier is never in the cost report
    from otel_ai_cost.pricing.catalog import default_catalog  # the catalog is heavy: only when a report is asked

    usage, at = entry.usage(), entry.priced_at
    quote = default_catalog().quote("anthropic", entry.model, usage, at=at, service_tier=entry.tier or None)
    if quote.amount is None:
        return {}  # unpriceable: usage only, never a made-up $0
    costs: dict[tuple[str, str | None], Decimal] = {}
    for component, amount in quote.components.items():
        key = _COMPONENTS.get(component, ("tokens", None))
        costs[key] = costs.get(key, Decimal(0)) + amount
    return costs


def _billed(book: BillingBook, request: RecordedRequest) -> list[_Billed]:
    filters = {dim: set(_values(request, name)) for name, dim in _FILTERS.items() if _values(request, name)}
    billed = []
    for entry in book.usage("anthropic"):
        dims = _dimensions(entry)
        if all(dims.get(dim) in allowed for dim, allowed in filters.items()):
            billed.append(_Billed(entry.day, dims, entry, _costs(entry)))
    return billed


# --- Query ------------------------------------------------------------------------------------------------


def _values(request: RecordedRequest, name: str) -> list[str]:
    """Every value of an array parameter (`group_by[]=a&group_by[]=b`, also sent without brackets)."""
    return [value for key, value in request.query_list if key in (name, f"{name}[]")]


def _value(request: RecordedRequest, name: str) -> str | None:
    values = _values(request, name)
    return values[-1] if values else None


def _instant(request: RecordedRequest, name: str) -> datetime | None:
    text = _value(request, name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _BadRequest(f"{name}: not an RFC 3339 timestamp: {text!r}") from None
    if moment.tzinfo is None:
        raise _BadRequest(f"{name}: RFC 3339 with a time zone is required, got {text!r}")
    return moment.astimezone(timezone.utc)


def _limit(request: RecordedRequest, default: int, maximum: int) -> int:
    text = _value(request, "limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise _BadRequest(f"limit: must be an integer from 1 to {maximum}, got {text!r}")
    return int(text)


def _days(start: datetime, end: datetime) -> list[date]:
    """The UTC days whose 1d buckets cover [start, end): buckets snap to 00:00 UTC."""
    day, days = start.date(), []
    while datetime.combine(day, time(0), tzinfo=timezone.utc) < end:
        days.append(day)
        day += _DAY
    return days


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _range(request: RecordedRequest, *, ending_required: bool) -> tuple[datetime, datetime]:
    start = _instant(request, "starting_at")
    if start is None:
        raise _BadRequest("starting_at: field required")
    end = _instant(request, "ending_at")
    if end is None:
        if ending_required:
            raise _BadRequest("ending_at: required when time_bucket_width is set")
        end = min(datetime.now(timezone.utc), start + _MAX_RANGE)
    if end <= start:
        raise _BadRequest("ending_at must be after starting_at")
    if end - start > _MAX_RANGE:
        raise _BadRequest("the range may span at most 31 days")
    return start, end


def _group_by(request: RecordedRequest, allowed: Iterable[str], *, at_most: int | None) -> list[str]:
    group_by = _values(request, "group_by")
    allowed = set(allowed)
    for dim in group_by:
        if dim not in allowed:
            raise _BadRequest(f"group_by[]: {dim!r} is not one of {sorted(allowed)}")
    if at_most is not None and len([d for d in group_by if d not in _FAN_OUT]) > at_most:
        raise _BadRequest(f"group_by[]: at most {at_most} dimensions (not counting cost_type and token_type)")
    return list(dict.fromkeys(group_by))


# --- Pages ------------------------------------------------------------------------------------------------


def _query_key(request: RecordedRequest) -> str:
    """What a page token is bound to: the query without `page`."""
    return digest(request.path, sorted((k, v) for k, v in request.query_list if k != "page"))[:16]


def _page_token(offset: int, request: RecordedRequest) -> str:
    raw = json.dumps([offset, _query_key(request)]).encode()
    return "page_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _page_offset(request: RecordedRequest) -> int:
    token = _value(request, "page")
    if not token:
        return 0
    try:
        if not token.startswith("page_"):
            raise ValueError(token)
        body = token[5:]
        offset, key = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if not isinstance(offset, int) or offset < 0 or key != _query_key(request):
            raise ValueError(token)
    except (ValueError, TypeError, binascii.Error):
        raise _BadRequest("page: not a page token of this query") from None
    return offset


def _page(request: RecordedRequest, items: Sequence[Any], limit: int) -> tuple[list[Any], bool, str | None]:
    offset = _page_offset(request)
    page = list(items[offset : offset + limit])
    more = offset + limit < len(items)
    return page, more, _page_token(offset + limit, request) if more else None


def _envelope(data: list[Any], more: bool, token: str | None) -> Answer:
    body = {"data": data, "has_more": more, "next_page": token, "data_refreshed_at": _iso(datetime.now(timezone.utc))}
    return Answer(headers=anthropic_api.base_headers(), body=body)


# --- Sums -------------------------------------------------------------------------------------------------


def _cents(usd: Decimal) -> str:
    """USD as the reports' decimal string in cents, exactly (the exponent moves; no rounding context)."""
    sign, digits, exponent = usd.as_tuple()
    assert isinstance(exponent, int)
    text = format(Decimal((sign, digits, exponent + 2)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass
class _Usage:
    uncached: int = 0
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0
    output: int = 0
    searches: int = 0
    requests: int = 0

    def add(self, billed: _Billed) -> None:
        entry = billed.usage
        writes = entry.cache_write_5m_input_tokens + entry.cache_write_1h_input_tokens
        self.uncached += max(0, entry.input_tokens - entry.cache_read_input_tokens - writes)
        self.read += entry.cache_read_input_tokens
        self.write_5m += entry.cache_write_5m_input_tokens
        self.write_1h += entry.cache_write_1h_input_tokens
        self.output += entry.output_tokens
        self.searches += entry.web_search_requests
        self.requests += 1

    @property
    def total(self) -> int:
        return self.uncached + self.read + self.write_5m + self.write_1h + self.output

    def metrics(self) -> dict[str, Any]:
        """The usage fields (BetaAnalyticsUsageMetrics / the legacy usage result)."""
        return {
            "cache_creation": {"ephemeral_1h_input_tokens": self.write_1h, "ephemeral_5m_input_tokens": self.write_5m},
            "cache_read_input_tokens": self.read,
            "output_tokens": self.output,
            "requests": self.requests,
            "server_tool_use": {"web_search_requests": self.searches},
            "uncached_input_tokens": self.uncached,
        }

    def metric(self, name: str) -> int:
        return {
            "total_tokens": self.total,
            "uncached_input_tokens": self.uncached,
            "output_tokens": self.output,
            "requests": self.requests,
        }.get(name, self.total)


@dataclass
class _Cost:
    requests: int = 0
    parts: dict[tuple[str, str | None], Decimal] = field(default_factory=dict)

    def add(self, billed: _Billed) -> None:
        self.requests += 1
        for key, amount in billed.costs.items():
            self.parts[key] = self.parts.get(key, Decimal(0)) + amount

    @property
    def amount(self) -> Decimal:
        return sum(self.parts.values(), Decimal(0))

    def rows(self, fan_out: Sequence[str]) -> list[tuple[str | None, str | None, Decimal, int | None]]:
        """(cost_type, token_type, amount, requests) rows: one combined row, or the fan-out the query asks for."""
        if not fan_out:
            return [(None, None, self.amount, self.requests)]
        merged: dict[tuple[str | None, str | None], Decimal] = {}
        for (cost_type, token_type), amount in self.parts.items():
            if "token_type" not in fan_out:  # by cost_type only: the token rows add up
                token_type = None
            elif "cost_type" not in fan_out and cost_type != "tokens":  # by token_type only: no token type
                token_type = None
            key = (cost_type, token_type)
            merged[key] = merged.get(key, Decimal(0)) + amount
        rows = [(cost_type, token_type, amount, None) for (cost_type, token_type), amount in merged.items()]
        return sorted(rows, key=lambda row: (-row[2], str(row[0]), str(row[1])))


def _groups(
    billed: Iterable[_Billed], days: Sequence[date] | None, dims: Sequence[str], make: Callable[[], Any]
) -> dict[tuple[date | None, tuple[str | None, ...]], Any]:
    """Sums per (day, group values); `days` None: one bucket over the whole range (day None)."""
    wanted = set(days) if days is not None else None
    groups: dict[tuple[date | None, tuple[str | None, ...]], Any] = {}
    for item in billed:
        if wanted is not None and item.day not in wanted:
            continue
        key = (item.day if days is not None else None, tuple(item.dims.get(dim) for dim in dims))
        groups.setdefault(key, make()).add(item)
    return groups


# --- The analytics reports (cost, usage) ------------------------------------------------------------------


def _analytics(request: RecordedRequest, book: BillingBook, kind: str) -> Answer:
    allowed = (*_GROUP_FIELDS, *_FAN_OUT) if kind == "cost" else _GROUP_FIELDS
    group_by = _group_by(request, allowed, at_most=5)
    dims = [dim for dim in group_by if dim not in _FAN_OUT]
    fan_out = [dim for dim in group_by if dim in _FAN_OUT]
    width = _value(request, "time_bucket_width")
    if width not in (None, "1d"):
        raise _BadRequest(f"time_bucket_width: the stand-in serves 1d buckets only, got {width!r}")
    start, end = _range(request, ending_required=width is not None)
    limit = _limit(request, 20, 1000)
    if width is None:  # one row per group over the whole range: the days it overlaps
        items = [
            item for item in _billed(book, request) if start < _midnight(item.day) + _DAY and _midnight(item.day) < end
        ]
        groups = _groups(items, None, dims, _Cost if kind == "cost" else _Usage)
    else:
        groups = _groups(_billed(book, request), _days(start, end), dims, _Cost if kind == "cost" else _Usage)
    if kind == "cost":
        groups = {key: sums for key, sums in groups.items() if sums.parts}  # rows only where there is cost

    def bounds(day: date | None) -> tuple[str, str]:
        if day is None:  # no time bucket: the range, rounded down to the hour
            return _iso(start.replace(minute=0, second=0, microsecond=0)), _iso(end.replace(minute=0, second=0))
        return _iso(_midnight(day)), _iso(_midnight(day + _DAY))

    order_by = _value(request, "order_by") or ("amount" if kind == "cost" else "total_tokens")
    descending = (_value(request, "order") or "desc") != "asc"

    def measure(sums: Any) -> Any:
        return sums.amount if kind == "cost" else sums.metric(order_by)

    def sort_key(entry: tuple[tuple[date | None, tuple[str | None, ...]], Any]) -> tuple[Any, ...]:
        (day, values), sums = entry
        size = measure(sums)
        if order_by == "time" and width is not None:
            ordinal = day.toordinal() if day is not None else 0
            return (-ordinal if descending else ordinal, -size, tuple(str(v) for v in values))
        return (-size if descending else size, tuple(str(v) for v in values))

    ordered = sorted(groups.items(), key=sort_key)
    page, more, token = _page(request, ordered, limit)
    data: list[dict[str, Any]] = []
    for (day, values), sums in page:
        begin, finish = bounds(day)
        group: dict[str, Any] = dict.fromkeys(_GROUP_FIELDS)
        group.update(zip(dims, values, strict=True))
        if kind == "usage":
            data.append({"starting_at": begin, "ending_at": finish, "group": group,
                         "usage": {**sums.metrics(), "total_tokens": sums.total}})  # fmt: skip
            continue
        for cost_type, token_type, amount, requests in sums.rows(fan_out):
            cost = {"amount": _cents(amount), "currency": "USD", "list_amount": _cents(amount), "requests": requests}
            row_group = {**group, "cost_type": cost_type, "token_type": token_type}
            data.append({"starting_at": begin, "ending_at": finish, "group": row_group, "cost": cost})
    return _envelope(data, more, token)


# --- The legacy reports (cost_report, usage_report) -------------------------------------------------------


def _legacy(request: RecordedRequest, book: BillingBook, kind: str) -> Answer:
    allowed = (*_LEGACY_FIELDS, *_FAN_OUT) if kind == "cost" else _LEGACY_FIELDS
    group_by = _group_by(request, allowed, at_most=None)
    dims = [dim for dim in group_by if dim not in _FAN_OUT]
    fan_out = [dim for dim in group_by if dim in _FAN_OUT]
    width = _value(request, "bucket_width") or "1d"
    if width != "1d":
        raise _BadRequest(f"bucket_width: the stand-in serves 1d buckets only, got {width!r}")
    start, end = _range(request, ending_required=False)
    days = _days(start, end)
    limit = _limit(request, 7, 31)
    groups = _groups(_billed(book, request), days, dims, _Cost if kind == "cost" else _Usage)
    page, more, token = _page(request, days, limit)
    data = []
    for day in page:
        results: list[dict[str, Any]] = []
        for (group_day, values), sums in sorted(groups.items(), key=lambda e: tuple(str(v) for v in e[0][1])):
            if group_day != day:
                continue
            fields: dict[str, Any] = dict.fromkeys(_LEGACY_FIELDS)
            fields.update(zip(dims, values, strict=True))
            if kind == "usage":
                results.append({**fields, **sums.metrics()})
                continue
            for cost_type, token_type, amount, requests in sums.rows(fan_out) if sums.parts else ():
                results.append({**fields, "cost_type": cost_type, "token_type": token_type, "amount": _cents(amount),
                                "list_amount": _cents(amount), "currency": "USD", "requests": requests})  # fmt: skip
        data.append({"starting_at": _iso(_midnight(day)), "ending_at": _iso(_midnight(day + _DAY)), "results": results})
    return _envelope(data, more, token)


def _route(report: Callable[[RecordedRequest, BillingBook, str], Answer], kind: str) -> BillingHandler:
    def handle(request: RecordedRequest, book: BillingBook) -> Answer:
        try:
            return report(request, book, kind)
        except _BadRequest as bad:
            return anthropic_api.error_answer(400, message=str(bad))

    return handle


ROUTES: dict[str, BillingHandler] = {
    COST_PATH: _route(_analytics, "cost"),
    USAGE_PATH: _route(_analytics, "usage"),
    COST_REPORT_PATH: _route(_legacy, "cost"),
    USAGE_REPORT_PATH: _route(_legacy, "usage"),
}


# --- What a model answer bills ----------------------------------------------------------------------------


def served_usage(request: RecordedRequest, answer: Answer) -> ServedUsage | None:
    """The usage a successful `POST /v1/messages` answer bills (JSON, or an SSE stream that reached
    `message_stop`), or None (count_tokens is free; a stream cut short or ended by an error bills nothing here)."""
    if request.path != MESSAGES_PATH or answer.status != 200:
        return None
    try:
        found = _answer_usage(answer)
        return _served(*found) if found is not None else None
    except (ValueError, TypeError, AttributeError, KeyError):  # a scripted answer of another shape bills nothing
        return None


def _answer_usage(answer: Answer) -> tuple[str, dict[str, Any]] | None:
    """(model, usage) of a Message, or of a stream merged as the SDK does (`message_delta` totals win)."""
    if answer.events is None:
        body = answer.body
        model, usage = body.get("model"), dict(body.get("usage") or {})
        return (model, usage) if isinstance(model, str) else None
    if answer.cut:
        return None
    model, usage, finished = None, {}, False
    for event in answer.events:
        payload = json.loads(event.data)
        kind = payload.get("type")
        if kind == "message_start":
            model = payload["message"].get("model")
            usage.update(payload["message"].get("usage") or {})
        elif kind == "message_delta":
            usage.update({k: v for k, v in (payload.get("usage") or {}).items() if v is not None})
        elif kind == "message_stop":
            finished = True
    return (model, usage) if finished and isinstance(model, str) else None


def _served(model: str, usage: Mapping[str, Any]) -> ServedUsage:
    def count(value: Any) -> int:
        return value if type(value) is int and value >= 0 else 0

    split = usage.get("cache_creation") or {}
    write_1h = count(split.get("ephemeral_1h_input_tokens"))
    write_5m = count(split.get("ephemeral_5m_input_tokens"))
    # Whatever the split does not account for was written with the default 5-minute TTL (as the instrumentation).
    write_5m += max(0, count(usage.get("cache_creation_input_tokens")) - write_5m - write_1h)
    read = count(usage.get("cache_read_input_tokens"))
    tier = usage.get("service_tier")
    return ServedUsage(
        provider="anthropic",
        day=today(),
        model=model,
        input_tokens=count(usage.get("input_tokens")) + read + write_5m + write_1h,
        cache_read_input_tokens=read,
        cache_write_5m_input_tokens=write_5m,
        cache_write_1h_input_tokens=write_1h,
        output_tokens=count(usage.get("output_tokens")),
        web_search_requests=count((usage.get("server_tool_use") or {}).get("web_search_requests")),
        tier="" if tier in (None, "standard") else str(tier),
        api_key_id=STAND_IN_API_KEY_ID,
        endpoint=MESSAGES_PATH,
    )
