"""The ledger service over HTTP, driven by the OpenTelemetry SDK's real OTLP/HTTP exporter and by hand-built
OTLP requests (protobuf, OTLP/JSON with hex ids, gzip), against a real SQLite store in a temporary file.

Amounts (USD per million tokens): gpt-4o-mini input 0.15, output 0.60; claude-haiku-4-5 input 1.00, output 5.00.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
import time
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest
import requests
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_ai_cost.contract import INSTRUMENTATION_SCOPE, Cost, GenAI
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.service import LedgerService, ServiceConfig
from otel_ai_cost.ledger.service import otlp as otlp_codec
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import InvalidRecord, StoreUnavailable, UsageQuery, WriteResult
from otel_ai_cost.stand_in import Scenario

MSGS = [{"role": "user", "content": "Label this receipt"}]
PROTOBUF = {"Content-Type": "application/x-protobuf"}
SPEND = "ai_cost_ledger_spend_USD"
SPEND_BY_MODEL = "ai_cost_ledger_spend_by_model_USD"


# --- fixtures and helpers ----------------------------------------------------------------------------------------
@pytest.fixture
def service(start_service) -> LedgerService:
    return start_service()


def exporter_for(service: LedgerService, **kwargs: Any) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=f"{service.url}/v1/traces", timeout=kwargs.pop("timeout", 10), **kwargs)


def cost_attributes(amount: str = "0.00027", **extra: Any) -> dict[str, Any]:
    return {
        GenAI.OPERATION_NAME: "chat",
        GenAI.PROVIDER_NAME: "openai",
        GenAI.REQUEST_MODEL: "gpt-4o-mini",
        GenAI.RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        GenAI.USAGE_INPUT_TOKENS: 1000,
        GenAI.USAGE_OUTPUT_TOKENS: 200,
        Cost.AMOUNT: amount,
        Cost.CURRENCY: "USD",
        Cost.SOURCE: "local",
        Cost.PRICING_STATUS: "priced",
        **extra,
    }


def unpriced_attributes() -> dict[str, Any]:
    attributes = cost_attributes(**{Cost.PRICING_STATUS: "unpriced"})
    del attributes[Cost.AMOUNT]
    return attributes


def make_spans(*attribute_sets: dict[str, Any], environment: str = "production") -> list[ReadableSpan]:
    """Finished SDK spans, one per attribute set (a set without a pricing status is a plain, non-cost span)."""
    memory = InMemorySpanExporter()
    resource = Resource.create({"service.name": "billing", "deployment.environment.name": environment})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(INSTRUMENTATION_SCOPE)
    for attributes in attribute_sets:
        tracer.start_span("chat gpt-4o-mini", attributes=attributes).end()
    provider.shutdown()
    return list(memory.get_finished_spans())


def ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def records(store: SQLiteStore, **filters: Any) -> list[LedgerRecord]:
    return list(store.query(UsageQuery(**filters)))


def otlp_json(spans: Sequence[ReadableSpan]) -> bytes:
    """OTLP/JSON as the spec writes it: protobuf's JSON mapping, but trace and span ids as hex strings."""
    document = json_format.MessageToDict(encode_spans(spans))
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(document).encode()


def post(service: LedgerService, body: bytes, headers: dict[str, str], path: str = "/v1/traces") -> requests.Response:
    return requests.post(f"{service.url}{path}", data=body, headers=headers, timeout=10)


_SAMPLE = re.compile(r"^(\w+)(?:\{(.*)\})? (\S+)$")


def scrape(service: LedgerService, **headers: str) -> dict[tuple[str, frozenset[tuple[str, str]]], str]:
    """`/metrics` as {(name, labels): value text}; also checks every sample has a HELP and TYPE line."""
    response = requests.get(f"{service.url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    typed: set[str] = set()
    samples = {}
    for line in response.text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif line and not line.startswith("#"):
            name, labels, value = _SAMPLE.match(line).groups()  # type: ignore[union-attr]
            assert name in typed, line
            pairs = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels or ""))
            samples[(name, pairs)] = value
    return samples


def sample(samples: dict, name: str, **labels: str) -> str:
    return samples[(name, frozenset(labels.items()))]


# --- real calls, real exporter -----------------------------------------------------------------------------------
def test_real_calls_exported_by_the_sdk_become_exact_records_once(stand_in, telemetry, service, store):
    oai = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test-secret-key-123", max_retries=0)
    ant = anthropic.Anthropic(base_url=stand_in.anthropic_base_url, api_key="sk-ant-secret-999", max_retries=0)
    stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=200, model="gpt-4o-mini-2024-07-18"))
    oai.chat.completions.create(model="gpt-4o-mini", messages=MSGS)
    stand_in.push(Scenario(input_tokens=1000, output_tokens=200))
    ant.messages.create(model="claude-haiku-4-5", max_tokens=500, messages=MSGS)
    spans = telemetry.spans_exporter.get_finished_spans()  # ours and any other (SDK, HTTP): all are sent
    ours = telemetry.spans()
    assert len(ours) == 2

    exporter = exporter_for(service)
    assert exporter.export(spans) is SpanExportResult.SUCCESS

    stored = {r.key: r for r in records(store)}
    assert set(stored) == {ids(span) for span in ours}
    by_provider = {r.provider: r for r in stored.values()}
    # 1000*0.15 + 200*0.60 = 270 per 1M; 1000*1.00 + 200*5.00 = 2000 per 1M
    assert by_provider["openai"].amount == Decimal("0.00027")
    assert by_provider["openai"].response_model == "gpt-4o-mini-2024-07-18"
    assert by_provider["anthropic"].amount == Decimal("0.002")
    assert (by_provider["anthropic"].input_tokens, by_provider["anthropic"].output_tokens) == (1000, 200)
    assert {r.service for r in stored.values()} == {"tests"}
    day = by_provider["openai"].day

    # At-least-once delivery: the same batch again changes nothing.
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert len(records(store)) == 2
    totals = store.totals("development", day)
    assert (totals.amount, totals.calls) == (Decimal("0.00227"), 2)
    service.clock = lambda: datetime.fromisoformat(f"{day}T12:00:00+00:00")
    samples = scrape(service)
    assert sample(samples, "ai_cost_ledger_records_written_total") == "2"
    assert sample(samples, "ai_cost_ledger_duplicates_ignored_total") == "2"
    assert sample(samples, "ai_cost_ledger_spans_ignored_total") == str(2 * (len(spans) - 2))
    assert sample(samples, "ai_cost_ledger_spend_USD", environment="development", period="day") == "0.00227"


def test_metrics_report_exact_spend_per_day_month_environment_and_model(service, store):
    spans = make_spans(
        cost_attributes("0.1"),
        cost_attributes("0.2"),
        cost_attributes("0.0000001", **{GenAI.PROVIDER_NAME: "anthropic", GenAI.RESPONSE_MODEL: "claude-haiku-4-5"}),
        unpriced_attributes(),
    )
    spans += make_spans(cost_attributes("1.5"), environment="staging")
    exporter = exporter_for(service)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    start = datetime.fromtimestamp(spans[0].start_time / 1e9, tz=timezone.utc)
    service.clock = lambda: start

    samples = scrape(service)
    for period in ("day", "month"):
        spend = {env: sample(samples, SPEND, environment=env, period=period) for env in ("production", "staging")}
        assert spend == {"production": "0.3000001", "staging": "1.5"}  # exact: 0.1 + 0.2 is not 0.30000000000000004
        by_model = {
            (provider, model): sample(
                samples, SPEND_BY_MODEL, environment="production", period=period, provider=provider, model=model
            )
            for provider, model in (("openai", "gpt-4o-mini-2024-07-18"), ("anthropic", "claude-haiku-4-5"))
        }
        assert list(by_model.values()) == ["0.3", "0.0000001"]
        assert sample(samples, "ai_cost_ledger_calls", environment="production", period=period) == "4"
        assert sample(samples, "ai_cost_ledger_unpriced_calls", environment="production", period=period) == "1"
    assert sample(samples, "ai_cost_ledger_store_up") == "1"
    assert sample(samples, "ai_cost_ledger_spans_received_total") == "5"
    assert sample(samples, "ai_cost_ledger_records_written_total") == "5"
    assert sample(samples, "ai_cost_ledger_http_requests_total", path="/v1/traces", code="200") == "1"

    # The next UTC day: the day's spend starts again from zero, the month's goes on.
    service.clock = lambda: start + timedelta(days=1)
    samples = scrape(service)
    assert sample(samples, "ai_cost_ledger_spend_USD", environment="production", period="day") == "0"


def test_metrics_still_answer_without_the_store_and_say_so(start_service, store):
    class DownStore(SQLiteStore):
        def totals(self, environment: str, period: str):
            raise StoreUnavailable("down")

    service = start_service(DownStore(store.path))
    exporter = exporter_for(service)
    assert exporter.export(make_spans(cost_attributes())) is SpanExportResult.SUCCESS  # writes still work
    exporter.shutdown()
    samples = scrape(service)
    assert sample(samples, "ai_cost_ledger_store_up") == "0"
    assert sample(samples, "ai_cost_ledger_records_written_total") == "1"
    assert not [key for key in samples if key[0] == "ai_cost_ledger_spend_USD"]  # never a fake zero spend


# --- encodings ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_otlp_json_with_hex_ids_is_accepted_and_answered_in_json(service, store, compressed):
    spans = make_spans(cost_attributes("0.5"), {"http.method": "POST"})
    body = otlp_json(spans)
    headers = {"Content-Type": "application/json"}
    if compressed:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"

    response = post(service, body, headers)

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    json_format.Parse(response.text, ExportTraceServiceResponse())  # a valid (empty) response
    assert [r.key for r in records(store)] == [ids(spans[0])]
    assert records(store)[0].amount == Decimal("0.5")


def test_sdk_exporter_with_gzip_compression(service, store):
    from opentelemetry.exporter.otlp.proto.http import Compression

    spans = make_spans(cost_attributes("0.25"), cost_attributes("0.75"))
    exporter = exporter_for(service, compression=Compression.Gzip)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert sum(r.amount for r in records(store)) == Decimal("1.00")


def test_deflate_and_chunked_bodies_are_accepted(service, store):
    spans = make_spans(cost_attributes("0.1"))
    body = zlib.compress(encode_spans(spans).SerializeToString())
    chunks = iter([body[:10], body[10:]])  # a generator body: requests sends it chunked
    response = requests.post(
        f"{service.url}/v1/traces", data=chunks, headers={**PROTOBUF, "Content-Encoding": "deflate"}, timeout=10
    )
    assert response.status_code == 200, response.content
    assert len(records(store)) == 1


# --- partial success ---------------------------------------------------------------------------------------------
def test_invalid_cost_spans_are_rejected_in_partial_success_and_the_rest_recorded(service, store):
    spans = make_spans(cost_attributes("0.01"), cost_attributes("cheap"), {"http.method": "GET"})
    response = post(service, encode_spans(spans).SerializeToString(), PROTOBUF)

    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    message = answer.partial_success.error_message
    assert "ai_cost.amount" in message and "cheap" in message and ids(spans[1])[1] in message
    assert [r.key for r in records(store)] == [ids(spans[0])]
    samples = scrape(service)
    assert sample(samples, "ai_cost_ledger_spans_rejected_total") == "1"
    assert sample(samples, "ai_cost_ledger_spans_ignored_total") == "1"


def test_partial_success_in_json(service, store):
    spans = make_spans(cost_attributes("-1"), cost_attributes(**{GenAI.USAGE_INPUT_TOKENS: -5}))
    response = post(service, otlp_json(spans), {"Content-Type": "application/json"})

    answer = json_format.Parse(response.text, ExportTraceServiceResponse())
    assert answer.partial_success.rejected_spans == 2
    assert "non-negative" in answer.partial_success.error_message
    assert records(store) == []


def test_sdk_exporter_counts_a_partially_rejected_batch_as_delivered(service, store):
    """partial_success is a 200: the sender must not retry the whole batch (the valid spans are recorded)."""
    spans = make_spans(cost_attributes("0.01"), cost_attributes("NaN"))
    exporter = exporter_for(service)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert len(records(store)) == 1


# --- malformed, oversize, unauthorized ---------------------------------------------------------------------------
def status_of(response: requests.Response) -> status_pb2.Status:
    assert response.headers["Content-Type"] == "application/x-protobuf"
    return status_pb2.Status.FromString(response.content)


def test_undecodable_protobuf_is_400_with_a_status_message(service):
    response = post(service, b"\x0a\xff\xff\xff\xff", PROTOBUF)
    assert response.status_code == 400
    status = status_of(response)
    assert status.code == 3  # INVALID_ARGUMENT
    assert "protobuf" in status.message


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "invalid JSON"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 400, "JSON object"),
        (b'{"resourceSpans": 7}', {"Content-Type": "application/json"}, 400, "OTLP/JSON"),
        (b"plainly not gzip", {**PROTOBUF, "Content-Encoding": "gzip"}, 400, "invalid gzip"),
        (gzip.compress(b"x" * 100)[:-8], {**PROTOBUF, "Content-Encoding": "gzip"}, 400, "truncated"),
        (b"", {**PROTOBUF, "Content-Encoding": "br"}, 415, "content encoding"),
        (b"{}", {"Content-Type": "text/plain"}, 415, "content type"),
    ],
    ids=["json", "json-array", "json-shape", "gzip", "gzip-truncated", "brotli", "text"],
)
def test_malformed_payloads_are_answered_with_a_clear_message(service, store, body, headers, status, words):
    response = post(service, body, headers)
    assert response.status_code == status
    assert words in response.content.decode(errors="replace")
    assert records(store) == []


def test_oversize_body_is_413_before_reading_it(start_service):
    service = start_service(max_body_bytes=64 * 1024)
    response = post(service, b"\0" * (256 * 1024), PROTOBUF)
    assert response.status_code == 413
    assert "limit of 65536 bytes" in status_of(response).message
    assert post(service, encode_spans(make_spans(cost_attributes())).SerializeToString(), PROTOBUF).ok


def test_gzip_bomb_is_413_without_inflating_it(start_service, store):
    service = start_service(max_body_bytes=64 * 1024)
    bomb = gzip.compress(b"\0" * (32 * 1024 * 1024), compresslevel=9)  # 32 KiB that inflate to 32 MiB
    assert len(bomb) < 64 * 1024
    response = post(service, bomb, {**PROTOBUF, "Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert "decompressed body exceeds" in status_of(response).message


def test_decompression_never_holds_more_than_the_limit():
    import tracemalloc

    inflater = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = b"\0" * (1024 * 1024)
    bomb = b"".join(inflater.compress(zeros) for _ in range(64)) + inflater.flush()  # 64 MiB inflated
    tracemalloc.start()
    try:
        with pytest.raises(otlp_codec.PayloadError) as caught:
            otlp_codec.decompress(bomb, "gzip", 1024 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.status == 413
    assert peak < 8 * 1024 * 1024


def test_multi_member_gzip_is_decoded_whole():
    assert otlp_codec.decompress(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip", 10) == b"abcd"


def test_bearer_token_is_required_when_configured(start_service, store):
    service = start_service(token="s3cret-token")
    body = encode_spans(make_spans(cost_attributes())).SerializeToString()

    missing = post(service, body, PROTOBUF)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert "s3cret" not in missing.text
    assert post(service, body, {**PROTOBUF, "Authorization": "Bearer wrong"}).status_code == 401
    assert post(service, body, {**PROTOBUF, "Authorization": "Basic s3cret-token"}).status_code == 401
    assert requests.get(f"{service.url}/v1/usage", timeout=5).status_code == 401
    assert requests.get(f"{service.url}/metrics", timeout=5).status_code == 401
    assert requests.get(f"{service.url}/healthz", timeout=5).status_code == 200  # probes carry no token
    assert records(store) == []

    exporter = exporter_for(service, headers={"Authorization": "Bearer s3cret-token"})
    assert exporter.export(make_spans(cost_attributes())) is SpanExportResult.SUCCESS
    exporter.shutdown()
    assert len(records(store)) == 1


def test_unknown_paths_and_methods(service):
    assert requests.get(f"{service.url}/v1/metrics", timeout=5).status_code == 404
    wrong = requests.get(f"{service.url}/v1/traces", timeout=5)
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST"
    assert requests.post(f"{service.url}/healthz", data=b"x", timeout=5).status_code == 405


# --- store unavailable: 503 + Retry-After, retried, never counted twice ------------------------------------------
class FlakyStore(SQLiteStore):
    """Raises StoreUnavailable on the first `failures` writes; `commit_first` stores the batch before raising (a
    write that succeeded but whose acknowledgement was lost)."""

    def __init__(self, path: Any, failures: int, commit_first: bool = False, retry_after_s: float = 0.2) -> None:
        super().__init__(path)
        self.failures = failures
        self.commit_first = commit_first
        self.retry_after_s = retry_after_s
        self.calls = 0

    def write(self, records: Sequence[LedgerRecord]) -> WriteResult:
        self.calls += 1
        if self.calls <= self.failures:
            if self.commit_first:
                super().write(records)
            raise StoreUnavailable("throttled", retry_after_s=self.retry_after_s)
        return super().write(records)


def test_store_unavailable_is_503_with_retry_after(start_service, store):
    service = start_service(FlakyStore(store.path, failures=1, retry_after_s=2.5))
    response = post(service, encode_spans(make_spans(cost_attributes())).SerializeToString(), PROTOBUF)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "3"  # whole seconds, rounded up
    assert status_of(response).code == 14  # UNAVAILABLE
    json_response = post(service, b"{}", {"Content-Type": "application/json"})
    assert json_response.status_code == 200  # nothing to write: the store is not needed


@pytest.mark.parametrize("commit_first", [False, True], ids=["nothing-written", "written-but-unacknowledged"])
def test_the_sdk_exporter_retries_a_503_and_the_batch_counts_once(start_service, store, commit_first):
    flaky = FlakyStore(store.path, failures=1, commit_first=commit_first)
    service = start_service(flaky)
    spans = make_spans(cost_attributes("0.1"), cost_attributes("0.2"), cost_attributes("0.3"))
    exporter = exporter_for(service)

    assert exporter.export(spans) is SpanExportResult.SUCCESS  # after one Retry-After (1 s)
    exporter.shutdown()

    assert flaky.calls == 2
    assert len(records(store)) == 3
    day = records(store)[0].day
    assert store.totals("production", day).amount == Decimal("0.6")
    samples = scrape(service)
    assert sample(samples, "ai_cost_ledger_write_failures_total") == "1"
    assert sample(samples, "ai_cost_ledger_records_written_total") == ("0" if commit_first else "3")
    assert sample(samples, "ai_cost_ledger_duplicates_ignored_total") == ("3" if commit_first else "0")
    assert sample(samples, "ai_cost_ledger_http_requests_total", path="/v1/traces", code="503") == "1"


# --- health ------------------------------------------------------------------------------------------------------
def test_healthz_follows_the_store(start_service, store):
    assert requests.get(f"{start_service().url}/healthz", timeout=5).json() == {"status": "ok"}

    class DownStore(SQLiteStore):
        def totals(self, environment: str, period: str):
            raise StoreUnavailable("down")

    down = requests.get(f"{start_service(DownStore(store.path)).url}/healthz", timeout=5)
    assert down.status_code == 503
    assert down.json()["status"] == "unavailable"


# --- graceful shutdown -------------------------------------------------------------------------------------------
class GateStore(SQLiteStore):
    """Holds every write until `gate` is set, so a test can shut down while a write is in flight."""

    def __init__(self, path: Any) -> None:
        super().__init__(path)
        self.entered = threading.Event()
        self.gate = threading.Event()

    def write(self, records: Sequence[LedgerRecord]) -> WriteResult:
        self.entered.set()
        assert self.gate.wait(10)
        return super().write(records)


def test_shutdown_finishes_in_flight_writes_refuses_new_ones_and_closes_the_store(tmp_path):
    gate_store = GateStore(tmp_path / "ledger.db")
    service = LedgerService(gate_store, ServiceConfig(port=0)).start()
    keep_alive = requests.Session()
    assert keep_alive.get(f"{service.url}/healthz", timeout=5).ok  # an idle keep-alive connection

    spans = make_spans(cost_attributes("0.7"))
    results: list[SpanExportResult] = []
    sender = threading.Thread(target=lambda: results.append(exporter_for(service).export(spans)))
    sender.start()
    assert gate_store.entered.wait(5)

    drained: list[bool] = []
    stopper = threading.Thread(target=lambda: drained.append(service.shutdown(timeout=10)))
    stopper.start()
    deadline = time.monotonic() + 5
    while not service.draining and time.monotonic() < deadline:
        time.sleep(0.01)

    # Meanwhile: the kept-alive connection is answered 503 (retryable) and new connections are refused.
    late = keep_alive.post(f"{service.url}/v1/traces", data=b"", headers=PROTOBUF, timeout=5)
    assert late.status_code == 503
    assert late.headers["Retry-After"] == "1"
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{service.url}/healthz", timeout=2)
    assert stopper.is_alive()  # still waiting for the write

    gate_store.gate.set()
    sender.join(10)
    stopper.join(10)
    assert results == [SpanExportResult.SUCCESS]
    assert drained == [True]
    with pytest.raises(StoreUnavailable):  # closed by the service
        gate_store.totals("production", "2026-01")
    with SQLiteStore(tmp_path / "ledger.db") as reopened:
        assert [r.amount for r in records(reopened)] == [Decimal("0.7")]


# --- bounded concurrency ------------------------------------------------------------------------------------------
def test_an_idle_keep_alive_connection_holding_the_last_slot_makes_room_for_a_new_one(start_service):
    # Shedding with 503 when every connection is busy is covered in test_service_limits.py; an idle one must
    # never lock others out (issue 10, item 12).
    service = start_service(max_connections=1)
    holder = requests.Session()
    assert holder.get(f"{service.url}/healthz", timeout=5).ok  # holds the only slot (keep-alive), then idles
    newcomer = requests.get(f"{service.url}/healthz", timeout=5)
    assert newcomer.status_code == 200
    assert holder.get(f"{service.url}/healthz", timeout=5).ok  # the evicted holder reconnects transparently
    holder.close()


def test_metrics_use_the_stores_environment_listing_when_it_has_one(start_service, store):
    class ListingStore(SQLiteStore):
        def environments(self) -> dict[str, int]:  # the DynamoDB store's shape: {environment: shards}
            return {"qa": 4}

        def aggregate(self, query, group_by):
            raise AssertionError("not needed when the store lists its environments")

    service = start_service(ListingStore(store.path))
    samples = scrape(service)
    assert sample(samples, "ai_cost_ledger_spend_USD", environment="qa", period="month") == "0"
    assert sample(samples, "ai_cost_ledger_store_up") == "1"


def test_an_internal_error_is_a_500_not_a_dropped_connection(service, monkeypatch):
    def broken(request):
        raise RuntimeError("bug")

    monkeypatch.setattr(otlp_codec, "extract_records", broken)
    response = post(service, encode_spans(make_spans(cost_attributes())).SerializeToString(), PROTOBUF)
    assert response.status_code == 500
    assert requests.get(f"{service.url}/healthz", timeout=5).ok  # the service goes on


class PickyStore(SQLiteStore):
    """A store that can never hold one kind of record (as DynamoDB cannot hold 39 significant digits)."""

    def write(self, records: Sequence[LedgerRecord]) -> WriteResult:
        if any(r.job_id == "poison" for r in records):
            raise InvalidRecord("amount has more digits than this store keeps")
        return super().write(records)


def test_a_record_the_store_can_never_hold_is_rejected_alone_not_retried_forever(start_service, tmp_path):
    picky = PickyStore(tmp_path / "picky.db")
    service = start_service(picky)
    spans = make_spans(cost_attributes(**{"ai_cost.job.id": "poison"}), cost_attributes(), cost_attributes())
    response = post(service, encode_spans(spans).SerializeToString(), PROTOBUF)

    assert response.status_code == 200  # not 503: a retry could never succeed
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "more digits than this store keeps" in answer.partial_success.error_message
    assert sorted(r.key for r in records(picky)) == sorted(ids(s) for s in spans[1:])
