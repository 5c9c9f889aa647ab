"""The in-process ledger exporter: GenAI spans -> ledger records, written straight to a store.

For programs that run without a collector (a laptop, a Lambda, a CI job). `instrument()` wires it in by default
(see `attach_ledger`); to wire it by hand:

```python
from otel_ai_cost.ledger.exporter import LedgerBatchSpanProcessor, LedgerSpanExporter
from otel_ai_cost.ledger.open_store import open_store

exporter = LedgerSpanExporter(open_store())
exporter.observe(meter_provider)  # optional: the counters below as metrics
tracer_provider.add_span_processor(LedgerBatchSpanProcessor(exporter))
```

**Only cost spans are queued.** `LedgerBatchSpanProcessor` is the SDK's `BatchSpanProcessor` except that its
`on_end()` lets only our cost spans (`from_span.is_cost_span`) into its queue: the application's other spans (HTTP,
database, ...) never take a place there. When the queue is full (the store is slower than the calls; size
`max_queue_size`, by default the SDK's `OTEL_BSP_MAX_QUEUE_SIZE`, 2048) a new cost span is dropped, counted in
`lost`, and logged once per burst with the burst's count, when the queue takes spans again (or at flush or
shutdown), and at most once every `drop_log_interval_s` (10 s) during a long overload. The application's spans
are never touched: its own processors see them as before. `force_flush()` also retries the exporter's buffered
records (the SDK's only drains its queue).

**Our calls arrive as records.** When `instrument()` (or an instrumentor) wires the processor, each call's recorder
builds the call's record from its typed values (`from_call.py`) and queues it with `emit_record()`, into the same
queue, with the same bounds and drop accounting; the processor then skips our own spans (`take_records()`). So a
call costs the ledger one record, not a span re-read, and a call the tracer's sampler dropped is still recorded
(it still cost money). Hand-wired, the processor reads cost spans as above.

**Nothing is lost silently.** The SDK's `BatchSpanProcessor` drops a batch whose export failed, so when the store
is unavailable the exporter answers `FAILURE` *and* keeps the batch's records in a bounded in-memory retry buffer
(`max_buffered` records). They are written with a later export, on `force_flush()`, and at `shutdown()`; writes
are idempotent, so a record is never counted twice. After a failure, exports only buffer for a while (from
`retry_interval_s`, doubling up to `max_retry_interval_s`) instead of waiting on the store again: the SDK's batch
worker keeps draining its queue, which would otherwise fill up and drop spans. `force_flush()` and `shutdown()`
always try the store. If the buffer overflows, the oldest records are dropped and an
error says how many; if `shutdown()` still cannot write them, an error says how many records are lost.

**One bad record never stalls the rest.** A failed write is acted on by the class of its error (`ledger/store.py`):

- `InvalidRecord` (the store can never hold one of the records): the record the error's `key` names (every copy
  of it in the buffer) is dropped and the rest written again, one write per bad record; without a `key`, the
  batch is written in halves, recursively, until the record(s) at fault are found (about 2 x log2(batch) writes
  per bad record). They are counted in `rejected` (per reason) and logged once per reason; the others are written.
  A batch that writes at once costs one write: isolation happens only after a failure.
- `RetryBatch` (this batch failed, the store is fine): written again in halves; a record that still fails alone
  is kept for the next attempt (and treated as below once the failures have lasted `isolate_after` attempts).
- `StoreUnavailable`: everything stays buffered, for a retry after the cooldown (above).
- Anything else (a bug in the store): treated as `StoreUnavailable`, except that after `isolate_after`
  consecutive failed attempts (default 3), and at once on `force_flush()` and `shutdown()`, the buffer is isolated
  as for `InvalidRecord`. Then a record that fails alone (with this error, or with `RetryBatch`) is rejected only
  if the same attempt wrote other records: a store that writes nothing is down, not poisoned, so nothing is
  dropped, and the attempt stops after 8 records failed alone without any write succeeding.

Spans that are not cost spans are skipped. A cost span that cannot be recorded (`InvalidSpan`) is skipped and
counted in `invalid_spans`, and logged once per reason: one malformed span never blocks the rest of its batch.

**Counters** (attributes, and, with `observe(meter_provider)`, which `attach_ledger` calls, OTel observable
instruments named in `contract.py`): `written` (`otel_ai_cost.ledger.records_written`), `duplicates`
(`otel_ai_cost.ledger.duplicates`), `lost` (`otel_ai_cost.ledger.records_lost`: queue full, buffer full, not
written at shutdown), `rejected` + `invalid_spans` (`otel_ai_cost.ledger.records_rejected`) and `buffered`
(`otel_ai_cost.ledger.records_buffered`, a gauge).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation, get_meter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_ai_cost.contract import (
    INSTRUMENTATION_SCOPE,
    LEDGER_EXPORTER_BUFFERED,
    LEDGER_EXPORTER_DUPLICATES,
    LEDGER_EXPORTER_LOST,
    LEDGER_EXPORTER_REJECTED,
    LEDGER_EXPORTER_WRITTEN,
    SCHEMA_URL,
)
from otel_ai_cost.ledger.from_span import InvalidSpan, is_cost_span, record_from_span
from otel_ai_cost.ledger.open_store import store_url
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.store import InvalidRecord, LedgerStore, RetryBatch, StoreUnavailable, WriteResult

__all__ = ["DEFAULT_ISOLATE_AFTER", "DEFAULT_MAX_BUFFERED", "LedgerBatchSpanProcessor", "LedgerSpanExporter"]

logger = logging.getLogger("otel_ai_cost.ledger")

DEFAULT_MAX_BUFFERED = 20_000  # records (~1 KB each): minutes of a busy process's calls during an outage
DEFAULT_ISOLATE_AFTER = 3  # consecutive failed writes with an unexpected error before the buffer is isolated
_MAX_REASONS_LOGGED = 100  # distinct invalid-span / rejection reasons logged; beyond that only counted
_MAX_REASON_CHARS = 300  # a reason is a counter key and a log line: bounded
_DOWN_AFTER_FAILED_ALONE = 8  # records failing alone, none written: the store is down, not poisoned


@dataclass
class _Isolation:
    """One failed batch written again in halves: which records ended (written or rejected), and how."""

    batch: list[LedgerRecord]
    reject_failing_alone: bool  # escalated: a record failing alone with a non-definitive error is rejected too
    done: list[bool] = field(init=False)
    wrote_any: bool = False
    rejected: list[tuple[int, str, BaseException]] = field(default_factory=list)
    failed_alone: list[tuple[int, BaseException]] = field(default_factory=list)
    stopped_by: BaseException | None = None  # the store became unavailable (or writes nothing): the rest waits
    last_error: BaseException | None = None

    def __post_init__(self) -> None:
        self.done = [False] * len(self.batch)

    def mark_written(self, indices: Sequence[int]) -> None:
        self.wrote_any = True
        for index in indices:
            self.done[index] = True

    def reject(self, indices: Sequence[int], error: InvalidRecord) -> None:
        for index in indices:
            self.rejected.append((index, str(error), error))
            self.done[index] = True

    def fail_alone(self, index: int, error: BaseException) -> None:
        self.last_error = error
        if isinstance(error, InvalidRecord):
            self.reject([index], error)
            return
        self.failed_alone.append((index, error))
        if not self.wrote_any and len(self.failed_alone) >= _DOWN_AFTER_FAILED_ALONE:
            self.stopped_by = error

    def settle(self) -> None:
        """Rejects the records that failed alone, when this attempt proved the store writes others."""
        if not (self.reject_failing_alone and self.wrote_any):
            return
        for index, error in self.failed_alone:
            self.rejected.append((index, f"{type(error).__name__}: {error}", error))
            self.done[index] = True
        self.failed_alone.clear()

    def left(self) -> deque[LedgerRecord]:
        return deque(record for record, done in zip(self.batch, self.done, strict=True) if not done)


class LedgerSpanExporter(SpanExporter):
    """A `SpanExporter` that writes one ledger record per cost span to `store`. Thread-safe.

    `owns_store`: close the store at `shutdown()` (the default; pass False when the store is shared).
    `retry_interval_s`, `max_retry_interval_s`: the cooldown after a failed write (see the module documentation).
    `isolate_after`: consecutive failed writes with an unexpected store error before the buffer is isolated.
    Counters for tests and diagnostics: `written`, `duplicates` (`conflicts`: of them, with other content),
    `invalid_spans` (per reason), `rejected` (per reason), `lost`, `buffered`.
    """

    def __init__(
        self,
        store: LedgerStore,
        *,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        owns_store: bool = True,
        retry_interval_s: float = 1.0,
        max_retry_interval_s: float = 30.0,
        isolate_after: int = DEFAULT_ISOLATE_AFTER,
    ) -> None:
        self.store = store
        self.max_buffered = max_buffered
        self.isolate_after = max(1, isolate_after)
        self._owns_store = owns_store
        self._retry_interval_s = retry_interval_s
        self._max_retry_interval_s = max_retry_interval_s
        self._cooldown_s = 0.0
        self._retry_at = 0.0  # monotonic time before which export() only buffers
        self._failed_attempts = 0  # consecutive writes of the buffer that left records in it
        self._lock = threading.RLock()  # held during store writes
        self._counts_lock = threading.Lock()  # never held during a write: the host's threads take it (on_end)
        self._pending: deque[LedgerRecord] = deque()  # failed records awaiting a retry, oldest first
        self._paused = False
        self._shut_down = False
        self._failing = False
        self.written = 0
        self.duplicates = 0
        self.conflicts = 0  # of the duplicates: same identity as a stored record, other content (the store kept its)
        self._lost = 0
        self.invalid_spans: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()

    @property
    def buffered(self) -> int:
        """Records kept for a retry."""
        return len(self._pending)

    @property
    def lost(self) -> int:
        """Cost records given up: the processor's queue or the retry buffer was full, or shutdown could not write
        them (each case logged)."""
        with self._counts_lock:
            return self._lost

    @property
    def rejected_total(self) -> int:
        """Cost calls the ledger can never hold: invalid spans and records the store rejected."""
        with self._counts_lock:
            return sum(self.rejected.values()) + sum(self.invalid_spans.values())

    def count_lost(self, count: int) -> None:
        """`count` more cost records lost before they reached the exporter (the processor's queue was full)."""
        with self._counts_lock:
            self._lost += count

    def export(self, spans: Sequence[ReadableSpan | LedgerRecord]) -> SpanExportResult:
        """Writes the records of the cost spans, and the records handed over as they are (and any earlier failed
        records); FAILURE if some are still
        waiting (the store is unavailable), kept for the next attempt."""
        records = self._records(spans)
        with self._lock:
            if self._shut_down:
                logger.warning("otel-ai-cost ledger: export after shutdown; %d records not written", len(records))
                self.count_lost(len(records))
                return SpanExportResult.FAILURE
            if self._paused:  # uninstrumented: calls still traced by the host are not ours to record any more
                return SpanExportResult.SUCCESS
            self._pending.extend(records)
            if self._failing and time.monotonic() < self._retry_at:
                self._overflow()
                return SpanExportResult.FAILURE  # kept; the store is not asked again before the cooldown ends
            return SpanExportResult.SUCCESS if self._write_pending() else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Retries the buffered records now (isolating any that a store bug fails on); True when none is left."""
        with self._lock:
            return self._write_pending(isolate_now=True)

    def shutdown(self) -> None:
        """Writes what is still buffered, then closes the store (if owned). Reports any record it had to give up."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            if not self._write_pending(isolate_now=True) and self._pending:
                self.count_lost(len(self._pending))
                logger.error(
                    "otel-ai-cost ledger: %d records could not be written to %s at shutdown and are lost",
                    len(self._pending),
                    store_url(self.store),
                )
                self._pending.clear()
            if self._owns_store:
                try:
                    self.store.close()
                except Exception:
                    logger.warning("otel-ai-cost ledger: closing %s failed", store_url(self.store), exc_info=True)

    def pause(self) -> None:
        """Stop recording new spans (the SDK cannot remove a span processor): what is buffered is kept."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    def observe(self, meter_provider: MeterProvider | None = None) -> None:
        """Reports this exporter's counters as observable instruments of `meter_provider` (default: the global
        one); several exporters observed on one provider are summed. Idempotent."""
        _observed_exporters(meter_provider).add(self)

    # -- internals ----------------------------------------------------------------------------------------

    def _records(self, spans: Sequence[ReadableSpan | LedgerRecord]) -> list[LedgerRecord]:
        records = []
        for span in spans:
            if type(span) is LedgerRecord:  # handed over by a recorder (`emit_record`): checked by the store
                records.append(span)
                continue
            try:
                record = record_from_span(span)
            except InvalidSpan as exc:
                self._invalid(str(exc))
                continue
            except Exception as exc:  # a malformed span of any kind must not block the batch
                self._invalid(f"{type(exc).__name__}: {exc}")
                continue
            if record is not None:
                records.append(record)
        return records

    def _invalid(self, reason: str) -> None:
        if self._count_reason(self.invalid_spans, reason):
            logger.warning("otel-ai-cost ledger: span not recorded: %s (logged once; counted)", _bounded(reason))

    def _reject(self, reason: str, error: BaseException) -> None:
        if self._count_reason(self.rejected, reason):
            definitive = isinstance(error, InvalidRecord)
            logger.warning(
                "otel-ai-cost ledger: record not recorded: %r %s: %s (the other records are written; logged once "
                "per reason; counted)",
                self.store,
                "rejects it" if definitive else "fails on it alone, and only on it",
                _bounded(reason),
                exc_info=None if definitive else error,
            )

    def _count_reason(self, counter: Counter[str], reason: str) -> bool:
        """Counts one more under `reason` (bounded: at most `_MAX_REASONS_LOGGED` distinct); True the first time."""
        reason = _bounded(reason)
        with self._counts_lock:
            first = reason not in counter
            if first and len(counter) >= _MAX_REASONS_LOGGED:
                reason, first = "(other reasons)", "(other reasons)" not in counter
            counter[reason] += 1
        return first

    def _write_pending(self, *, isolate_now: bool = False) -> bool:
        """Writes everything buffered (caller holds the lock); True when nothing is left waiting."""
        if not self._pending:
            return True
        batch = list(self._pending)
        escalated = isolate_now or self._failed_attempts + 1 >= self.isolate_after
        try:
            result = self.store.write(batch)
        except StoreUnavailable as exc:
            return self._attempt_failed(exc)
        except (InvalidRecord, RetryBatch) as exc:
            return self._isolate(batch, exc, escalated)
        except Exception as exc:  # a store bug: like an outage, until it has failed `isolate_after` times
            return self._isolate(batch, exc, escalated) if escalated else self._attempt_failed(exc)
        self._pending.clear()
        self._count_written(result)
        return self._attempt_succeeded()

    def _isolate(self, batch: list[LedgerRecord], error: BaseException, escalated: bool) -> bool:
        """Writes a failed batch in halves to find the records at fault; drops the rejected ones."""
        isolation = _Isolation(batch, reject_failing_alone=escalated)
        self._split(isolation, list(range(len(batch))), error)
        if isolation.stopped_by is None:
            isolation.settle()
        for _, reason, cause in isolation.rejected:
            self._reject(reason, cause)
        self._pending = isolation.left()
        if not self._pending:
            return self._attempt_succeeded()
        return self._attempt_failed(isolation.stopped_by or isolation.last_error or error)

    def _split(self, isolation: _Isolation, indices: list[int], error: BaseException) -> None:
        """The records at `indices` failed together with `error`: drops those an `InvalidRecord` names, writes the
        rest in halves, and splits again the halves that fail."""
        indices, error = self._without_named(isolation, indices, error)
        if not indices:
            return
        if len(indices) == 1:
            isolation.fail_alone(indices[0], error)
            return
        middle = len(indices) // 2
        for half in (indices[:middle], indices[middle:]):
            if isolation.stopped_by is not None:
                return  # the store is down: what is not written yet stays buffered
            failure = self._try_write(isolation, half)
            if failure is not None:
                self._split(isolation, half, failure)

    def _without_named(
        self, isolation: _Isolation, indices: list[int], error: BaseException
    ) -> tuple[list[int], BaseException]:
        """While `error` names the record at fault (`InvalidRecord.key`), rejects it and writes the others: one
        write per bad record instead of a bisection. Returns the records still failing, and their error."""
        while isinstance(error, InvalidRecord) and getattr(error, "key", None) and len(indices) > 1:
            key = tuple(error.key)  # type: ignore[arg-type]
            named = {i for i in indices if isolation.batch[i].key == key}
            if not named:
                break  # a key outside this slice: find the record by halves
            isolation.reject(sorted(named), error)
            indices = [i for i in indices if i not in named]
            failure = self._try_write(isolation, indices) if indices else None
            if failure is None:
                return [], error
            error = failure
        return indices, error

    def _try_write(self, isolation: _Isolation, indices: list[int]) -> BaseException | None:
        """Writes the records at `indices`; None on success (or when the store is down: `stopped_by`), else the
        error to split them by."""
        try:
            result = self.store.write([isolation.batch[i] for i in indices])
        except StoreUnavailable as exc:
            isolation.stopped_by = exc
            return None
        except Exception as exc:
            return exc
        self._count_written(result)
        isolation.mark_written(indices)
        return None

    def _count_written(self, result: WriteResult) -> None:
        self.written += result.written
        self.duplicates += result.duplicates
        conflicts = getattr(result, "conflicts", 0)
        if conflicts:
            self.conflicts += conflicts
            if self.conflicts == conflicts:
                logger.warning(
                    "otel-ai-cost ledger: %d records had the identity of a stored record but other content; the "
                    "stored record is kept (logged once; counted in conflicts)",
                    conflicts,
                )

    def _attempt_succeeded(self) -> bool:
        self._cooldown_s = 0.0
        self._failed_attempts = 0
        if self._failing:
            self._failing = False
            logger.warning(
                "otel-ai-cost ledger: writing to %s again; the buffered records are written", store_url(self.store)
            )
        return True

    def _attempt_failed(self, exc: BaseException) -> bool:
        """Records are left in the buffer: keep them (bounded), and wait before asking the store again."""
        self._overflow()
        self._failed_attempts += 1
        self._cooldown_s = min(max(self._cooldown_s * 2, self._retry_interval_s), self._max_retry_interval_s)
        self._retry_at = time.monotonic() + self._cooldown_s
        if not self._failing:
            self._failing = True
            expected = isinstance(exc, (StoreUnavailable, RetryBatch))
            how = "" if isinstance(exc, StoreUnavailable) else f" ({type(exc).__name__})"
            logger.warning(
                "otel-ai-cost ledger: cannot write to %r%s: %s; %d records kept for a retry",
                self.store,
                how,
                exc,
                len(self._pending),
                exc_info=None if expected else exc,
            )
        return False

    def _overflow(self) -> None:
        excess = len(self._pending) - self.max_buffered
        if excess > 0:
            for _ in range(excess):
                self._pending.popleft()
            self.count_lost(excess)
            logger.error(
                "otel-ai-cost ledger: retry buffer full (%d records); the %d oldest records are lost",
                self.max_buffered,
                excess,
            )

    def __repr__(self) -> str:
        return f"LedgerSpanExporter({self.store!r})"


def _bounded(reason: str) -> str:
    return reason if len(reason) <= _MAX_REASON_CHARS else reason[: _MAX_REASON_CHARS - 3] + "..."


class LedgerBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's `BatchSpanProcessor` for the ledger: only cost spans enter its queue, a cost span dropped because
    the queue is full is counted in the exporter's `lost` (and logged once per burst, at most every
    `drop_log_interval_s`), and `force_flush()` also retries the exporter's buffered records (the SDK's only exports
    its queue, so after an outage `tracer_provider.force_flush()` would not reach them)."""

    def __init__(self, exporter: LedgerSpanExporter, *, drop_log_interval_s: float = 10.0, **kwargs: Any) -> None:
        super().__init__(exporter, **kwargs)
        self.ledger_exporter = exporter
        self._drop_log_interval_s = drop_log_interval_s
        self._emit_lock = threading.Lock()  # one emitter at a time: a span we found room for is never dropped
        self._unlogged_drops = 0  # cost spans dropped (queue full) and not yet logged
        self._unlogged_since = 0.0  # monotonic time of the first of them
        self._drops_logged_at = -math.inf
        self._dropped_after_shutdown = 0
        self._sdk_queue, self._max_queue_size = _sdk_queue(self._batch_processor)
        self._records_direct = False  # see take_records

    def take_records(self) -> None:
        """Our recorders hand this processor their calls' records (`emit_record`), built from the calls' typed
        values: from now on it skips the spans of our instrumentation scope (they would be the same calls)."""
        self._records_direct = True

    def emit_record(self, record: LedgerRecord) -> None:
        """Queues one call's record, as `on_end` queues a cost span (same queue, bounds and drop accounting). It
        runs at the end of the host's call: never raises."""
        try:
            if not self.ledger_exporter.paused:
                self._enqueue(record)
        except Exception as exc:
            _report_internal_error("ledger.emit_record", exc)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            if self._records_direct and span.instrumentation_scope is not None:
                if span.instrumentation_scope.name == INSTRUMENTATION_SCOPE:
                    return  # its record came through emit_record
            if not is_cost_span(span.attributes or {}) or self.ledger_exporter.paused:
                return  # not ours: never takes a place in the queue
            if not (span.context and span.context.trace_flags.sampled):
                return  # as the SDK's processor: unsampled spans are not exported
            self._enqueue(span)
        except Exception as exc:  # on_end runs inside the host's span.end(): never let it fail
            _report_internal_error("ledger.on_end", exc)

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        flushed = super().force_flush(timeout_millis)
        self._log_drops(force=True)
        return self.ledger_exporter.force_flush() and flushed

    def shutdown(self) -> None:
        self._log_drops(force=True)
        super().shutdown()

    def _enqueue(self, item: ReadableSpan | LedgerRecord) -> None:
        with self._emit_lock:
            if getattr(self._batch_processor, "_shutdown", False):
                self.ledger_exporter.count_lost(1)
                self._dropped_after_shutdown += 1
                if self._dropped_after_shutdown == 1:
                    logger.warning("otel-ai-cost ledger: cost spans ended after shutdown are not recorded (counted)")
                return
            if self._sdk_queue is not None and len(self._sdk_queue) >= self._max_queue_size:
                # Dropped here, and counted, rather than by the SDK (silently, and the oldest span).
                self.ledger_exporter.count_lost(1)
                if not self._unlogged_drops:
                    self._unlogged_since = time.monotonic()
                self._unlogged_drops += 1
                burst_ended = False
            else:  # the worker only takes from the queue, and emitters take turns: this span is not dropped
                self._batch_processor.emit(item)
                burst_ended = True
            if not self._unlogged_drops:
                return
        self._log_drops(burst_ended=burst_ended)

    def _log_drops(self, *, force: bool = False, burst_ended: bool = False) -> None:
        """Logs the drops not logged yet: when a burst ends (or on flush), but at most once per interval, and during
        a long burst once per interval too."""
        with self._emit_lock:
            now = time.monotonic()
            due = burst_ended and now - self._drops_logged_at >= self._drop_log_interval_s
            due = due or now - self._unlogged_since >= self._drop_log_interval_s
            if not self._unlogged_drops or not (force or due):
                return
            count, self._unlogged_drops, self._drops_logged_at = self._unlogged_drops, 0, now
        logger.error(
            "otel-ai-cost ledger: queue full (%d spans; the store is slower than the calls): %d cost spans were "
            "dropped and are lost (counted in lost)",
            self._max_queue_size,
            count,
        )


def _sdk_queue(batch_processor: Any) -> tuple[deque[Any] | None, int]:
    """The SDK's queue and its capacity (private in opentelemetry-sdk 1.x; tested against the installed SDK). None
    if this SDK keeps them elsewhere: then the SDK drops for us, as it would anyway, but uncounted."""
    queue = getattr(batch_processor, "_queue", None)
    size = getattr(batch_processor, "_max_queue_size", None)
    if isinstance(queue, deque) and isinstance(size, int):
        return queue, size
    logger.warning("otel-ai-cost ledger: this OpenTelemetry SDK's batch queue is unknown; queue drops are not counted")
    return None, 0


def _report_internal_error(component: str, exc: BaseException) -> None:
    from otel_ai_cost.telemetry.errors import report_internal_error

    report_internal_error(component, exc)


# -- the counters as metrics ----------------------------------------------------------------------------------

_GLOBAL = object()  # the key of the global meter provider
_observed: weakref.WeakKeyDictionary[Any, weakref.WeakSet[LedgerSpanExporter]] = weakref.WeakKeyDictionary()
_observed_global: weakref.WeakSet[LedgerSpanExporter] | None = None
_observed_lock = threading.Lock()


def _observed_exporters(meter_provider: MeterProvider | None) -> weakref.WeakSet[LedgerSpanExporter]:
    """The exporters observed on `meter_provider`; its instruments are created with the first one."""
    global _observed_global
    with _observed_lock:
        exporters = _observed_global if meter_provider is None else _observed.get(meter_provider)
        if exporters is not None:
            return exporters
        exporters = weakref.WeakSet()
        if meter_provider is None:
            _observed_global = exporters
        else:
            _observed[meter_provider] = exporters
    _create_instruments(meter_provider, exporters)
    return exporters


def _create_instruments(meter_provider: MeterProvider | None, exporters: weakref.WeakSet[LedgerSpanExporter]) -> None:
    from otel_ai_cost import __version__

    meter = get_meter(INSTRUMENTATION_SCOPE, __version__, meter_provider, schema_url=SCHEMA_URL)

    def total(value: Any) -> Any:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(sum(value(exporter) for exporter in list(exporters)))]

        return [callback]

    counters = (
        (LEDGER_EXPORTER_WRITTEN, lambda e: e.written),
        (LEDGER_EXPORTER_DUPLICATES, lambda e: e.duplicates),
        (LEDGER_EXPORTER_LOST, lambda e: e.lost),
        (LEDGER_EXPORTER_REJECTED, lambda e: e.rejected_total),
    )
    for spec, value in counters:
        meter.create_observable_counter(spec.name, callbacks=total(value), unit=spec.unit, description=spec.description)
    meter.create_observable_gauge(
        LEDGER_EXPORTER_BUFFERED.name,
        callbacks=total(lambda e: e.buffered),
        unit=LEDGER_EXPORTER_BUFFERED.unit,
        description=LEDGER_EXPORTER_BUFFERED.description,
    )
