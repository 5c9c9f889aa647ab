"""GenAI span -> ledger record. Pure: the in-process exporter and the ledger service (OTLP) both use it.

Every bound of `limits.py` is applied here, at the edge: a span beyond one (2**63-1 tokens, a 100,000-character
model name, a start time in the year 2262) is rejected with `InvalidSpan` naming the field and the bound, alone,
before it reaches a store.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from otel_ai_cost.contract import (
    CURRENCY,
    ERROR_TYPE,
    ApiKey,
    Attribution,
    Code,
    Cost,
    CostSource,
    GenAI,
    Outcome,
    PricingStatus,
    Record,
    Resource,
)
from otel_ai_cost.ledger import limits
from otel_ai_cost.ledger.from_call import resource_fields
from otel_ai_cost.ledger.record import LedgerRecord


class InvalidSpan(ValueError):
    """A span that claims to be a priced GenAI call but cannot be recorded as one (says what is wrong)."""


def is_cost_span(attributes: Mapping[str, Any]) -> bool:
    """Only our spans carry a pricing status; other spans (the anthropic SDK's own, HTTP, ...) are not calls to
    record, so nothing is counted twice."""
    return Cost.PRICING_STATUS in attributes


def record_from_attributes(
    *,
    trace_id: str,
    span_id: str,
    start_time_ns: int,
    end_time_ns: int,
    resource: Mapping[str, Any],
    attributes: Mapping[str, Any],
) -> LedgerRecord:
    """Builds the record of one cost span. Raises `InvalidSpan` with a precise reason."""
    if len(trace_id) != 32 or len(span_id) != 16:
        raise InvalidSpan(f"trace_id/span_id must be 32/16 hex digits, got {trace_id!r}/{span_id!r}")
    if start_time_ns <= 0:
        raise InvalidSpan("span has no start time")
    try:
        limits.check_start_time_ns("start time", start_time_ns)
        record = _build(trace_id, span_id, start_time_ns, end_time_ns, resource, attributes)
        limits.check_record(record)
    except limits.OutOfBounds as error:
        attribute = _ATTRIBUTE_OF.get(error.field)
        raise InvalidSpan(f"{error} (span attribute {attribute})" if attribute else str(error)) from None
    return record


def _build(
    trace_id: str,
    span_id: str,
    start_time_ns: int,
    end_time_ns: int,
    resource: Mapping[str, Any],
    attributes: Mapping[str, Any],
) -> LedgerRecord:
    """The record as the span states it; the caller checks it against every bound (`limits.check_record`)."""

    def text(key: str, default: str = "") -> str:
        value = attributes.get(key)
        if value is None:
            value = resource.get(key)
        return default if value is None else str(value)

    def count(key: str) -> Any:
        return attributes.get(key, 0)

    def money(key: str) -> Decimal | None:
        raw = attributes.get(key)
        if raw is None:
            return None
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            raise InvalidSpan(f"{key} is not a decimal: {raw!r}") from None
        if not value.is_finite() or value < 0:
            raise InvalidSpan(f"{key} must be a finite, non-negative decimal: {raw!r}")
        return value

    amount = money(Cost.AMOUNT)
    computed_amount = money(Cost.COMPUTED_AMOUNT)  # our catalog's figure beside a provider-reported amount

    cache_write_5m = count(Cost.USAGE_CACHE_CREATION_5M_INPUT_TOKENS)
    cache_write_1h = count(Cost.USAGE_CACHE_CREATION_1H_INPUT_TOKENS)
    if not cache_write_5m and not cache_write_1h:
        cache_write_5m = count(GenAI.USAGE_CACHE_CREATION_INPUT_TOKENS)  # no split known: the default TTL

    error_type = text(ERROR_TYPE)
    partial = attributes.get(Cost.USAGE_PARTIAL) is True
    outcome = Outcome.ERROR if error_type else Outcome.PARTIAL if partial else Outcome.SUCCESS
    tags = {
        key[len(Attribution.TAG_PREFIX) :]: str(value)
        for key, value in attributes.items()
        if key.startswith(Attribution.TAG_PREFIX)
    }
    context = resource_fields(resource, attributes)  # the span's own attributes win over its resource's
    context[Record.TAGS] = tags
    path = attributes.get(Code.FILE_PATH)
    if path is not None:  # an unattributed call in a strict environment: where it was made (as `from_call` says)
        context[Record.CALL_SITE] = f"{path}:{attributes.get(Code.LINE_NUMBER, 0)}"
    return LedgerRecord(
        trace_id=trace_id.lower(),
        span_id=span_id.lower(),
        # Whole seconds and microseconds from integers: a float of nanoseconds can round into the next second.
        timestamp=datetime.fromtimestamp(start_time_ns // 1_000_000_000, tz=timezone.utc).replace(
            microsecond=(start_time_ns // 1000) % 1_000_000
        ),
        provider=text(GenAI.PROVIDER_NAME),
        request_model=text(GenAI.REQUEST_MODEL),
        response_model=text(GenAI.RESPONSE_MODEL),
        operation=text(GenAI.OPERATION_NAME),
        input_tokens=count(GenAI.USAGE_INPUT_TOKENS),
        output_tokens=count(GenAI.USAGE_OUTPUT_TOKENS),
        cache_read_input_tokens=count(GenAI.USAGE_CACHE_READ_INPUT_TOKENS),
        cache_write_5m_input_tokens=cache_write_5m,
        cache_write_1h_input_tokens=cache_write_1h,
        reasoning_output_tokens=count(GenAI.USAGE_REASONING_OUTPUT_TOKENS),
        web_search_requests=count(Cost.USAGE_WEB_SEARCH_REQUESTS),
        amount=amount,
        computed_amount=computed_amount,
        currency=text(Cost.CURRENCY, CURRENCY),
        cost_source=text(Cost.SOURCE, CostSource.LOCAL.value),
        pricing_status=text(Cost.PRICING_STATUS, PricingStatus.NO_USAGE.value),
        pricing_version=text(Cost.PRICING_VERSION),
        pricing_tier=text(Cost.PRICING_TIER),
        duration_ms=max(0, end_time_ns - start_time_ns) / 1e6,
        outcome=outcome.value,
        error_type=error_type,
        api_key_fingerprint=text(ApiKey.FINGERPRINT),
        **context,
    )


# The span attribute each record field comes from, to name it in a rejection.
_ATTRIBUTE_OF: dict[str, str] = {
    Record.ENVIRONMENT: Resource.DEPLOYMENT_ENVIRONMENT_NAME,
    Record.SERVICE: Resource.SERVICE_NAME,
    Record.PROVIDER: GenAI.PROVIDER_NAME,
    Record.REQUEST_MODEL: GenAI.REQUEST_MODEL,
    Record.RESPONSE_MODEL: GenAI.RESPONSE_MODEL,
    Record.OPERATION: GenAI.OPERATION_NAME,
    Record.OPERATION_TYPE: Attribution.OPERATION_TYPE,
    Record.CURRENCY: Cost.CURRENCY,
    Record.COST_SOURCE: Cost.SOURCE,
    Record.PRICING_STATUS: Cost.PRICING_STATUS,
    Record.PRICING_VERSION: Cost.PRICING_VERSION,
    Record.PRICING_TIER: Cost.PRICING_TIER,
    Record.ERROR_TYPE: ERROR_TYPE,
    Record.JOB_ID: Attribution.JOB_ID,
    Record.BATCH_ID: Attribution.BATCH_ID,
    Record.TEAM: Attribution.TEAM,
    Record.USER_ID: Attribution.USER_ID,
    Record.TAGS: Attribution.TAG_PREFIX + "*",
    Record.AMOUNT: Cost.AMOUNT,
    Record.COMPUTED_AMOUNT: Cost.COMPUTED_AMOUNT,
    Record.INPUT_TOKENS: GenAI.USAGE_INPUT_TOKENS,
    Record.OUTPUT_TOKENS: GenAI.USAGE_OUTPUT_TOKENS,
    Record.CACHE_READ_INPUT_TOKENS: GenAI.USAGE_CACHE_READ_INPUT_TOKENS,
    Record.CACHE_WRITE_5M_INPUT_TOKENS: Cost.USAGE_CACHE_CREATION_5M_INPUT_TOKENS,
    Record.CACHE_WRITE_1H_INPUT_TOKENS: Cost.USAGE_CACHE_CREATION_1H_INPUT_TOKENS,
    Record.REASONING_OUTPUT_TOKENS: GenAI.USAGE_REASONING_OUTPUT_TOKENS,
    Record.WEB_SEARCH_REQUESTS: Cost.USAGE_WEB_SEARCH_REQUESTS,
    Record.API_KEY_FINGERPRINT: ApiKey.FINGERPRINT,
    Record.CALL_SITE: Code.FILE_PATH,
}


def record_from_span(span: Any) -> LedgerRecord | None:
    """From an SDK `ReadableSpan`; None for spans that are not cost spans."""
    attributes = span.attributes or {}
    if not is_cost_span(attributes):
        return None
    context = span.get_span_context()
    return record_from_attributes(
        trace_id=format(context.trace_id, "032x"),
        span_id=format(context.span_id, "016x"),
        start_time_ns=span.start_time or 0,
        end_time_ns=span.end_time or span.start_time or 0,
        resource=span.resource.attributes if span.resource else {},
        attributes=attributes,
    )
