"""LedgerSpanExporter with real SDK spans: conversion, invalid spans, the retry buffer, thread safety."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import openai
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_ai_cost
from otel_ai_cost.contract import Cost, GenAI, PricingStatus
from otel_ai_cost.ledger.exporter import LedgerBatchSpanProcessor, LedgerSpanExporter
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import StoreUnavailable, UsageQuery, WriteResult
from otel_ai_cost.stand_in import Scenario

LOGGER = "otel_ai_cost.ledger"


class FlakyStore:
    """A real SQLiteStore that is unavailable for the next `failures` writes (or always, with failures=-1)."""

    def __init__(self, store: SQLiteStore, failures: int = 0) -> None:
        self.store = store
        self.failures = failures
        self.attempts = 0
        self.closed = False
        self._lock = threading.Lock()

    def write(self, records: Sequence[LedgerRecord]) -> WriteResult:
        with self._lock:
            self.attempts += 1
            if self.failures:
                self.failures -= 1 if self.failures > 0 else 0
                raise StoreUnavailable("disk full (simulated)")
        return self.store.write(records)

    def close(self) -> None:
        self.closed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def cost_spans(count: int, *, start: int = 0, **attributes: Any) -> list[ReadableSpan]:
    """Finished SDK spans shaped like ours: a priced openai chat each (amount 0.001 + n * 1e-12)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc", "deployment.environment.name": "prod"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("otel_ai_cost")
    for n in range(start, start + count):
        tracer.start_span(
            "chat gpt-4o-mini",
            attributes={
                Cost.PRICING_STATUS: PricingStatus.PRICED.value,
                GenAI.PROVIDER_NAME: "openai",
                GenAI.REQUEST_MODEL: "gpt-4o-mini",
                GenAI.USAGE_INPUT_TOKENS: 10,
                Cost.AMOUNT: str(Decimal("0.001") + Decimal(n).scaleb(-12)),
                **attributes,
            },
        ).end()
    return list(memory.get_finished_spans())


def _records(store: SQLiteStore) -> list[LedgerRecord]:
    return list(store.query(UsageQuery()))


# -- conversion -----------------------------------------------------------------------------------------------


def test_a_real_instrumented_call_is_recorded(telemetry, stand_in, sqlite_store: SQLiteStore):
    exporter = LedgerSpanExporter(sqlite_store, owns_store=False)
    telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=200))
    client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0)
    with otel_ai_cost.ai_usage_context(job_id="job-7", team="search"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    telemetry.tracer_provider.get_tracer("someone-else").start_span("GET /health").end()  # not a cost span

    span = telemetry.span()
    (record,) = _records(sqlite_store)
    assert record.key == (format(span.context.trace_id, "032x"), format(span.context.span_id, "016x"))
    assert record.amount == Decimal(span.attributes[Cost.AMOUNT]) == Decimal("0.00027")
    assert (record.provider, record.request_model, record.input_tokens, record.output_tokens) == (
        "openai", "gpt-4o-mini", 1000, 200)  # fmt: skip
    assert (record.job_id, record.team, record.service, record.environment) == (
        "job-7", "search", "tests", "development")  # fmt: skip
    assert exporter.written == 1 and exporter.invalid_spans == {}


def test_an_invalid_span_is_skipped_counted_and_logged_once_per_reason(
    sqlite_store: SQLiteStore, caplog: pytest.LogCaptureFixture
):
    exporter = LedgerSpanExporter(sqlite_store)
    bad_tokens = cost_spans(2, start=10, **{GenAI.USAGE_INPUT_TOKENS: -1})
    bad_amount = cost_spans(1, start=20, **{Cost.AMOUNT: "twelve"})
    batch = [*cost_spans(1), *bad_tokens, *bad_amount, *cost_spans(1, start=1)]
    with caplog.at_level(logging.WARNING, LOGGER):
        assert exporter.export(batch) is SpanExportResult.SUCCESS
        assert exporter.export(cost_spans(1, start=30, **{GenAI.USAGE_INPUT_TOKENS: -1})) is SpanExportResult.SUCCESS
    assert len(_records(sqlite_store)) == 2  # the valid ones, around the bad ones
    assert sorted(exporter.invalid_spans.values()) == [1, 3]
    assert any("input_tokens must be a non-negative integer" in reason for reason in exporter.invalid_spans)
    warnings = [r.getMessage() for r in caplog.records if "span not recorded" in r.getMessage()]
    assert len(warnings) == 2  # once per reason, not once per span


# -- the retry buffer -----------------------------------------------------------------------------------------


def test_records_of_failed_exports_are_kept_and_written_once_when_the_store_recovers(sqlite_store: SQLiteStore):
    store = FlakyStore(sqlite_store, failures=2)
    exporter = LedgerSpanExporter(store, retry_interval_s=0)  # no cooldown: every export asks the store
    first, second, third = cost_spans(3), cost_spans(4, start=3), cost_spans(2, start=7)
    assert exporter.export(first) is SpanExportResult.FAILURE
    assert exporter.buffered == 3
    assert exporter.export(second) is SpanExportResult.FAILURE
    assert exporter.buffered == 7 and _records(sqlite_store) == []
    # Recovered; the batch also replays a span already delivered (at-least-once delivery).
    assert exporter.export([*third, first[0]]) is SpanExportResult.SUCCESS
    assert exporter.buffered == 0
    records = _records(sqlite_store)
    assert len(records) == len({r.key for r in records}) == 9
    month = sqlite_store.totals("prod", records[0].month)
    assert month.calls == 9
    assert month.amount == sum((Decimal("0.001") + Decimal(n).scaleb(-12) for n in range(9)), Decimal(0))
    assert (exporter.written, exporter.duplicates, exporter.lost) == (9, 1, 0)


def test_after_a_failure_exports_only_buffer_until_the_cooldown_ends(sqlite_store: SQLiteStore):
    # A store that hangs on its busy timeout must not stall the SDK's batch worker on every export.
    store = FlakyStore(sqlite_store, failures=1)
    exporter = LedgerSpanExporter(store, retry_interval_s=0.2)
    assert exporter.export(cost_spans(2)) is SpanExportResult.FAILURE
    assert exporter.export(cost_spans(2, start=2)) is SpanExportResult.FAILURE
    assert store.attempts == 1 and exporter.buffered == 4  # the second export did not touch the store
    time.sleep(0.25)
    assert exporter.export(cost_spans(1, start=4)) is SpanExportResult.SUCCESS
    assert store.attempts == 2 and len(_records(sqlite_store)) == 5


def test_force_flush_retries_the_buffer(sqlite_store: SQLiteStore):
    store = FlakyStore(sqlite_store, failures=1)
    exporter = LedgerSpanExporter(store)
    assert exporter.export(cost_spans(2)) is SpanExportResult.FAILURE
    assert exporter.force_flush() is True
    assert len(_records(sqlite_store)) == 2 and exporter.buffered == 0


def test_shutdown_writes_what_is_buffered(sqlite_store: SQLiteStore):
    store = FlakyStore(sqlite_store, failures=1)
    exporter = LedgerSpanExporter(store)
    exporter.export(cost_spans(2))
    exporter.shutdown()
    assert len(_records(sqlite_store)) == 2 and store.closed
    assert exporter.lost == 0


def test_shutdown_that_cannot_write_reports_how_many_records_are_lost(
    sqlite_store: SQLiteStore, caplog: pytest.LogCaptureFixture
):
    store = FlakyStore(sqlite_store, failures=-1)
    exporter = LedgerSpanExporter(store)
    exporter.export(cost_spans(3))
    exporter.export(cost_spans(2, start=3))
    with caplog.at_level(logging.ERROR, LOGGER):
        exporter.shutdown()
        exporter.shutdown()  # idempotent
    assert exporter.lost == 5
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        f"otel-ai-cost ledger: 5 records could not be written to sqlite://{sqlite_store.path} at shutdown and are lost"
    ]
    assert exporter.export(cost_spans(1, start=9)) is SpanExportResult.FAILURE and exporter.lost == 6


def test_a_full_retry_buffer_drops_the_oldest_and_says_how_many(
    sqlite_store: SQLiteStore, caplog: pytest.LogCaptureFixture
):
    store = FlakyStore(sqlite_store, failures=2)
    exporter = LedgerSpanExporter(store, max_buffered=3, retry_interval_s=0)
    with caplog.at_level(logging.ERROR, LOGGER):
        exporter.export(cost_spans(2))
        exporter.export(cost_spans(3, start=2))
    assert (exporter.buffered, exporter.lost) == (3, 2)
    assert any("the 2 oldest records are lost" in r.getMessage() for r in caplog.records)
    assert exporter.force_flush()
    amounts = sorted(r.amount for r in _records(sqlite_store))
    assert amounts == [Decimal("0.001") + Decimal(n).scaleb(-12) for n in (2, 3, 4)]  # the newest three


def test_an_unexpected_store_error_is_treated_like_an_outage(sqlite_store: SQLiteStore):
    class Broken(FlakyStore):
        def write(self, records: Sequence[LedgerRecord]) -> WriteResult:
            if self.failures:
                self.failures = 0
                raise RuntimeError("bug")
            return self.store.write(records)

    exporter = LedgerSpanExporter(Broken(sqlite_store, failures=1))
    assert exporter.export(cost_spans(2)) is SpanExportResult.FAILURE
    assert exporter.force_flush() and len(_records(sqlite_store)) == 2


def test_provider_force_flush_reaches_the_buffer_through_the_ledger_processor(sqlite_store: SQLiteStore):
    # The SDK's BatchSpanProcessor drops a failed batch and its force_flush never asks the exporter to retry;
    # the ledger's processor does, so one provider.force_flush() writes everything after an outage.
    store = FlakyStore(sqlite_store, failures=1)
    exporter = LedgerSpanExporter(store)
    provider = TracerProvider()
    provider.add_span_processor(LedgerBatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    tracer = provider.get_tracer("otel_ai_cost")
    for n in range(3):
        tracer.start_span("chat", attributes={Cost.PRICING_STATUS: "priced", Cost.AMOUNT: f"0.{n + 1}"}).end()
    assert provider.force_flush()
    assert store.attempts == 2  # the batch failed once, then the buffer was retried
    assert sorted(r.amount for r in _records(sqlite_store)) == [Decimal("0.1"), Decimal("0.2"), Decimal("0.3")]
    provider.shutdown()


def test_concurrent_exports_lose_and_double_nothing(sqlite_store: SQLiteStore):
    class EveryThirdFails(FlakyStore):
        def write(self, records: Sequence[LedgerRecord]) -> WriteResult:
            with self._lock:
                self.attempts += 1
                fail = self.attempts % 3 == 0
            if fail:
                raise StoreUnavailable("busy (simulated)")
            return self.store.write(records)

    exporter = LedgerSpanExporter(EveryThirdFails(sqlite_store))
    batches = [cost_spans(25, start=k * 25) for k in range(16)]
    threads = [threading.Thread(target=lambda b=b: [exporter.export(b), exporter.export(b[:5])]) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while not exporter.force_flush():
        pass
    records = _records(sqlite_store)
    assert len(records) == len({r.key for r in records}) == 400
    assert exporter.written == 400 and exporter.lost == 0


def test_a_paused_exporter_records_nothing_until_resumed(sqlite_store: SQLiteStore):
    exporter = LedgerSpanExporter(sqlite_store)
    exporter.pause()
    assert exporter.export(cost_spans(2)) is SpanExportResult.SUCCESS
    assert _records(sqlite_store) == []
    exporter.resume()
    exporter.export(cost_spans(1, start=5))
    assert len(_records(sqlite_store)) == 1
