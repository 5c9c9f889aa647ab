"""Fixtures of the legacy-import tests: a moto DynamoDB server on loopback (the ledger tests' own,
tests/ledger/dynamodb_server.py), legacy tables filled with items written the tracker's way, and ledgers."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ledger"))  # the shared moto server helper

from dynamodb_server import REGION, LoopbackDynamoDB, fake_aws_environment, start_server

from otel_ai_cost.ledger.sqlite_store import SQLiteStore

MakeTable = Callable[..., str]


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
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)


@pytest.fixture
def legacy_table(server: LoopbackDynamoDB) -> MakeTable:
    """`legacy_table(items, stack="prod")`: a new table `ReceiptsTable-<stack>-<random>` (the legacy stack's key
    schema: PK/SK strings) holding `items`; returns its name."""

    def make(items: list[dict[str, Any]], *, stack: str = "prod", name: str | None = None) -> str:
        table = name or f"ReceiptsTable-{stack}-{uuid.uuid4().hex[:7]}"
        client = server.client()
        client.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "PK", "AttributeType": "S"},
                {"AttributeName": "SK", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for item in items:
            client.put_item(TableName=table, Item=item)
        return table

    return make


@pytest.fixture
def legacy_client(server: LoopbackDynamoDB) -> Any:
    """The importer's client for the test server."""
    from otel_ai_cost.migrate.legacy_scan import legacy_client as make_client

    return make_client(region=REGION, endpoint_url=server.endpoint_url, segments=4)


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "ledger.db")
    yield store
    store.close()
