"""SQLiteStore under several writer processes, and when writes fail (disk full, a lock held too long)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import StoreUnavailable, UsageQuery, WriteResult

PROCESSES = 4
PER_PROCESS = 600
STRIDE = 300  # each process's records overlap the next one's by half
BATCH = 25


def _record(n: int) -> LedgerRecord:
    return LedgerRecord(
        trace_id=f"{n + 1:032x}",
        span_id=f"{n + 1:016x}",
        timestamp=datetime(2026, 1, 30, tzinfo=timezone.utc) + timedelta(seconds=n * 97),  # spans two days
        environment="production",
        service="worker",
        provider="openai" if n % 3 else "anthropic",
        request_model="m",
        amount=Decimal(n) * Decimal("0.000000000123") + Decimal("0.01"),  # 12 decimal places
    )


def _writer(path: str, index: int, start: threading.Event, results: multiprocessing.Queue) -> None:
    """One writer process: its records in small batches, then the same again (a replay)."""
    try:
        store = SQLiteStore(path)  # every process opens the fresh file at once: schema creation races too
        start.wait(30)
        mine = [_record(n) for n in range(index * STRIDE, index * STRIDE + PER_PROCESS)]
        written = duplicates = retries = 0
        for _ in range(2):
            for i in range(0, len(mine), BATCH):
                result = store.write(mine[i : i + BATCH])
                written, duplicates, retries = (written + result.written, duplicates + result.duplicates,
                                                retries + result.retries)  # fmt: skip
        store.close()
        results.put((index, written, duplicates, retries, None))
    except BaseException as exc:
        results.put((index, 0, 0, 0, repr(exc)))


def test_several_writer_processes_count_every_record_exactly_once(tmp_path: Path):
    path = str(tmp_path / "usage.db")
    ctx = multiprocessing.get_context("spawn")  # a clean interpreter per writer, as separate programs would be
    start, results = ctx.Event(), ctx.Queue()
    workers = [ctx.Process(target=_writer, args=(path, i, start, results)) for i in range(PROCESSES)]
    for worker in workers:
        worker.start()
    start.set()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert [error for *_, error in outcomes if error] == []  # no "database is locked", nothing at all

    unique = range((PROCESSES - 1) * STRIDE + PER_PROCESS)
    assert sum(o[1] for o in outcomes) == len(unique)  # each record was new for exactly one writer
    assert sum(o[1] + o[2] for o in outcomes) == PROCESSES * PER_PROCESS * 2
    assert sum(o[3] for o in outcomes) == 0  # contention was absorbed by the busy timeout, not by failures

    with SQLiteStore(path) as store:
        records = list(store.query(UsageQuery()))
        assert len(records) == len({r.key for r in records}) == len(unique)
        expected = sum((_record(n).amount for n in unique), Decimal(0))
        assert store.aggregate(UsageQuery(), [])[0].amount == expected
        by_day = sum((r.amount for r in store.aggregate(UsageQuery(), ["day", "provider"])), Decimal(0))
        assert by_day == expected
        month = store.totals("production", "2026-01")
        assert (month.calls, month.amount) == (len(unique), expected)
        days = [store.totals("production", d) for d in ("2026-01-30", "2026-01-31", "2026-02-01")]
        assert sum(d.calls for d in days) == len(unique) and sum(d.amount for d in days) == expected


def test_threads_sharing_one_store(tmp_path: Path):
    store = SQLiteStore(tmp_path / "usage.db")
    results: list[WriteResult] = []

    def write(offset: int) -> None:
        for i in range(0, 200, 20):
            results.append(store.write([_record(n) for n in range(offset + i, offset + i + 20)]))

    threads = [threading.Thread(target=write, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.written for r in results) == 500 and sum(r.duplicates for r in results) == 300
    assert store.totals("production", "2026-01").calls + store.totals("production", "2026-02").calls == 500
    store.close()


# -- failed writes --------------------------------------------------------------------------------------------


def test_disk_full_is_retried_then_raises_store_unavailable_and_nothing_is_half_written(tmp_path: Path):
    store = SQLiteStore(tmp_path / "usage.db", write_attempts=3, backoff_s=0.01)
    store.write([_record(0)])
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")  # the file may not grow: SQLITE_FULL
    batch = [_record(n) for n in range(1, 400)]
    with pytest.raises(StoreUnavailable, match=r"after 3 attempts.*full"):
        store.write(batch)
    assert [r.key for r in store.query(UsageQuery())] == [_record(0).key]
    assert store.totals("production", "2026-01").calls == 1

    store._conn.execute("PRAGMA max_page_count = 1073741823")  # space again: the same batch goes in whole
    assert store.write(batch) == WriteResult(399, 0)
    assert store.totals("production", "2026-01").calls + store.totals("production", "2026-02").calls == 400
    store.close()


def test_a_lock_held_beyond_the_busy_timeout_raises_store_unavailable(tmp_path: Path):
    path = tmp_path / "usage.db"
    store = SQLiteStore(path, busy_timeout_s=0.05, write_attempts=3, backoff_s=0.01)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="locked") as raised:
        store.write([_record(1)])
    assert time.monotonic() - started < 5  # bounded
    assert raised.value.retry_after_s > 0
    other.execute("COMMIT")
    assert store.write([_record(1)]) == WriteResult(1, 0)
    store.close()


def test_a_lock_released_during_the_backoff_is_waited_out(tmp_path: Path):
    path = tmp_path / "usage.db"
    store = SQLiteStore(path, busy_timeout_s=0.05, write_attempts=6, backoff_s=0.05)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    threading.Timer(0.15, lambda: other.execute("COMMIT")).start()
    result = store.write([_record(1)])
    assert (result.written, result.duplicates) == (1, 0) and result.retries >= 1
    store.close()


def test_an_unwritable_location_raises_store_unavailable(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailable, match="cannot create the ledger directory"):
        SQLiteStore(blocker / "sub" / "usage.db")
