#!/usr/bin/env python3
"""DynamoDB ledger store: records/s written through the transactional path, and the time of a month's totals read.

    python benchmarks/ledger_dynamodb.py                  # about a minute
    python benchmarks/ledger_dynamodb.py --records 4000 --json

Three figures:

1. **Into the DynamoDB test server** (moto in server mode on loopback, boto3 over HTTP, the same server the tests
   use): `DynamoDBStore.write()` in batches of `--batch` records (an OTLP export's worth), `records_per_tx` records
   per `TransactWriteItems` (each with its running totals), one writer thread. moto's cost per transaction grows
   with the table (it snapshots the table for rollback), so the rate is reported per slice of the run; it is a
   figure for the emulator, not for DynamoDB.
2. **The store's own CPU per record** (validation, item building, transaction building, botocore serialization),
   with a client whose HTTP layer answers at once: the ceiling a single writer thread can reach whatever the
   server. Against DynamoDB, a writer does about records_per_tx / (round trip + this CPU) records/s per thread.
3. **A month's totals**: `totals(environment, "YYYY-MM")` after the run: one strongly consistent `Query` per shard
   on the running-total items (plus the registry read), however many records the month holds. The API calls and
   items read are counted; the time is moto's, whose `Query` walks every item of the table (DynamoDB reads only
   the items it returns), so it grows with the table here and not on DynamoDB.

Every run checks itself: the totals must equal the exact sum of what was written, and a re-write of the first batch
must count only duplicates. A failed check exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "ledger"))

from dynamodb_server import FAKE_CREDENTIALS, REGION, make_record, start_server

from otel_ai_cost.ledger.dynamodb_retry import botocore_config
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.record import LedgerRecord

MODELS = [("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"), ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
          ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929")]  # fmt: skip


def records(count: int, offset: int = 0) -> list[LedgerRecord]:
    """Realistic records of one environment-month: 3 models, a job id each, amounts with 18 decimal places."""
    out = []
    for n in range(offset, offset + count):
        provider, request_model, response_model = MODELS[n % len(MODELS)]
        out.append(
            make_record(
                n,
                provider=provider,
                request_model=request_model,
                response_model=response_model,
                job_id=f"job-{n // 500}",
                amount=Decimal("0.00015") + Decimal((n * 7919) % 10**12) / Decimal(10**18),
                input_tokens=1000 + n % 97,
                output_tokens=200 + n % 13,
            )
        )
    return out


def write_rate(store: DynamoDBStore, batch: list[LedgerRecord], size: int, slices: int) -> list[dict[str, Any]]:
    """Writes `batch` in calls of `size` records; the rate of each of `slices` consecutive slices."""
    rows = []
    per_slice = len(batch) // slices
    for s in range(slices):
        part = batch[s * per_slice : (s + 1) * per_slice]
        started = time.perf_counter()
        for i in range(0, len(part), size):
            result = store.write(part[i : i + size])
            if result.written != len(part[i : i + size]):
                raise SystemExit(f"INVALID: wrote {result.written} of {len(part[i : i + size])}")
        elapsed = time.perf_counter() - started
        rows.append({"records": len(part), "from_record": s * per_slice, "seconds": elapsed,
                     "records_per_s": len(part) / elapsed})  # fmt: skip
    return rows


def client_cpu(batch: list[LedgerRecord], size: int, records_per_tx: int) -> float:
    """Records/s of the store's own work, the HTTP layer answering at once (botocore still builds every request)."""
    import boto3

    client = boto3.client("dynamodb", region_name=REGION, endpoint_url="http://127.0.0.1:9",
                          config=botocore_config(), **FAKE_CREDENTIALS)  # fmt: skip

    def answer(**_: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        class Raw:
            def stream(self, **_: Any) -> Any:
                yield b"{}"

        return AWSResponse("http://127.0.0.1:9", 200, {}, Raw())

    client.meta.events.register("before-send.dynamodb", answer)
    store = DynamoDBStore("bench", client=client, shards=16, records_per_transaction=records_per_tx)
    started = time.perf_counter()
    for i in range(0, len(batch), size):
        store.write(batch[i : i + size])
    elapsed = time.perf_counter() - started
    store.close()
    return len(batch) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=2000, help="records written into the test server")
    parser.add_argument("--batch", type=int, default=100, help="records per write() call")
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--records-per-tx", type=int, default=25)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    server = start_server()
    checks: list[str] = []
    try:
        store = DynamoDBStore(f"bench-{uuid.uuid4().hex[:8]}", region=REGION, endpoint_url=server.endpoint_url,
                              shards=args.shards, records_per_transaction=args.records_per_tx)  # fmt: skip
        store.ensure_table()
        batch = records(args.records)
        grouped = write_rate(store, batch, args.batch, slices=4)

        per_record = DynamoDBStore(f"bench-{uuid.uuid4().hex[:8]}", region=REGION, endpoint_url=server.endpoint_url,
                                   shards=args.shards, records_per_transaction=1)  # fmt: skip
        per_record.ensure_table()
        single = write_rate(per_record, records(min(400, args.records)), args.batch, slices=1)
        per_record.close()

        month = batch[0].month
        reads: list[int] = []  # items returned by each API call of one totals() read

        def count(parsed: dict[str, Any], **_: Any) -> None:
            reads.append(len(parsed.get("Items", [])) + ("Item" in parsed))

        store.client.meta.events.register("after-call.dynamodb", count)
        store.totals(batch[0].environment, month)
        store.client.meta.events.unregister("after-call.dynamodb", count)
        timings = []
        for _ in range(20):
            started = time.perf_counter()
            totals = store.totals(batch[0].environment, month)
            timings.append(time.perf_counter() - started)
        expected = sum((r.amount for r in batch if r.amount is not None), Decimal(0))
        if totals.amount != expected or totals.calls != len(batch):
            checks.append(f"totals {totals.amount}/{totals.calls} != {expected}/{len(batch)}")
        again = store.write(batch[: args.batch])
        if (again.written, again.duplicates) != (0, min(args.batch, len(batch))):
            checks.append(f"re-write of a batch: {again}")
        store.close()
    finally:
        server.stop()
    cpu = client_cpu(records(2000, offset=10**6), args.batch, args.records_per_tx)

    totals_ms = {"median": statistics.median(timings) * 1e3, "min": min(timings) * 1e3}
    report = {
        "environment": {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "settings": vars(args),
        "moto_server_transactional": grouped,
        "moto_server_one_record_per_transaction": single,
        "store_cpu_records_per_s": cpu,
        "month_totals_read_ms": {
            **totals_ms,
            "records_in_month": len(batch),
            "shards": args.shards,
            "api_calls": len(reads),
            "items_read": sum(reads),
        },
        "checks_failed": checks,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 2 if checks else 0
    print(
        f"DynamoDB ledger store, {args.records} records, write() batches of {args.batch}, "
        f"{args.records_per_tx} records/transaction, {args.shards} shards (Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs)"
    )
    print("into the moto server (transactional path, totals in the same transaction):")
    for row in grouped:
        last = row["from_record"] + row["records"] - 1
        print(f"  records {row['from_record']:>6}..{last:<6} {row['records_per_s']:8.0f} records/s")
    print(f"  one record per transaction ({single[0]['records']} records): {single[0]['records_per_s']:.0f} records/s")
    print(f"store CPU alone (HTTP answered at once): {cpu:.0f} records/s per writer thread")
    print(
        f"month totals ({len(batch)} records, {args.shards} shards): {len(reads)} API calls reading {sum(reads)} "
        f"items; median {totals_ms['median']:.1f} ms, min {totals_ms['min']:.1f} ms (moto's Query walks the whole "
        f"table; DynamoDB reads only the items returned)"
    )
    print("checks: " + ("all passed" if not checks else "FAILED: " + "; ".join(checks)))
    return 2 if checks else 0


if __name__ == "__main__":
    sys.exit(main())
