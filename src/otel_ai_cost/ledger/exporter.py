"""The in-process ledger exporter: GenAI spans -> ledger records, written straight to a store.

For programs that run without a collector (a laptop, a Lambda, a CI job). `instrument()` wires it in by default
(see `attach_ledger`); to wire it by hand:

```python
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from otel_ai_cost.ledger.exporter import LedgerSpanExporter
from otel_ai_cost.ledger.open_store import open_store

tracer_provider.add_span_processor(LedgerBatchSpanProcessor(LedgerSpanExporter(open_store())))
```

(`LedgerBatchSpanProcessor` is the SDK's `BatchSpanProcessor` whose `force_flush()` also retries the exporter's
buffered records; the SDK's own only drains its queue.)

**Nothing is lost silently.** The SDK's `BatchSpanProcessor` drops a batch whose export failed, so when the store
is unavailable the exporter answers `FAILURE` *and* keeps the batch's records in a bounded in-memory retry buffer
(`max_buffered` records). They are written with a later export, on `force_flush()`, and at `shutdown()`; writes
are idempotent, so a record is never counted twice. After a failure, exports only buffer for a while (from
`retry_interval_s`, doubling up to `max_retry_interval_s`) instead of waiting on the store again: the SDK's batch
worker keeps draining its queue, which would otherwise fill up and drop spans. `force_flush()` and `shutdown()`
always try the store. If the buffer overflows, the oldest records are dropped and an
error says how many; if `shutdown()` still cannot write them, an error says how many records are lost.

Spans that are not cost spans are skipped. A cost span that cannot be recorded (`InvalidSpan`) is skipped and
counted, and logged once per reason: one malformed span never blocks the rest of its batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_ai_cost.ledger.from_span import InvalidSpan, record_from_span
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.store import LedgerStore, StoreUnavailable

__all__ = ["DEFAULT_MAX_BUFFERED", "LedgerBatchSpanProcessor", "LedgerSpanExporter"]

logger = logging.getLogger("otel_ai_cost.ledger")

DEFAULT_MAX_BUFFERED = 20_000  # records (~1 KB each): minutes of a busy process's calls during an outage
_MAX_REASONS_LOGGED = 100  # distinct invalid-span reasons logged; beyond that only counted


class LedgerSpanExporter(SpanExporter):
    """A `SpanExporter` that writes one ledger record per cost span to `store`. Thread-safe.

    `owns_store`: close the store at `shutdown()` (the default; pass False when the store is shared).
    `retry_interval_s`, `max_retry_interval_s`: the cooldown after a failed write (see the module documentation).
    Counters for tests and diagnostics: `written`, `duplicates`, `invalid_spans` (per reason), `lost`,
    `buffered`.
    """

    def __init__(
        self,
        store: LedgerStore,
        *,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
        owns_store: bool = True,
        retry_interval_s: float = 1.0,
        max_retry_interval_s: float = 30.0,
    ) -> None:
        self.store = store
        self.max_buffered = max_buffered
        self._owns_store = owns_store
        self._retry_interval_s = retry_interval_s
        self._max_retry_interval_s = max_retry_interval_s
        self._cooldown_s = 0.0
        self._retry_at = 0.0  # monotonic time before which export() only buffers
        self._lock = threading.RLock()
        self._pending: deque[LedgerRecord] = deque()  # failed records awaiting a retry, oldest first
        self._paused = False
        self._shut_down = False
        self._failing = False
        self.written = 0
        self.duplicates = 0
        self.lost = 0
        self.invalid_spans: Counter[str] = Counter()

    @property
    def buffered(self) -> int:
        """Records kept for a retry."""
        return len(self._pending)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Writes the records of the cost spans (and any earlier failed records); FAILURE if the store is
        unavailable, with the records kept for the next attempt."""
        records = self._records(spans)
        with self._lock:
            if self._shut_down:
                logger.warning("otel-ai-cost ledger: export after shutdown; %d records not written", len(records))
                self.lost += len(records)
                return SpanExportResult.FAILURE
            if self._paused:  # uninstrumented: calls still traced by the host are not ours to record any more
                return SpanExportResult.SUCCESS
            self._pending.extend(records)
            if self._failing and time.monotonic() < self._retry_at:
                self._overflow()
                return SpanExportResult.FAILURE  # kept; the store is not asked again before the cooldown ends
            return SpanExportResult.SUCCESS if self._write_pending() else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Retries the buffered records now; True when none is left waiting."""
        with self._lock:
            return self._write_pending()

    def shutdown(self) -> None:
        """Writes what is still buffered, then closes the store (if owned). Reports any record it had to give up."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
            if not self._write_pending() and self._pending:
                self.lost += len(self._pending)
                logger.error(
                    "otel-ai-cost ledger: %d records could not be written to %r at shutdown and are lost",
                    len(self._pending),
                    self.store,
                )
                self._pending.clear()
            if self._owns_store:
                try:
                    self.store.close()
                except Exception:
                    logger.warning("otel-ai-cost ledger: closing %r failed", self.store, exc_info=True)

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

    # -- internals ----------------------------------------------------------------------------------------

    def _records(self, spans: Sequence[ReadableSpan]) -> list[LedgerRecord]:
        records = []
        for span in spans:
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
        with self._lock:
            first = reason not in self.invalid_spans
            if first and len(self.invalid_spans) >= _MAX_REASONS_LOGGED:
                reason, first = "(other reasons)", "(other reasons)" not in self.invalid_spans
            self.invalid_spans[reason] += 1
        if first:
            logger.warning("otel-ai-cost ledger: span not recorded: %s (logged once; counted)", reason)

    def _write_pending(self) -> bool:
        """One write of everything buffered (caller holds the lock); True on success."""
        if not self._pending:
            return True
        batch = list(self._pending)
        try:
            result = self.store.write(batch)
        except Exception as exc:  # StoreUnavailable, or anything unexpected: keep the records, never drop them
            self._overflow()
            self._cooldown_s = min(max(self._cooldown_s * 2, self._retry_interval_s), self._max_retry_interval_s)
            self._retry_at = time.monotonic() + self._cooldown_s
            if not self._failing:
                self._failing = True
                how = "" if isinstance(exc, StoreUnavailable) else f" ({type(exc).__name__})"
                logger.warning(
                    "otel-ai-cost ledger: cannot write to %r%s: %s; %d records kept for a retry",
                    self.store,
                    how,
                    exc,
                    len(self._pending),
                    exc_info=not isinstance(exc, StoreUnavailable),
                )
            return False
        self._pending.clear()
        self._cooldown_s = 0.0
        self.written += result.written
        self.duplicates += result.duplicates
        if self._failing:
            self._failing = False
            logger.warning("otel-ai-cost ledger: writing to %r again; the buffered records are written", self.store)
        return True

    def _overflow(self) -> None:
        excess = len(self._pending) - self.max_buffered
        if excess > 0:
            for _ in range(excess):
                self._pending.popleft()
            self.lost += excess
            logger.error(
                "otel-ai-cost ledger: retry buffer full (%d records); the %d oldest records are lost",
                self.max_buffered,
                excess,
            )

    def __repr__(self) -> str:
        return f"LedgerSpanExporter({self.store!r})"


class LedgerBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's `BatchSpanProcessor`, except that `force_flush()` also retries the exporter's buffered records
    (the SDK's only exports its queue, so after an outage `tracer_provider.force_flush()` would not reach them)."""

    def __init__(self, exporter: LedgerSpanExporter, **kwargs: Any) -> None:
        super().__init__(exporter, **kwargs)
        self.ledger_exporter = exporter

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        flushed = super().force_flush(timeout_millis)
        return self.ledger_exporter.force_flush() and flushed
