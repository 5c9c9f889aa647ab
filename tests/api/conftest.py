"""Fixtures of the Lambda handler's tests: DynamoDB ledgers on a moto server on loopback, written through the real
`DynamoDBStore` (the API Gateway events are made in `gateway_events.py`)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ledger"))  # the ledger tests' moto server

from dynamodb_server import REGION, LoopbackDynamoDB, fake_aws_environment, start_server

from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.record import LedgerRecord

# -- DynamoDB ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackDynamoDB]:
    """A DynamoDB API server (moto) on a loopback port, one per test module."""
    running = start_server()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and no AWS config files: botocore never reaches for a real account."""
    fake_aws_environment(monkeypatch)


@pytest.fixture(scope="module")
def make_ledger(server: LoopbackDynamoDB) -> Callable[[Sequence[LedgerRecord]], str]:
    """`make_ledger(records)`: a new ledger table holding `records`, written through the real store; its URL."""
    return lambda records: _new_ledger(server, records)


def _new_ledger(server: LoopbackDynamoDB, records: Sequence[LedgerRecord]) -> str:
    table = f"ledger-{uuid.uuid4().hex[:12]}"
    with pytest.MonkeyPatch.context() as patch:
        fake_aws_environment(patch)
        store = DynamoDBStore(table, region=REGION, endpoint_url=server.endpoint_url, shards=2)
        store.ensure_table()
        if records:
            result = store.write(records)
            assert result.written == len(records)
        store.close()
    return f"dynamodb://{table}?region={REGION}&endpoint_url={server.endpoint_url}"
