"""Writing a batch so that a record the store can never hold never blocks the rest.

The store error contract (`store.py`) in one place, for the ledger service and `import` (the in-process exporter
keeps its records buffered across exports, so it isolates on its own terms):

- `InvalidRecord` naming its record (`key`): that record is rejected alone and the rest written again;
- `InvalidRecord` without a key, or `RetryBatch`: the batch is written again in halves, down to single records
  if need be (about 2 log2(n) writes to find one bad record among n); a single record `InvalidRecord` refuses is
  rejected; one that `RetryBatch` still refuses after `SINGLE_RECORD_ATTEMPTS` makes the store `StoreUnavailable`;
- `StoreUnavailable`, and anything else, propagates: what was written before is recognised as duplicates when the
  caller writes the same records again, never counted twice.

A healthy batch costs one write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.store import InvalidRecord, LedgerStore, RetryBatch, StoreUnavailable, WriteResult

SINGLE_RECORD_ATTEMPTS = 4  # RetryBatch for one record: attempts (50, 100, 200 ms apart) before StoreUnavailable


@dataclass
class IsolatedWrite:
    """What became of a batch: the sums of the store's answers, the records stored (new or already there) and
    those the store refused, each with its error."""

    written: int = 0
    duplicates: int = 0
    retries: int = 0
    conflicts: int = 0
    pruned: int = 0
    stored: list[LedgerRecord] = field(default_factory=list)
    rejected: list[tuple[LedgerRecord, InvalidRecord]] = field(default_factory=list)

    @property
    def result(self) -> WriteResult:
        return WriteResult(self.written, self.duplicates, self.retries, self.conflicts, self.pruned)

    def _add(self, result: WriteResult, records: Sequence[LedgerRecord]) -> None:
        self.written += result.written
        self.duplicates += result.duplicates
        self.retries += result.retries
        self.conflicts += result.conflicts
        self.pruned += result.pruned
        self.stored.extend(records)


def write_isolating(
    store: LedgerStore, records: Sequence[LedgerRecord], *, sleep: Callable[[float], None] = time.sleep
) -> IsolatedWrite:
    """Writes `records`, isolating what the store refuses (see the module documentation)."""
    outcome = IsolatedWrite()
    _write_slice(store, list(records), outcome, sleep)
    return outcome


def _write_slice(
    store: LedgerStore, records: list[LedgerRecord], outcome: IsolatedWrite, sleep: Callable[[float], None]
) -> None:
    attempt = 1
    while records:
        try:
            outcome._add(store.write(records), records)
            return
        except InvalidRecord as error:
            at_fault = next((i for i, r in enumerate(records) if error.key is not None and r.key == error.key), None)
            if at_fault is None and len(records) > 1:
                return _write_halves(store, records, outcome, sleep)
            outcome.rejected.append((records.pop(at_fault or 0), error))
        except RetryBatch as error:
            if len(records) > 1:
                return _write_halves(store, records, outcome, sleep)
            if attempt >= SINGLE_RECORD_ATTEMPTS:
                raise StoreUnavailable(f"the store kept refusing a record for now: {error}") from error
            sleep(0.05 * 2 ** (attempt - 1))
            attempt += 1


def _write_halves(
    store: LedgerStore, records: list[LedgerRecord], outcome: IsolatedWrite, sleep: Callable[[float], None]
) -> None:
    middle = len(records) // 2
    _write_slice(store, records[:middle], outcome, sleep)
    _write_slice(store, records[middle:], outcome, sleep)
