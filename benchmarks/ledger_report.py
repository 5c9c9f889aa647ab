"""Ledger benchmark: `report` over a 1,000,000-record SQLite ledger, and write throughput in batches of 512.

```bash
python benchmarks/ledger_report.py                  # 1,000,000 records over 30 days; about a minute
python benchmarks/ledger_report.py --records 200000 --json
```

What is measured (targets from the ledger issue):

- **report**: `SQLiteStore.aggregate()` over 30 UTC days, all environments, grouped by `day` and by
  `provider, model` (what `otel-ai-cost report --by day` / `--by provider,model` run; answered from the daily
  rollup), one environment's 30 days by day, and, for comparison, the same groupings computed by scanning the
  records themselves (SQL GROUP BY over 1,000,000 rows), a grouping by job id (which only the records can
  answer) and one job's calls (`jobs show`). Median of `--repeat` runs, warm page cache. Target: under 2 s.
- **write**: `SQLiteStore.write()` of batches of 512 new records into a fresh file (each batch one durable
  transaction, `synchronous=FULL`, with its running totals), as the in-process exporter and the ledger service
  write. Target: at least 5,000 records/s on one core.

The ledger is built through the same `write()` in batches of 10,000 (one transaction each: the bulk path). Each
run checks itself: the totals of both groupings and of the running totals equal the exact sum of the generated
amounts, so a fast but wrong figure cannot pass unnoticed.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.sqlite_store import SQLiteStore
from otel_ai_cost.ledger.store import UsageQuery

MODELS = (
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4.1"),
    ("openai", "o4-mini"),
    ("openai", "text-embedding-3-small"),
    ("anthropic", "claude-haiku-4-5"),
    ("anthropic", "claude-sonnet-4-5"),
)
ENVIRONMENTS = ("production", "staging", "cicd")
END_DAY = date(2026, 1, 30)


def records(count: int, days: int, *, start: int = 0, seed: int = 7) -> Iterator[LedgerRecord]:
    """`count` priced calls spread evenly over `days` UTC days ending END_DAY; amounts with up to 12 places."""
    rng = random.Random(seed + start)
    first = datetime.combine(END_DAY - timedelta(days=days - 1), datetime.min.time(), tzinfo=timezone.utc)
    step = days * 86_400 / max(count, 1)
    for n in range(start, start + count):
        provider, model = MODELS[n % len(MODELS)]
        unpriced = n % 997 == 0
        yield LedgerRecord(
            trace_id=f"{n + 1:032x}",
            span_id=f"{n + 1:016x}",
            timestamp=first + timedelta(seconds=(n - start) * step),
            environment=ENVIRONMENTS[n % len(ENVIRONMENTS)],
            service="receipts-worker",
            provider=provider,
            request_model=model,
            response_model=model,
            operation="chat",
            operation_type="receipt_labelling",
            input_tokens=rng.randrange(50, 5000),
            output_tokens=rng.randrange(10, 800),
            amount=None if unpriced else Decimal(rng.randrange(1, 10**10)).scaleb(-12),
            pricing_status="unpriced" if unpriced else "priced",
            job_id=f"job-{n // 500}",
            team=("search", "platform", "labels")[n % 3],
        )


def batches(items: Iterator[LedgerRecord], size: int) -> Iterator[list[LedgerRecord]]:
    batch: list[LedgerRecord] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def timed(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of `repeat` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def build(path: Path, count: int, days: int) -> tuple[float, Decimal]:
    """The ledger of `count` records; returns (seconds, exact total of the generated amounts)."""
    total = Decimal(0)
    started = time.perf_counter()
    with SQLiteStore(path) as store:
        for batch in batches(records(count, days), 10_000):
            total += sum((r.amount for r in batch if r.amount is not None), Decimal(0))
            store.write(batch)
    return time.perf_counter() - started, total


def bench_report(path: Path, days: int, repeat: int, expected: Decimal, count: int) -> dict[str, Any]:
    """Median seconds of each report query, and a check of its exactness."""
    start_day = END_DAY - timedelta(days=days - 1)
    query = UsageQuery(start_day=start_day, end_day=END_DAY)
    production = UsageQuery(start_day=start_day, end_day=END_DAY, environment="production")
    job = UsageQuery(job_id=f"job-{count // 2 // 500}")  # a job in the middle of the ledger: 500 calls
    out: dict[str, Any] = {}
    with SQLiteStore(path) as store:
        cases: list[tuple[str, Callable[[], Any], bool]] = [
            ("report --by day", lambda: store.aggregate(query, ["day"]), True),
            ("report --by provider,model", lambda: store.aggregate(query, ["provider", "model"]), True),
            ("report --by day -e production", lambda: store.aggregate(production, ["day"]), False),
            ("records scan, by day", lambda: store._aggregate_from("records", query, ["day"]), True),
            (
                "records scan, by provider,model",
                lambda: store._aggregate_from("records", query, ["provider", "model"]),
                True,
            ),
            ("report --by job_id (records)", lambda: store.aggregate(query, ["job_id"]), True),
            ("jobs show (one job's 500 calls)", lambda: list(store.query(job)), False),
        ]
        for name, run, check in cases:
            seconds, rows = timed(run, repeat)
            out[name] = {"seconds": round(seconds, 4), "rows": len(rows)}
            if check:
                total = sum((r.amount for r in rows), Decimal(0))
                assert total == expected, f"{name}: {total} != {expected}"
        months = {f"{d.year:04d}-{d.month:02d}" for d in (start_day, END_DAY)}
        running = sum((store.totals(env, m).amount for env in ENVIRONMENTS for m in months), Decimal(0))
        assert running == expected, f"running totals {running} != {expected}"
        seconds, _ = timed(lambda: [store.totals(env, m) for env in ENVIRONMENTS for m in months], repeat)
        out["running totals (every environment, month)"] = {"seconds": round(seconds, 4)}
    return out


def bench_write(path: Path, count: int, batch_size: int) -> dict[str, Any]:
    prepared = list(batches(records(count, 1, start=10**9), batch_size))  # built before the clock starts
    with SQLiteStore(path) as store:
        started = time.perf_counter()
        written = sum(store.write(batch).written for batch in prepared)
        seconds = time.perf_counter() - started
        again = time.perf_counter()
        duplicates = sum(store.write(batch).duplicates for batch in prepared)  # a full replay: all duplicates
        replay = time.perf_counter() - again
    assert written == duplicates == count
    return {
        "records": count,
        "batch": batch_size,
        "seconds": round(seconds, 3),
        "records_per_second": round(count / seconds),
        "replay_records_per_second": round(count / replay),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records in the report ledger")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--write-records", type=int, default=102_400, help="records written in the write benchmark")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="where to put the ledger files (default: a temporary directory)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="otel-ai-cost-bench-", dir=args.dir) as tmp:
        build_seconds, expected = build(Path(tmp) / "report.db", args.records, args.days)
        size_mb = (Path(tmp) / "report.db").stat().st_size / 1e6
        report = bench_report(Path(tmp) / "report.db", args.days, args.repeat, expected, args.records)
        write = bench_write(Path(tmp) / "write.db", args.write_records, args.batch)
    result = {
        "environment": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "machine": platform.machine(),
            "system": platform.system(),
        },
        "ledger": {
            "records": args.records,
            "days": args.days,
            "build_seconds": round(build_seconds, 1),
            "file_mb": round(size_mb, 1),
            "exact_total_usd": format(expected, "f"),
        },
        "report": report,
        "write": write,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    env = result["environment"]
    print(f"Python {env['python']}, SQLite {env['sqlite']}, {env['system']} {env['machine']}")
    print(f"ledger: {args.records:,} records over {args.days} days, built in {build_seconds:.1f} s "
          f"({args.records / build_seconds:,.0f} records/s in batches of 10,000), {size_mb:.0f} MB")  # fmt: skip
    print(f"report over {args.days} days (median of {args.repeat}; target < 2 s):")
    for name, figures in report.items():
        print(f"  {name:<46} {figures['seconds']:>9.4f} s")
    print(f"write, batches of {args.batch} (target >= 5,000 records/s):")
    new = f"{write['records_per_second']:>10,} records/s ({write['records']:,} in {write['seconds']} s)"
    print(f"  new records      {new}")
    print(f"  replayed (dups)  {write['replay_records_per_second']:>10,} records/s")
    print(f"exact total checked: {expected} USD")
    return 0


if __name__ == "__main__":
    sys.exit(main())
