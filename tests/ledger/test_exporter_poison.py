"""One record the store can never hold must not stall the in-process exporter: it is isolated (only when a write
fails), counted and logged once, and every other record keeps flowing (issue 10, item 2).

Real parts: the real `openai` client against the stand-in, `otel_ai_cost.instrument()`'s wiring, real SQLite files.
The store-level poisons wrap a real `SQLiteStore` and fail for chosen keys only, as a store limit would.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from test_exporter import cost_spans

import otel_ai_cost
from otel_ai_cost.instrument_api import attach_ledger
from otel_ai_cost.ledger.exporter import (
    DEFAULT_ISOLATE_AFTER,
    DEFAULT_MAX_BUFFERED,
    LedgerBatchSpanProcessor,
    LedgerSpanExporter,
)
from otel_ai_cost.ledger.open_store import LEDGER_ENV
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import InvalidRecord, RetryBatch, StoreUnavailable, UsageQuery, WriteResult
from otel_ai_cost.stand_in import Scenario

LOGGER = "otel_ai_cost.ledger"


class PoisonStore:
    """A real SQLiteStore whose `write()` raises `error(key)` for any batch holding one of `poison` keys, or a
    record `poison_if` picks (as a store limit rejects a record), and StoreUnavailable while `down` is set. Counts
    the writes it was asked for."""

    def __init__(
        self,
        store: SQLiteStore,
        poison: set[tuple[str, str]] | None = None,
        error: Callable[[tuple[str, str]], Exception] = lambda key: InvalidRecord(f"record {key[1]} too large"),
        poison_if: Callable[[LedgerRecord], bool] = lambda record: False,
    ) -> None:
        self.store = store
        self.poison = poison or set()
        self.poison_if = poison_if
        self.error = error
        self.down = False
        self.writes = 0
        self.closed = False
        self._lock = threading.Lock()

    def write(self, records: Sequence[LedgerRecord]) -> WriteResult:
        with self._lock:
            self.writes += 1
        if self.down:
            raise StoreUnavailable("disk full (simulated)")
        for record in records:
            if record.key in self.poison or self.poison_if(record):
                raise self.error(record.key)
        return self.store.write(records)

    def close(self) -> None:
        self.closed = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _stored(store: SQLiteStore) -> list[LedgerRecord]:
    return list(store.query(UsageQuery()))


def _keys(spans: Sequence[Any]) -> list[tuple[str, str]]:
    return [(format(s.context.trace_id, "032x"), format(s.context.span_id, "016x")) for s in spans]


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


# -- through the real stack -----------------------------------------------------------------------------------


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    provider = TracerProvider(resource=Resource.create({"service.name": "poisoned"}))
    yield provider
    otel_ai_cost.uninstrument()
    provider.shutdown()


def _ledger_exporter(provider: TracerProvider) -> LedgerSpanExporter:
    (processor,) = [
        p for p in provider._active_span_processor._span_processors if isinstance(p, LedgerBatchSpanProcessor)
    ]
    return processor.ledger_exporter


def _calls(stand_in, before: int, poison: Scenario, after: int) -> None:
    client = openai.OpenAI(base_url=stand_in.openai_base_url, api_key="sk-test", max_retries=0)
    for n in range(before + 1 + after):
        if n == before:
            stand_in.push(poison)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def test_a_response_claiming_1e20_tokens_does_not_stop_the_200_calls_after_it(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    provider: TracerProvider,
    stand_in,
    caplog: pytest.LogCaptureFixture,
):
    ledger = tmp_path / "usage.db"
    monkeypatch.setenv(LEDGER_ENV, f"sqlite://{ledger}")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "200")  # many small exports, as a long-running program has
    otel_ai_cost.instrument(tracer_provider=provider)
    with caplog.at_level(logging.WARNING, LOGGER):
        _calls(stand_in, 5, Scenario(prompt_tokens=10**20, completion_tokens=5), 200)
        assert provider.force_flush()

    exporter = _ledger_exporter(provider)
    with SQLiteStore(ledger) as store:
        stored = _stored(store)
    # The 205 normal calls are stored. The poison one is either rejected (by the store's numeric range, or a bound
    # on token counts when the span is converted), counted and logged once, or recorded marked as malformed
    # (the instrumentation's own bound): never does it hold the others back.
    normal = [r for r in stored if r.input_tokens < 10**6 and r.pricing_status == "priced"]
    assert len(normal) == 205 and len(stored) + exporter.rejected_total == 206
    assert exporter.buffered == 0 and exporter.lost == 0
    assert len(_warnings(caplog, "not recorded")) == exporter.rejected_total


@pytest.mark.parametrize(
    "error",
    [InvalidRecord("input_tokens beyond the store's range"), OverflowError("int too large (a store bug)")],
    ids=["InvalidRecord", "unexpected"],
)
def test_a_call_the_store_cannot_hold_is_isolated_through_the_real_stack(
    tmp_path: Path, provider: TracerProvider, stand_in, caplog: pytest.LogCaptureFixture, error: Exception
):
    # A store limit (a stand-in for SQLite's int64, DynamoDB's item size) on a call that passes every bound
    # before the store: from_span accepts it, the store does not.
    ledger = SQLiteStore(tmp_path / "usage.db")
    store = PoisonStore(ledger, error=lambda key: error, poison_if=lambda record: record.input_tokens == 777)
    attach_ledger(provider, store=store)
    otel_ai_cost.instrument(tracer_provider=provider)
    with caplog.at_level(logging.WARNING, LOGGER):
        _calls(stand_in, 5, Scenario(prompt_tokens=777, completion_tokens=5), 200)
        assert provider.force_flush()

    exporter = _ledger_exporter(provider)
    stored = _stored(ledger)
    assert len(stored) == 205 and 777 not in {r.input_tokens for r in stored}
    assert exporter.rejected_total == 1 and exporter.buffered == 0 and exporter.lost == 0
    assert len(_warnings(caplog, "not recorded")) == 1
    ledger.close()


# -- a record the store rejects (InvalidRecord) ---------------------------------------------------------------


def test_a_record_the_store_rejects_is_dropped_alone_counted_and_logged_once(
    sqlite_store: SQLiteStore, caplog: pytest.LogCaptureFixture
):
    spans = cost_spans(40)
    poison = set(_keys(spans[13:14]))
    store = PoisonStore(sqlite_store, poison)
    exporter = LedgerSpanExporter(store, retry_interval_s=0)
    with caplog.at_level(logging.WARNING, LOGGER):
        assert exporter.export(spans[:20]) is SpanExportResult.SUCCESS
        assert exporter.export(spans[20:]) is SpanExportResult.SUCCESS
        assert exporter.export(spans[13:14]) is SpanExportResult.SUCCESS  # delivered again: rejected again
    stored = _stored(sqlite_store)
    assert len(stored) == 39 and not poison & {r.key for r in stored}
    assert exporter.rejected == {f"record {spans[13].context.span_id:016x} too large": 2}
    assert (exporter.written, exporter.buffered, exporter.lost) == (39, 0, 0)
    assert len(_warnings(caplog, "not recorded")) == 1  # once per reason
    # Isolation costs writes only when one fails: a clean batch is one write.
    before = store.writes
    exporter.export(cost_spans(30, start=100))
    assert store.writes == before + 1


def test_a_record_the_store_names_is_dropped_without_bisecting(sqlite_store: SQLiteStore):
    spans = cost_spans(64)
    poison = set(_keys([spans[5], spans[40]]))
    store = PoisonStore(sqlite_store, poison, error=lambda key: InvalidRecord("model name too long", key=key))
    exporter = LedgerSpanExporter(store)
    assert exporter.export([*spans, spans[5]]) is SpanExportResult.SUCCESS  # the same poison delivered twice
    assert len(_stored(sqlite_store)) == 62 and exporter.rejected == {"model name too long": 3}
    assert store.writes == 3  # the batch; without the first named record; without the second


def test_several_poison_records_in_one_batch_are_each_isolated(sqlite_store: SQLiteStore):
    spans = cost_spans(64)
    poison = set(_keys([spans[0], spans[31], spans[32], spans[63]]))
    store = PoisonStore(sqlite_store, poison)
    exporter = LedgerSpanExporter(store)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    assert len(_stored(sqlite_store)) == 60 and sum(exporter.rejected.values()) == 4
    assert store.writes < 64  # bisected, not written one by one


def test_a_poison_record_in_the_retry_buffer_does_not_block_it_after_an_outage(sqlite_store: SQLiteStore):
    spans = cost_spans(30)
    store = PoisonStore(sqlite_store, set(_keys(spans[5:6])))
    store.down = True
    exporter = LedgerSpanExporter(store, retry_interval_s=0)
    assert exporter.export(spans[:10]) is SpanExportResult.FAILURE
    assert exporter.export(spans[10:20]) is SpanExportResult.FAILURE
    assert exporter.buffered == 20
    store.down = False
    assert exporter.export(spans[20:]) is SpanExportResult.SUCCESS
    assert len(_stored(sqlite_store)) == 29 and exporter.buffered == 0 and sum(exporter.rejected.values()) == 1


def test_the_store_going_down_while_a_batch_is_isolated_keeps_the_rest_buffered(sqlite_store: SQLiteStore):
    spans = cost_spans(16)
    store = PoisonStore(sqlite_store, set(_keys(spans[0:1])))
    real_write = store.write

    def write_then_fail(records: Sequence[LedgerRecord]) -> WriteResult:
        result = real_write(records)  # the first write raises InvalidRecord; the next writes a half ...
        store.down = store.writes >= 3  # ... and then the store is down
        return result

    store.write = write_then_fail  # type: ignore[method-assign]
    exporter = LedgerSpanExporter(store, retry_interval_s=0)
    assert exporter.export(spans) is SpanExportResult.FAILURE
    written = exporter.written
    assert 0 < written < 15 and exporter.buffered + written + sum(exporter.rejected.values()) == 16
    store.down = False
    store.write = real_write  # type: ignore[method-assign]
    assert exporter.force_flush()
    assert len(_stored(sqlite_store)) == 15 and exporter.lost == 0


# -- this batch, retry (RetryBatch) ---------------------------------------------------------------------------


def test_a_batch_the_store_asks_to_retry_is_written_in_smaller_slices(sqlite_store: SQLiteStore):
    class TooLargeForOneTransaction(PoisonStore):
        def write(self, records: Sequence[LedgerRecord]) -> WriteResult:
            if len(records) > 8:
                self.writes += 1
                raise RetryBatch(f"{len(records)} records exceed one transaction")
            return super().write(records)

    store = TooLargeForOneTransaction(sqlite_store)
    exporter = LedgerSpanExporter(store)
    assert exporter.export(cost_spans(50)) is SpanExportResult.SUCCESS
    assert len(_stored(sqlite_store)) == 50 and exporter.rejected == {} and exporter.buffered == 0


def test_a_record_that_only_ever_fails_with_retry_batch_is_kept_then_isolated(sqlite_store: SQLiteStore):
    spans = cost_spans(30)
    store = PoisonStore(sqlite_store, set(_keys(spans[7:8])), error=lambda key: RetryBatch("conflict"))
    exporter = LedgerSpanExporter(store, retry_interval_s=0, isolate_after=3)
    assert exporter.export(spans[:10]) is SpanExportResult.FAILURE  # a retry may cure it: kept
    assert len(_stored(sqlite_store)) == 9 and exporter.buffered == 1 and exporter.rejected == {}
    assert exporter.export(spans[10:20]) is SpanExportResult.FAILURE
    # The third failure in a row, while the store writes the others: given up alone.
    assert exporter.export(spans[20:]) is SpanExportResult.SUCCESS
    assert len(_stored(sqlite_store)) == 29 and exporter.buffered == 0
    assert exporter.rejected == {"RetryBatch: conflict": 1}


# -- the store, retry later (StoreUnavailable) ----------------------------------------------------------------


def test_an_unavailable_store_keeps_every_record_and_is_not_bisected(sqlite_store: SQLiteStore):
    store = PoisonStore(sqlite_store)
    store.down = True
    exporter = LedgerSpanExporter(store, retry_interval_s=0)
    for k in range(5):
        assert exporter.export(cost_spans(10, start=10 * k)) is SpanExportResult.FAILURE
    assert exporter.force_flush() is False
    assert store.writes == 6 and exporter.buffered == 50 and exporter.rejected == {}
    store.down = False
    assert exporter.force_flush() and len(_stored(sqlite_store)) == 50


# -- anything else (a bug in the store) -----------------------------------------------------------------------


def test_a_store_bug_on_one_record_is_isolated_after_consecutive_failures(
    sqlite_store: SQLiteStore, caplog: pytest.LogCaptureFixture
):
    spans = cost_spans(30)
    store = PoisonStore(sqlite_store, set(_keys(spans[3:4])), error=lambda key: OverflowError("int too big"))
    exporter = LedgerSpanExporter(store, retry_interval_s=0, isolate_after=3)
    with caplog.at_level(logging.WARNING, LOGGER):
        assert exporter.export(spans[:10]) is SpanExportResult.FAILURE  # like an outage: all kept
        assert exporter.export(spans[10:20]) is SpanExportResult.FAILURE
        assert (exporter.buffered, store.writes, _stored(sqlite_store)) == (20, 2, [])
        assert exporter.export(spans[20:]) is SpanExportResult.SUCCESS  # the third: isolated
    assert len(_stored(sqlite_store)) == 29 and exporter.buffered == 0
    assert exporter.rejected == {"OverflowError: int too big": 1}
    assert len(_warnings(caplog, "not recorded")) == 1


def test_force_flush_and_shutdown_isolate_a_store_bug_at_once(sqlite_store: SQLiteStore):
    spans = cost_spans(12)
    store = PoisonStore(sqlite_store, set(_keys(spans[:1])), error=lambda key: TypeError("unsupported"))
    exporter = LedgerSpanExporter(store, isolate_after=100)
    assert exporter.export(spans[:6]) is SpanExportResult.FAILURE
    assert exporter.force_flush()  # an explicit flush does not wait for more failures
    assert len(_stored(sqlite_store)) == 5
    store.poison = set(_keys(spans[6:7]))
    assert exporter.export(spans[6:]) is SpanExportResult.FAILURE
    exporter.shutdown()  # the last chance: isolated, not all lost
    assert len(_stored(sqlite_store)) == 10 and exporter.lost == 0 and sum(exporter.rejected.values()) == 2


def test_a_store_bug_on_every_record_drops_nothing(sqlite_store: SQLiteStore, caplog: pytest.LogCaptureFixture):
    class AlwaysBroken(PoisonStore):
        def write(self, records: Sequence[LedgerRecord]) -> WriteResult:
            self.writes += 1
            raise RuntimeError("bug")

    store = AlwaysBroken(sqlite_store)
    exporter = LedgerSpanExporter(store, retry_interval_s=0, isolate_after=1)
    with caplog.at_level(logging.WARNING, LOGGER):
        for k in range(3):
            assert exporter.export(cost_spans(1000, start=1000 * k)) is SpanExportResult.FAILURE
        assert exporter.force_flush() is False
    # A record is dropped only when the store demonstrably writes others: a store that writes nothing is down.
    assert exporter.buffered == 3000 and exporter.rejected == {} and exporter.lost == 0
    assert store.writes < 4 * 40  # each round gives up after a few records failed alone, not 2 x 3000 writes
    assert len(_warnings(caplog, "cannot write")) == 1


def test_the_documented_bounds_are_the_codes():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "ledger.md").read_text(encoding="utf-8")
    assert f"`max_buffered` = {DEFAULT_MAX_BUFFERED:,} records" in doc
    assert f"`StoreUnavailable` for {DEFAULT_ISOLATE_AFTER} consecutive attempts" in doc
    assert LedgerSpanExporter.__init__.__kwdefaults__["isolate_after"] == DEFAULT_ISOLATE_AFTER
