"""`import` into DynamoDB (moto in server mode on loopback): batches with progress, and a server that goes away
partway through, reported as how far the import got."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dynamodb_server import REGION, LoopbackDynamoDB, start_server

from otel_ai_cost.ledger.dynamodb_retry import RetryPolicy
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.manual import ImportInterrupted, import_usage_file
from otel_ai_cost.ledger.store import UsageQuery


@pytest.fixture
def server() -> Iterator[LoopbackDynamoDB]:
    running = start_server()
    yield running
    running.stop()


pytestmark = pytest.mark.usefixtures("aws_environment")  # conftest.py: no real AWS credentials or config


def _usage_file(path: Path, count: int) -> Path:
    lines = (
        json.dumps({"timestamp": "2026-01-30T14:00:00Z", "service": "openai", "cost_usd": f"0.{n:04d}", "note": str(n)})
        for n in range(1, count + 1)
    )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_server_gone_partway_is_reported_with_how_far_the_import_got(server: LoopbackDynamoDB, tmp_path: Path):
    usage = _usage_file(tmp_path / "usage.jsonl", 300)
    policy = RetryPolicy.for_deadline(2.0, max_attempts=2)
    store = DynamoDBStore(
        f"ledger-{uuid.uuid4().hex[:12]}", region=REGION, endpoint_url=server.endpoint_url, retry_policy=policy
    )
    store.ensure_table()
    seen: list[int] = []

    def stop_after_100(done: int, total: int) -> None:
        seen.append(done)
        if done == 100:
            server.stop()  # the DynamoDB endpoint is gone: every later write fails

    try:
        with pytest.raises(ImportInterrupted) as raised:
            import_usage_file(store, usage, batch_size=50, on_progress=stop_after_100)
    finally:
        store.close()
    assert seen == [50, 100]
    assert str(raised.value).startswith(f"{usage}: stopped after 100 of 300 records (100 new, 0 already recorded)")
    assert "re-running the same import is safe" in str(raised.value)


def test_an_import_into_dynamodb_reports_progress_per_batch(server: LoopbackDynamoDB, tmp_path: Path):
    usage = _usage_file(tmp_path / "usage.jsonl", 60)
    store = DynamoDBStore(f"ledger-{uuid.uuid4().hex[:12]}", region=REGION, endpoint_url=server.endpoint_url)
    store.ensure_table()
    seen: list[tuple[int, int]] = []
    try:
        first = import_usage_file(store, usage, batch_size=25, on_progress=lambda d, t: seen.append((d, t)))
        again = import_usage_file(store, usage, batch_size=25)
        stored = list(store.query(UsageQuery(environment="development")))
    finally:
        store.close()
    assert seen == [(25, 60), (50, 60), (60, 60)]
    assert ((first.new, first.already_recorded), (again.new, again.already_recorded)) == ((60, 0), (0, 60))
    assert len(stored) == 60
