"""A finished call -> its ledger record, from the call's own typed values (no round trip through span attributes).

The in-process ledger takes this path: the recorder hands the record it builds here straight to the ledger's
queue, so the record costs one object instead of a span re-read and re-parsed. The collector's path
(`ledger serve`, OTLP) still reads spans with `from_span`; a test holds the two equal for the same call.

The record carries the same values as the call's span: the same resource fields, the same attribution, the same
tokens and money. Unlike a span, it is built whether or not the tracer's sampler kept the span: a sampled-out
call still cost money.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from otel_ai_cost.contract import CURRENCY, Attribution, Code, CostSource, Outcome, Record, Resource
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.pricing.usage import Usage

# The record fields a span's resource gives (or, when the SDK resource lacks them, the recorder's own detected
# attributes, which then ride on the span): the one list both paths read.
RESOURCE_FIELDS: tuple[tuple[str, str], ...] = (
    (Record.ENVIRONMENT, Resource.DEPLOYMENT_ENVIRONMENT_NAME),
    (Record.SERVICE, Resource.SERVICE_NAME),
    (Record.CICD_PIPELINE_NAME, Resource.CICD_PIPELINE_NAME),
    (Record.CICD_RUN_ID, Resource.CICD_PIPELINE_RUN_ID),
    (Record.CICD_RUN_URL, Resource.CICD_PIPELINE_RUN_URL_FULL),
    (Record.CICD_TASK_NAME, Resource.CICD_PIPELINE_TASK_NAME),
    (Record.VCS_REPOSITORY_URL, Resource.VCS_REPOSITORY_URL_FULL),
    (Record.VCS_REVISION, Resource.VCS_REF_HEAD_REVISION),
    (Record.VCS_REF_NAME, Resource.VCS_REF_HEAD_NAME),
    (Record.VCS_CHANGE_ID, Resource.VCS_CHANGE_ID),
)
RESOURCE_DEFAULTS = {Record.ENVIRONMENT: "development", Record.SERVICE: "unknown_service"}
# Attribution attribute -> record field. A call's attribution wins over the resource's (a process-wide team set
# with OTEL_RESOURCE_ATTRIBUTES=ai_cost.team=search). Tags apart: `ai_cost.tag.<key>` -> tags[key], span only.
ATTRIBUTION_FIELDS: tuple[tuple[str, str], ...] = (
    (Record.OPERATION_TYPE, Attribution.OPERATION_TYPE),
    (Record.JOB_ID, Attribution.JOB_ID),
    (Record.BATCH_ID, Attribution.BATCH_ID),
    (Record.TEAM, Attribution.TEAM),
    (Record.USER_ID, Attribution.USER_ID),
)
_TAG_PREFIX = Attribution.TAG_PREFIX


def resource_fields(*sources: Mapping[str, Any]) -> dict[str, Any]:
    """The record fields that resource attributes give, attribution included; a later source wins. Computed once
    per recorder: `call_record` starts from them."""
    fields: dict[str, Any] = {}
    for field, key in RESOURCE_FIELDS + ATTRIBUTION_FIELDS:
        value = None
        for source in sources:
            value = source.get(key, value)
        fields[field] = RESOURCE_DEFAULTS.get(field, "") if value is None else str(value)
    fields[Record.TAGS] = {}
    return fields


def _with_attribution(fields: Mapping[str, Any], attribution: Mapping[str, Any]) -> Mapping[str, Any]:
    """`fields` with a call's attribution (`current_attributes()` at its start) over them."""
    if not attribution:
        return fields
    merged = dict(fields)
    for field, key in ATTRIBUTION_FIELDS:
        value = attribution.get(key)
        if value is not None:
            merged[field] = str(value)
    merged[Record.TAGS] = {
        key[len(_TAG_PREFIX) :]: str(value) for key, value in attribution.items() if key.startswith(_TAG_PREFIX)
    }
    path = attribution.get(Code.FILE_PATH)  # an unattributed call in a strict environment: where it was made
    if path is not None:
        merged[Record.CALL_SITE] = f"{path}:{attribution.get(Code.LINE_NUMBER, 0)}"
    return merged


def call_record(
    *,
    trace_id: int,
    span_id: int,
    start_time_ns: int,
    end_time_ns: int,
    resource: Mapping[str, str],
    attribution: Mapping[str, Any],
    provider: str,
    operation: str,
    request_model: str,
    response_model: str,
    usage: Usage | None,
    amount: Decimal | None,
    computed_amount: Decimal | None,
    cost_source: str,
    pricing_status: str,
    pricing_version: str,
    pricing_tier: str,
    error_type: str,
    partial: bool,
    api_key_fingerprint: str = "",
) -> LedgerRecord:
    """The record of one finished call. `resource` is `resource_fields(...)`, computed once per recorder; `usage`
    is None when the call reported none or an unreadable one (its counts are then left at 0, as on the span).
    Bounds are checked by the store (`limits.check_record`), which rejects a record beyond one alone."""
    if usage is None:
        counts = (0, 0, 0, 0, 0, 0, 0)
    else:
        counts = (
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_input_tokens,
            usage.cache_write_5m_input_tokens,
            usage.cache_write_1h_input_tokens,
            usage.reasoning_output_tokens,
            usage.web_search_requests,
        )
    outcome = Outcome.ERROR if error_type else Outcome.PARTIAL if partial else Outcome.SUCCESS
    return LedgerRecord(
        trace_id=format(trace_id, "032x"),
        span_id=format(span_id, "016x"),
        # Whole seconds and microseconds from integers, as `from_span` does (a float of nanoseconds can round).
        timestamp=datetime.fromtimestamp(start_time_ns // 1_000_000_000, tz=timezone.utc).replace(
            microsecond=(start_time_ns // 1000) % 1_000_000
        ),
        provider=provider,
        request_model=request_model,
        response_model=response_model,
        operation=operation,
        input_tokens=counts[0],
        output_tokens=counts[1],
        cache_read_input_tokens=counts[2],
        cache_write_5m_input_tokens=counts[3],
        cache_write_1h_input_tokens=counts[4],
        reasoning_output_tokens=counts[5],
        web_search_requests=counts[6],
        amount=amount,
        computed_amount=computed_amount,
        currency=CURRENCY,
        cost_source=cost_source if amount is not None else CostSource.LOCAL.value,
        pricing_status=pricing_status,
        pricing_version=pricing_version,
        pricing_tier=pricing_tier,
        duration_ms=max(0, end_time_ns - start_time_ns) / 1e6,
        outcome=outcome.value,
        error_type=error_type,
        api_key_fingerprint=api_key_fingerprint,
        **_with_attribution(resource, attribution),
    )
