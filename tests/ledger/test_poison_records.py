"""One unstorable record never blocks its batch (issue 10, items 1, 6 and 17): the real SDK OTLP exporter sends 100
valid cost spans and one poison span to a real ledger service on a SQLite file; the 100 are stored, the poison one
is rejected alone with its reason in `partial_success`, and the answer is a 200 (a 503 would be retried forever)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
import requests
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_ai_cost import contract
from otel_ai_cost.contract import INSTRUMENTATION_SCOPE, Attribution, Cost, GenAI
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.service import LedgerService
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import InvalidRecord, RetryBatch, UsageQuery, WriteResult

PROTOBUF = {"Content-Type": "application/x-protobuf"}
START_NS = int(datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc).timestamp()) * 10**9


def cost_attributes(**extra: Any) -> dict[str, Any]:
    return {
        GenAI.OPERATION_NAME: "chat",
        GenAI.PROVIDER_NAME: "openai",
        GenAI.REQUEST_MODEL: "gpt-4o-mini",
        GenAI.USAGE_INPUT_TOKENS: 1000,
        GenAI.USAGE_OUTPUT_TOKENS: 200,
        Cost.AMOUNT: "0.00027",
        Cost.CURRENCY: "USD",
        Cost.SOURCE: "local",
        Cost.PRICING_STATUS: "priced",
        Attribution.JOB_ID: "nightly",
        **extra,
    }


def make_spans(
    attribute_sets: Sequence[dict[str, Any]], start_times: Sequence[int] | None = None
) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    resource = Resource.create({"service.name": "billing", "deployment.environment.name": "production"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(INSTRUMENTATION_SCOPE)
    for i, attributes in enumerate(attribute_sets):
        start = START_NS + i * 1000 if start_times is None else start_times[i]
        tracer.start_span("chat gpt-4o-mini", attributes=attributes, start_time=start).end(end_time=start + 10**6)
    provider.shutdown()
    return list(memory.get_finished_spans())


def key_of(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def stored(store: SQLiteStore) -> list[LedgerRecord]:
    return list(store.query(UsageQuery()))


def post(service: LedgerService, spans: Sequence[ReadableSpan]) -> ExportTraceServiceResponse:
    response = requests.post(
        f"{service.url}/v1/traces", data=encode_spans(spans).SerializeToString(), headers=PROTOBUF, timeout=10
    )
    assert response.status_code == 200, response.content
    return ExportTraceServiceResponse.FromString(response.content)


# (attributes of the poison span, start time or None, words its rejection reason names)
POISON: dict[str, tuple[dict[str, Any], int | None, tuple[str, ...]]] = {
    "amount-1e13-usd": ({Cost.AMOUNT: "1E+13"}, None, ("amount", "10000000")),
    "input-tokens-2**63-1": ({GenAI.USAGE_INPUT_TOKENS: 2**63 - 1}, None, ("input_tokens", "1000000000")),
    "output-tokens-1e20": ({GenAI.USAGE_OUTPUT_TOKENS: 1e20}, None, ("output_tokens",)),
    "cache-read-beyond-bound": ({GenAI.USAGE_CACHE_READ_INPUT_TOKENS: 10**9 + 1}, None, ("cache_read",)),
    "web-searches-beyond-bound": ({Cost.USAGE_WEB_SEARCH_REQUESTS: 10**7}, None, ("web_search",)),
    "model-100000-chars": ({GenAI.REQUEST_MODEL: "m" * 100_000}, None, ("request_model", "100000", "200")),
    "pricing-status-1000-chars": ({Cost.PRICING_STATUS: "p" * 1000}, None, ("pricing_status", "priced")),
    "team-1000-chars": ({Attribution.TEAM: "t" * 1000}, None, ("team",)),
    "too-many-tags": ({f"{Attribution.TAG_PREFIX}k{i}": "v" for i in range(100)}, None, ("tags", "64")),
    "start-time-2**63-ns": ({}, 2**63, ("start time", "2100")),
    "amount-40-decimal-places": ({Cost.AMOUNT: "0." + "1" * 40}, None, ("amount", "decimal places")),
    "currency-eur": ({Cost.CURRENCY: "EUR"}, None, ("currency", "USD")),
}


@pytest.mark.parametrize("poison", list(POISON), ids=list(POISON))
def test_sdk_exporter_100_valid_spans_and_one_poison_span_stores_the_100(start_service, store, poison):
    attributes, start_time, words = POISON[poison]
    sets = [cost_attributes() for _ in range(100)]
    sets.insert(37, cost_attributes(**attributes))
    starts = None if start_time is None else [START_NS + i * 1000 if i != 37 else start_time for i in range(101)]
    spans = make_spans(sets, starts)
    service = start_service()

    exporter = OTLPSpanExporter(endpoint=f"{service.url}/v1/traces", timeout=5)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()

    keys = {r.key for r in stored(store)}
    assert keys == {key_of(s) for i, s in enumerate(spans) if i != 37}
    assert service.stats.value(contract.LEDGER_SPANS_REJECTED) == 1
    assert store.totals("production", "2026-11").amount == Decimal("0.027")  # 100 x 0.00027, exactly

    answer = post(service, [spans[37]])  # the same span again, to read its reason
    assert answer.partial_success.rejected_spans == 1
    message = answer.partial_success.error_message
    assert key_of(spans[37])[1] in message
    for word in words:
        assert word in message, message


def test_the_issues_case_report_by_job_id_and_usage_by_job_id_stay_exact(start_service, store):
    """issue 10 item 6: input_tokens = 2**63-1 was accepted, the rollup became a float, `report --by job_id` died
    with 'integer overflow' and /v1/usage?aggregation=job_id answered 500."""
    service = start_service()
    spans = make_spans([cost_attributes(**{GenAI.USAGE_INPUT_TOKENS: 2**63 - 1}), cost_attributes()])
    answer = post(service, spans)
    assert answer.partial_success.rejected_spans == 1
    assert "input_tokens" in answer.partial_success.error_message

    usage = requests.get(f"{service.url}/v1/usage", params={"aggregation": "job_id"}, timeout=10)
    assert usage.status_code == 200, usage.text
    (row,) = usage.json()["rows"]
    assert row["job_id"] == "nightly" and row["input_tokens"] == 1000
    (by_job,) = store.aggregate(UsageQuery(), ["job_id"])
    assert by_job.input_tokens == 1000 and isinstance(by_job.input_tokens, int)


# --- the service's isolation logic, for each class of store error -------------------------------------------------
class CountingStore(SQLiteStore):
    """A real SQLite store that counts its writes, and can refuse batches larger than `max_batch` (as a store whose
    transactions have a size limit does: RetryBatch) or any batch holding a record of job `poison` (InvalidRecord
    without saying which record, as a store that validates the batch as a whole does)."""

    def __init__(self, path: Any, max_batch: int | None = None) -> None:
        super().__init__(path)
        self.max_batch = max_batch
        self.writes: list[int] = []

    def write(self, records: Sequence[LedgerRecord]) -> WriteResult:
        self.writes.append(len(records))
        if self.max_batch is not None and len(records) > self.max_batch:
            raise RetryBatch(f"{len(records)} records exceed a transaction of {self.max_batch}")
        if any(r.job_id == "poison" for r in records):
            raise InvalidRecord("this store cannot hold jobs named poison")
        return super().write(records)


def test_a_healthy_batch_costs_one_write(start_service, tmp_path):
    counting = CountingStore(tmp_path / "counting.db")
    service = start_service(counting)
    post(service, make_spans([cost_attributes() for _ in range(100)]))
    assert counting.writes == [100]


def test_retry_batch_is_retried_in_smaller_slices_within_the_request(start_service, tmp_path):
    counting = CountingStore(tmp_path / "counting.db", max_batch=30)
    service = start_service(counting)
    spans = make_spans([cost_attributes() for _ in range(100)])
    answer = post(service, spans)

    assert answer.partial_success.rejected_spans == 0
    assert {r.key for r in stored(counting)} == {key_of(s) for s in spans}
    assert sum(n for n in counting.writes if n <= 30) == 100  # every record written once, in slices
    assert len(counting.writes) <= 15  # halves, not one write per record


def test_an_unattributed_invalid_record_is_found_by_halving_not_one_write_per_record(start_service, tmp_path):
    counting = CountingStore(tmp_path / "counting.db")
    service = start_service(counting)
    sets = [cost_attributes() for _ in range(100)]
    sets[63] = cost_attributes(**{Attribution.JOB_ID: "poison"})
    spans = make_spans(sets)
    answer = post(service, spans)

    assert answer.partial_success.rejected_spans == 1
    assert "cannot hold jobs named poison" in answer.partial_success.error_message
    assert key_of(spans[63])[1] in answer.partial_success.error_message
    assert len(stored(counting)) == 99
    assert len(counting.writes) <= 2 * 7 + 1  # a binary search: about 2 log2(100) writes


def test_records_that_would_overflow_a_rollup_row_are_rejected_each_with_the_reason(start_service, store):
    """A full rollup row: the batch (RetryBatch) is split down to single records, each rejected (InvalidRecord)."""
    service = start_service()
    spans = make_spans([cost_attributes() for _ in range(10)])
    stored_before = SQLiteStore(store.path)
    # A rollup row at the edge of int64 (as a ledger written before the bounds existed can hold): the next record
    # of that group cannot be added to it.
    stored_before.write([_record_like(spans[0], n=999)])
    with stored_before._lock:
        stored_before._conn.execute("UPDATE daily SET input_tokens = ?", (2**63 - 10,))
    stored_before.close()
    answer = post(service, spans)
    assert answer.partial_success.rejected_spans == 10
    assert "overflow" in answer.partial_success.error_message
    assert len(stored(store)) == 1  # only the seeded one: each record of the full group rejected, with its reason


def _record_like(span: ReadableSpan, n: int) -> LedgerRecord:
    return LedgerRecord(
        trace_id=f"{n:032x}",
        span_id=f"{n:016x}",
        timestamp=datetime.fromtimestamp(span.start_time // 10**9, tz=timezone.utc),
        environment="production",
        service="billing",
        provider="openai",
        request_model="gpt-4o-mini",
        operation="chat",
        input_tokens=1,
        amount=Decimal("0.00027"),
    )


def test_conflicting_replays_are_counted_and_logged_once(start_service, store, caplog):
    service = start_service()
    (span,) = make_spans([cost_attributes()])
    post(service, [span])
    request = encode_spans([span])
    for attribute in request.resource_spans[0].scope_spans[0].spans[0].attributes:
        if attribute.key == Cost.AMOUNT:
            attribute.value.string_value = "0.5"  # the same identity, another amount
    caplog.set_level(logging.WARNING, logger="otel_ai_cost.ledger")
    for _ in range(2):
        response = requests.post(
            f"{service.url}/v1/traces", data=request.SerializeToString(), headers=PROTOBUF, timeout=10
        )
        assert response.status_code == 200
    post(service, [span])  # an honest replay: a duplicate, not a conflict

    assert [r.amount for r in stored(store)] == [Decimal("0.00027")]  # the first one stays
    assert service.stats.value(contract.LEDGER_RECORD_CONFLICTS) == 2
    assert service.stats.value(contract.LEDGER_DUPLICATES) == 3
    exposition = requests.get(f"{service.url}/metrics", timeout=10).text.splitlines()
    assert "ai_cost_ledger_record_conflicts_total 2" in exposition
    warnings = [r for r in caplog.records if "different content" in r.getMessage()]
    assert len(warnings) <= 1  # once per process (an earlier test may have used the one)
