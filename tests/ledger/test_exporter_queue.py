"""Only cost spans reach the ledger's batch queue, and a cost span dropped from a full queue is counted in `lost`,
logged once per burst with its count, and visible in metrics (issue 10, item 3).

Real parts: the SDK's tracer provider and batch worker, a real SQLite ledger behind a wrapper whose writes are
slow (as a locked SQLite file makes them: a busy timeout per write), the SDK's metric reader.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

import otel_ai_cost
from otel_ai_cost.contract import (
    LEDGER_EXPORTER_BUFFERED,
    LEDGER_EXPORTER_DUPLICATES,
    LEDGER_EXPORTER_LOST,
    LEDGER_EXPORTER_REJECTED,
    LEDGER_EXPORTER_WRITTEN,
    Cost,
    PricingStatus,
)
from otel_ai_cost.ledger.exporter import LedgerBatchSpanProcessor, LedgerSpanExporter
from otel_ai_cost.ledger.open_store import LEDGER_ENV
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery, WriteResult
from otel_ai_cost.stand_in import Scenario

LOGGER = "otel_ai_cost.ledger"
SDK_LOGGER = "opentelemetry.sdk._shared_internal"


class SlowStore:
    """A real SQLiteStore whose every write takes `delay_s` first."""

    def __init__(self, store: SQLiteStore, delay_s: float) -> None:
        self.store = store
        self.delay_s = delay_s
        self.writes = 0

    def write(self, records: Sequence[LedgerRecord]) -> WriteResult:
        self.writes += 1
        time.sleep(self.delay_s)
        return self.store.write(records)

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    provider = TracerProvider(resource=Resource.create({"service.name": "busy-app"}))
    yield provider
    provider.shutdown()


def _slow_ledger(provider: TracerProvider, store: SQLiteStore, delay_s: float) -> LedgerBatchSpanProcessor:
    exporter = LedgerSpanExporter(SlowStore(store, delay_s), owns_store=False)
    processor = LedgerBatchSpanProcessor(exporter, max_queue_size=32, max_export_batch_size=8, schedule_delay_millis=10)
    provider.add_span_processor(processor)
    return processor


def _cost_span(provider: TracerProvider, n: int) -> None:
    attributes = {Cost.PRICING_STATUS: PricingStatus.PRICED.value, Cost.AMOUNT: f"0.{n + 1:04d}"}
    provider.get_tracer("otel_ai_cost").start_span(f"chat {n}", attributes=attributes).end()


def _app_spans(provider: TracerProvider, count: int) -> None:
    tracer = provider.get_tracer("the-app")
    for n in range(count):
        tracer.start_span("GET /orders", attributes={"http.route": "/orders", "n": n}).end()


def _stored(store: SQLiteStore) -> int:
    return len(list(store.query(UsageQuery())))


def test_the_applications_other_spans_never_take_a_place_in_the_ledgers_queue(
    provider: TracerProvider, sqlite_store: SQLiteStore, caplog: pytest.LogCaptureFixture
):
    processor = _slow_ledger(provider, sqlite_store, delay_s=0.3)
    with caplog.at_level(logging.WARNING):
        for n in range(30):  # 30 calls among 6,000 other spans, while every write takes 0.3 s
            _app_spans(provider, 200)
            _cost_span(provider, n)
        assert provider.force_flush()
    assert _stored(sqlite_store) == 30
    assert processor.ledger_exporter.lost == 0
    assert not [r for r in caplog.records if r.name == SDK_LOGGER and "Queue full" in r.getMessage()]


def test_a_cost_span_dropped_from_a_full_queue_is_counted_logged_once_per_burst_and_in_metrics(
    provider: TracerProvider, sqlite_store: SQLiteStore, caplog: pytest.LogCaptureFixture
):
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    processor = _slow_ledger(provider, sqlite_store, delay_s=0.3)
    exporter = processor.ledger_exporter
    exporter.observe(meters)
    with caplog.at_level(logging.WARNING):
        for n in range(300):  # far more calls than the queue holds while the store is slow
            _cost_span(provider, n)
        _app_spans(provider, 1000)
        assert provider.force_flush()

    stored = _stored(sqlite_store)
    assert 0 < stored < 300 and exporter.lost > 0
    assert stored + exporter.lost == 300  # every cost record is stored or counted: none vanished silently
    bursts = [r.getMessage() for r in caplog.records if r.name == LOGGER and "queue full" in r.getMessage()]
    assert bursts and len(bursts) < 10  # once per burst, not once per span
    assert sum(int(re.search(r"(\d+) cost spans were dropped", m).group(1)) for m in bursts) == exporter.lost
    assert not [r for r in caplog.records if r.name == SDK_LOGGER and "Queue full" in r.getMessage()]

    points = _points(reader)
    assert points[LEDGER_EXPORTER_LOST.name] == exporter.lost
    assert points[LEDGER_EXPORTER_WRITTEN.name] == stored
    assert points[LEDGER_EXPORTER_DUPLICATES.name] == 0
    assert points[LEDGER_EXPORTER_REJECTED.name] == 0
    assert points[LEDGER_EXPORTER_BUFFERED.name] == 0
    meters.shutdown()


def test_cost_spans_ended_after_shutdown_are_counted_as_lost(provider: TracerProvider, sqlite_store: SQLiteStore):
    processor = _slow_ledger(provider, sqlite_store, delay_s=0)
    _cost_span(provider, 1)
    provider.shutdown()
    _cost_span(provider, 2)
    assert _stored(sqlite_store) == 1 and processor.ledger_exporter.lost == 1


def test_the_ledger_processor_reads_the_installed_sdks_queue(provider: TracerProvider, sqlite_store: SQLiteStore):
    # The drop count relies on the SDK's queue (private in opentelemetry-sdk): an SDK that moves it fails here.
    processor = _slow_ledger(provider, sqlite_store, delay_s=0)
    assert processor._sdk_queue is processor._batch_processor._queue and processor._max_queue_size == 32


def test_instrument_reports_the_ledgers_counters_on_its_meter_provider(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, provider: TracerProvider, stand_in
):
    monkeypatch.setenv(LEDGER_ENV, f"sqlite://{tmp_path}/usage.db")
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    try:
        otel_ai_cost.instrument(tracer_provider=provider, meter_provider=meters)
        stand_in.push(Scenario(prompt_tokens=1000, completion_tokens=200))
        client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        provider.get_tracer("the-app").start_span("GET /health").end()
        assert provider.force_flush()
        points = _points(reader)
    finally:
        otel_ai_cost.uninstrument()
        meters.shutdown()
    assert points[LEDGER_EXPORTER_WRITTEN.name] == 1
    assert points[LEDGER_EXPORTER_LOST.name] == 0


def _points(reader: InMemoryMetricReader) -> dict[str, int]:
    """The ledger exporter's metrics: name -> its one data point's value."""
    found: dict[str, int] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if not metric.name.startswith("otel_ai_cost.ledger."):
                    continue
                (point,) = metric.data.data_points
                found[metric.name] = point.value
    return found
