"""OpenAI's organization Costs and Usage APIs, answered from the stand-in's billing book.

`GET /v1/organization/costs`, `/v1/organization/usage/completions` and `/v1/organization/usage/embeddings`
answer in the shapes the `openai` SDK parses (`openai/types/admin/organization/usage_*_response.py`): a page of
daily buckets, one per UTC day from `start_time` to `end_time` (exclusive), empty days included as buckets with
`results: []`, `limit` buckets a page and an opaque `next_page` token to pass back as `page`. `group_by` is
honoured (the SDK sends it as `group_by[]=...`; plain `group_by=...` works too); a field not grouped by is null.

Costs are priced from the shipped catalog (`pricing.catalog.default_catalog()`) exactly as the instrumentation
prices each call, so reconciling a ledger of calls made through the stand-in against this bill matches to the
cent: one line item per model and class, e.g. `gpt-4o-mini-2024-07-18, input`, `..., cached input`,
`..., cache writes`, `..., output` (reasoning included, as OpenAI bills it), `web search tool calls`; a tier
other than standard prefixes it (`priority | gpt-4.1, output`); a call above the model's long-context threshold
adds `, long context`. `amount.value` is a JSON number written from the exact decimal (no float rounding). A
call the catalog cannot price is left off the bill: the stand-in knows no price to bill it at.

`served_usage` is the hook the server calls on every successful model answer: it reads the usage the answer
reported (a stream's final usage chunk or `response.completed` event) into the book, for today (UTC), the
project the request named (`OpenAI-Project` header) and the tier the answer reports.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time as _time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from otel_ai_cost.pricing.tiers import STANDARD, tier_for

from . import openai_api
from .billing_book import BillingBook, ServedUsage, today
from .scenario import Answer, RecordedRequest, Scenario, SSEEvent

if TYPE_CHECKING:
    from otel_ai_cost.pricing.catalog import PriceCatalog

__all__ = ["ROUTES", "served_usage"]

BillingHandler = Callable[[RecordedRequest, BillingBook], Answer]

_DAY = 86_400
_MAX_BUCKETS = 20_000  # a window longer than ~55 years is a mistake, not a query
_SERVED_PATHS = frozenset({"/v1/chat/completions", "/v1/responses", "/v1/embeddings"})
_EMBEDDINGS = "/v1/embeddings"
# Usage fields only OpenAI-compatible providers that state their own cost send (xAI, Perplexity, OpenRouter, on
# the stand-in's gateway paths): their calls are not on OpenAI's bill.
_FOREIGN_USAGE = ("cost_in_usd_ticks", "cost")


# --- served usage -------------------------------------------------------------------------------------------


def served_usage(request: RecordedRequest, answer: Answer) -> ServedUsage | None:
    """The usage a successful chat completions / responses / embeddings answer bills, or None (another
    endpoint, a stream that reported no usage or broke off, usage that is not token counts)."""
    try:
        return _served(request, answer)
    except Exception:  # billing is the stand-in's bookkeeping: it must never break the answer it reads
        return None


def _served(request: RecordedRequest, answer: Answer) -> ServedUsage | None:
    if request.path not in _SERVED_PATHS or answer.cut:
        return None
    payload: Any = answer.body if answer.events is None else _final_payload(answer.events)
    if not isinstance(payload, Mapping):
        return None
    if isinstance(payload.get("response"), Mapping):  # Responses stream: `response.completed` / `.incomplete`
        payload = payload["response"]
    usage = payload.get("usage")
    if not isinstance(usage, Mapping) or any(key in usage for key in _FOREIGN_USAGE):
        return None
    if request.path == "/v1/responses":
        total_in, details, total_out = (
            usage.get("input_tokens"),
            usage.get("input_tokens_details"),
            usage.get("output_tokens"),
        )
    else:
        total_in, details = usage.get("prompt_tokens"), usage.get("prompt_tokens_details")
        total_out = 0 if request.path == _EMBEDDINGS else usage.get("completion_tokens")
    details = details if isinstance(details, Mapping) else {}
    counts = (total_in, total_out, details.get("cached_tokens") or 0, details.get("cache_write_tokens") or 0)
    if not all(type(n) is int and n >= 0 for n in counts):
        return None
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        return None
    headers = request.headers
    return ServedUsage(
        provider="openai",
        day=today(),
        model=model,
        input_tokens=counts[0],
        output_tokens=counts[1],
        cache_read_input_tokens=counts[2],
        cache_write_5m_input_tokens=counts[3],
        web_search_requests=_web_searches(payload.get("output")),
        tier=_tier(payload.get("service_tier")),
        account=headers.get("openai-project", ""),
        endpoint=request.path,
    )


def _final_payload(events: Sequence[SSEEvent]) -> Any:
    """The last JSON event of a stream (`[DONE]` skipped): where both APIs put a stream's usage. Only that one
    event is parsed, so billing costs a stream one small `json.loads`."""
    for event in reversed(events):
        if event.data.strip() == "[DONE]":
            continue
        try:
            return json.loads(event.data)
        except ValueError:
            return None
    return None


def _web_searches(output: Any) -> int:
    if not isinstance(output, list):
        return 0
    return sum(1 for item in output if isinstance(item, Mapping) and item.get("type") == "web_search_call")


def _tier(service_tier: Any) -> str:
    """The tier the answer reports, as the book keeps it ("" = standard)."""
    tier = tier_for(service_tier if isinstance(service_tier, str) else None) or STANDARD
    return "" if tier == STANDARD else tier


# --- the bill: served usage priced into line items ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Charge:
    day: date
    project_id: str | None
    api_key_id: str | None
    line_item: str
    amount: Decimal
    quantity: int | None  # tokens or calls of the line


def _charges(entry: ServedUsage, catalog: PriceCatalog) -> list[_Charge]:
    """One served call's line items, priced as the instrumentation prices the call ([] when unpriceable)."""
    from otel_ai_cost.contract import PricingStatus
    from otel_ai_cost.ledger.store import EXACT_SUMS

    usage, at = entry.usage(), entry.priced_at
    quote = catalog.quote("openai", entry.model, usage, at=at, service_tier=entry.tier or None, warn=False)
    if quote.status is not PricingStatus.PRICED:
        return []
    price = catalog.resolve("openai", entry.model, at=at, tier=tier_for(entry.tier) or STANDARD)
    long_context = price is not None and any(entry.input_tokens > tier.threshold for tier in price.long_context)
    # A tier names itself before `|` (`priority | gpt-4.1, input`), one we do not know too (as OpenAI would bill a
    # new tier): only standard goes unnamed.
    prefix = f"{entry.tier} | " if entry.tier and tier_for(entry.tier) != STANDARD else ""
    suffix = ", long context" if long_context else ""
    writes = entry.cache_write_5m_input_tokens + entry.cache_write_1h_input_tokens
    # component -> (line item, what it counts)
    lines: dict[str, tuple[str, int | None]] = {
        "input": (", input", entry.input_tokens - entry.cache_read_input_tokens - writes),
        "cache_read": (", cached input", entry.cache_read_input_tokens),
        "cache_write_5m": (", cache writes", writes),
        "cache_write_1h": (", cache writes", writes),
        "output": (", output", entry.output_tokens),
        "reasoning": (", output", entry.output_tokens),  # OpenAI bills reasoning as output
    }
    amounts: dict[str, Decimal] = {}
    quantities: dict[str, int | None] = {}
    for component, amount in quote.components.items():
        if component == "web_search":
            label, quantity = "web search tool calls", entry.web_search_requests
        elif component in lines:
            tail, quantity = lines[component]
            label = f"{prefix}{entry.model}{tail}{suffix}"
        else:  # a class the stand-in's calls do not produce: named plainly (the parser reads it as `other`)
            label, quantity = f"{prefix}{entry.model}, {component}{suffix}", None
        amounts[label] = EXACT_SUMS.add(amounts.get(label, Decimal(0)), amount)
        quantities[label] = quantity
    project = entry.account or None
    return [
        _Charge(entry.day, project, entry.api_key_id, label, amount, quantities[label])
        for label, amount in amounts.items()
    ]


# --- endpoints ----------------------------------------------------------------------------------------------


class _BadRequest(ValueError):
    """A query the real API refuses with a 400."""


@dataclass(frozen=True)
class _Query:
    start_time: int
    end_time: int
    limit: int
    page: str | None
    group_by: frozenset[str]
    filters: Mapping[str, frozenset[str]]
    batch: bool | None


def _query(
    request: RecordedRequest,
    *,
    group_fields: Iterable[str],
    filter_fields: Iterable[str],
    default_limit: int,
    max_limit: int,
) -> _Query:
    values: dict[str, list[str]] = {}
    for key, value in request.query_list:
        values.setdefault(key.removesuffix("[]"), []).append(value)

    def one(name: str) -> str | None:
        found = values.get(name)
        return found[-1] if found else None

    start = _integer(one("start_time"), "start_time")
    if start is None:
        raise _BadRequest("Missing required parameter: 'start_time'.")
    end = _integer(one("end_time"), "end_time")
    if end is None:
        end = (int(_time.time()) // _DAY + 1) * _DAY  # through today
    width = one("bucket_width") or "1d"
    if width != "1d":
        raise _BadRequest(f"The stand-in answers bucket_width=1d only, not {width!r}.")
    limit = _integer(one("limit"), "limit")
    limit = default_limit if limit is None else limit
    if not 1 <= limit <= max_limit:
        raise _BadRequest(f"Invalid 'limit': {limit}; it must be between 1 and {max_limit}.")
    group_by = frozenset(values.get("group_by", ()))
    unknown = group_by - frozenset(group_fields)
    if unknown:
        raise _BadRequest(f"Invalid 'group_by' value(s): {sorted(unknown)}.")
    filters = {name: frozenset(values[name]) for name in filter_fields if name in values}
    batch_text = one("batch")
    if batch_text not in (None, "true", "false"):
        raise _BadRequest(f"Invalid 'batch': {batch_text!r}.")
    batch = None if batch_text is None else batch_text == "true"
    return _Query(start, end, limit, one("page"), group_by, filters, batch)


def _integer(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    if not re.fullmatch(r"-?[0-9]{1,15}", text.strip()):
        raise _BadRequest(f"Invalid '{name}': {text!r} is not an integer.")
    return int(text)


def _bucket_bounds(query: _Query) -> list[tuple[int, int, date]]:
    """(start, end, UTC day) of every daily bucket; the first starts at `start_time` even mid-day, as OpenAI's."""
    if query.end_time <= query.start_time:
        return []
    first = query.start_time // _DAY * _DAY
    count = (query.end_time - first + _DAY - 1) // _DAY
    if count > _MAX_BUCKETS:
        raise _BadRequest("The time range is too long.")
    epoch = date(1970, 1, 1)
    return [
        (max(query.start_time, first + i * _DAY), first + (i + 1) * _DAY, epoch + timedelta(days=(first // _DAY) + i))
        for i in range(count)
    ]


def _page_token(kind: str, query: _Query, index: int) -> str:
    raw = f"{kind}:{query.start_time}:{query.end_time}:{index}".encode()
    return "page_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _page_index(kind: str, query: _Query) -> int:
    if query.page is None:
        return 0
    token = query.page
    try:
        if not token.startswith("page_"):
            raise ValueError(token)
        body = token[5:]
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        got_kind, start, end, index = raw.split(":")
        if (got_kind, int(start), int(end)) != (kind, query.start_time, query.end_time) or int(index) < 0:
            raise ValueError(token)
        return int(index)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise _BadRequest(f"Invalid 'page': {token!r} is not a page of this query.") from None


def _page(kind: str, query: _Query, results_of: Callable[[date], list[dict[str, Any]]]) -> dict[str, Any]:
    bounds = _bucket_bounds(query)
    start = _page_index(kind, query)
    chosen = bounds[start : start + query.limit]
    more = start + query.limit < len(bounds)
    return {
        "object": "page",
        "data": [
            {"object": "bucket", "start_time": b_start, "end_time": b_end, "results": results_of(day)}
            for b_start, b_end, day in chosen
        ],
        "has_more": more,
        "next_page": _page_token(kind, query, start + query.limit) if more else None,
    }


def _handler(kind: str, build: Callable[[RecordedRequest, BillingBook], dict[str, Any]]) -> BillingHandler:
    def handle(request: RecordedRequest, book: BillingBook) -> Answer:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return openai_api.error_answer(401, Scenario(should_retry=False))
        try:
            payload = build(request, book)
        except _BadRequest as error:
            return openai_api.error_answer(400, Scenario(should_retry=False), message=str(error))
        return Answer(headers={**openai_api.base_headers(), "content-type": "application/json"}, body=_encode(payload))

    handle.__name__ = kind
    return handle


def _costs(request: RecordedRequest, book: BillingBook) -> dict[str, Any]:
    """`GET /v1/organization/costs`: costs per day, grouped by `project_id`, `line_item`, `api_key_id`."""
    from otel_ai_cost.ledger.store import EXACT_SUMS
    from otel_ai_cost.pricing.catalog import default_catalog

    query = _query(
        request,
        group_fields=("project_id", "line_item", "api_key_id", "user_id", "api_source"),
        filter_fields=("project_ids", "line_items", "api_key_ids"),
        default_limit=7,
        max_limit=180,
    )
    catalog = default_catalog()
    by_day: dict[date, list[_Charge]] = {}
    for entry in book.usage("openai"):
        for charge in _charges(entry, catalog):
            if _kept(query, project_ids=charge.project_id, line_items=charge.line_item, api_key_ids=charge.api_key_id):
                by_day.setdefault(charge.day, []).append(charge)

    def results(day: date) -> list[dict[str, Any]]:
        groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        for charge in by_day.get(day, ()):
            key = (
                charge.project_id if "project_id" in query.group_by else None,
                charge.line_item if "line_item" in query.group_by else None,
                charge.api_key_id if "api_key_id" in query.group_by else None,
            )
            group = groups.get(key)
            if group is None:
                group = groups[key] = {
                    "object": "organization.costs.result",
                    "amount": {"value": Decimal(0), "currency": "usd"},
                    "line_item": key[1],
                    "project_id": key[0],
                    "api_key_id": key[2],
                    "user_id": None,
                    "api_source": None,
                    "quantity": 0 if key[1] is not None and charge.quantity is not None else None,
                    "quantity_unit": None,
                }
            group["amount"]["value"] = EXACT_SUMS.add(group["amount"]["value"], charge.amount)
            if group["quantity"] is not None:
                group["quantity"] += charge.quantity or 0
                if charge.line_item != "web search tool calls":
                    group["quantity_unit"] = "tokens"
        return [groups[key] for key in sorted(groups, key=lambda k: tuple("" if v is None else v for v in k))]

    return _page("costs", query, results)


_USAGE_GROUPS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier", "api_source")
_SERVICE_TIERS = {"": "default", "batch": "default", "flex": "flex", "priority": "priority"}


def _usage(kind: str, embeddings: bool) -> Callable[[RecordedRequest, BillingBook], dict[str, Any]]:
    def build(request: RecordedRequest, book: BillingBook) -> dict[str, Any]:
        query = _query(
            request,
            group_fields=_USAGE_GROUPS if not embeddings else ("project_id", "user_id", "api_key_id", "model"),
            filter_fields=("project_ids", "models", "api_key_ids", "user_ids"),
            default_limit=7,
            max_limit=31,
        )
        by_day: dict[date, list[ServedUsage]] = {}
        for entry in book.usage("openai"):
            if (entry.endpoint == _EMBEDDINGS) != embeddings:
                continue
            if query.batch is not None and (entry.tier == "batch") != query.batch:
                continue
            if _kept(query, project_ids=entry.account or None, models=entry.model, api_key_ids=entry.api_key_id):
                by_day.setdefault(entry.day, []).append(entry)

        def results(day: date) -> list[dict[str, Any]]:
            groups: dict[tuple[Any, ...], dict[str, Any]] = {}
            for entry in by_day.get(day, ()):
                keys = {
                    "project_id": entry.account or None,
                    "user_id": None,
                    "api_key_id": entry.api_key_id,
                    "model": entry.model,
                    "batch": entry.tier == "batch",
                    "service_tier": _SERVICE_TIERS.get(entry.tier, entry.tier),
                    "api_source": "unlabeled",
                }
                fields = _USAGE_GROUPS if not embeddings else ("project_id", "user_id", "api_key_id", "model")
                grouped = {name: (keys[name] if name in query.group_by else None) for name in fields}
                key = tuple(grouped.values())
                group = groups.get(key)
                if group is None:
                    group = groups[key] = {
                        "object": f"organization.usage.{kind}.result",
                        **_zeros(embeddings),
                        **grouped,
                    }
                _add(group, entry, embeddings)
            return [groups[key] for key in sorted(groups, key=lambda k: tuple(str(v) for v in k))]

        return _page(kind, query, results)

    return build


def _zeros(embeddings: bool) -> dict[str, int]:
    if embeddings:
        return {"input_tokens": 0, "num_model_requests": 0}
    return {
        "input_tokens": 0,
        "input_cached_tokens": 0,
        "input_cache_write_tokens": 0,
        "input_uncached_tokens": 0,
        "input_audio_tokens": 0,
        "output_tokens": 0,
        "output_audio_tokens": 0,
        "num_model_requests": 0,
    }


def _add(group: dict[str, Any], entry: ServedUsage, embeddings: bool) -> None:
    group["input_tokens"] += entry.input_tokens  # includes cache reads and writes, as OpenAI counts it
    group["num_model_requests"] += 1
    if embeddings:
        return
    writes = entry.cache_write_5m_input_tokens + entry.cache_write_1h_input_tokens
    group["input_cached_tokens"] += entry.cache_read_input_tokens
    group["input_cache_write_tokens"] += writes
    group["input_uncached_tokens"] += entry.input_tokens - entry.cache_read_input_tokens - writes
    group["output_tokens"] += entry.output_tokens


def _kept(query: _Query, **values: str | None) -> bool:
    """Whether a result passes the query's filters (`project_ids`, `models`, ...)."""
    return all(name not in query.filters or value in query.filters[name] for name, value in values.items())


# --- exact JSON ---------------------------------------------------------------------------------------------

_DECIMAL_MARK = re.compile(r'"\\u0000(-?[0-9]+(?:\.[0-9]+)?)\\u0000"')


def _encode(payload: Any) -> bytes:
    """JSON with every `Decimal` written as the number it is (`json` would need a float, which rounds)."""

    def mark(value: Any) -> str:
        if isinstance(value, Decimal) and value.is_finite():
            return f"\x00{value:f}\x00"
        raise TypeError(f"not JSON serializable: {type(value).__name__}")

    text = json.dumps(payload, default=mark, separators=(",", ":"))
    return _DECIMAL_MARK.sub(r"\1", text).encode()


ROUTES: dict[str, BillingHandler] = {
    "/v1/organization/costs": _handler("costs", _costs),
    "/v1/organization/usage/completions": _handler("completions", _usage("completions", embeddings=False)),
    "/v1/organization/usage/embeddings": _handler("embeddings", _usage("embeddings", embeddings=True)),
}
