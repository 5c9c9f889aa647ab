"""The DynamoDB table deleted and recreated under a running store (a running ledger service): records written
afterwards must be visible to queries, through the same store and through any other reader."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from dynamodb_server import REGION, LoopbackDynamoDB, make_record

from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.store import StoreUnavailable, UsageQuery

pytestmark = pytest.mark.usefixtures("aws_environment")  # conftest.py: no real AWS credentials or config


@pytest.fixture
def table() -> str:
    return f"recreate-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def stores(server: LoopbackDynamoDB, table: str) -> Iterator[Any]:
    opened: list[DynamoDBStore] = []

    def open_store(**options: Any) -> DynamoDBStore:
        store = DynamoDBStore(table, region=REGION, endpoint_url=server.endpoint_url, shards=2, **options)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def recreate(server: LoopbackDynamoDB, store: DynamoDBStore) -> None:
    """What an operator does: delete the table, then `otel-ai-cost ledger init` creates it again."""
    server.client().delete_table(TableName=store.table)
    store.ensure_table()


def ids(records: Any) -> list[int]:
    return sorted(int(record.span_id, 16) - 1 for record in records)


def test_records_written_after_a_recreation_are_visible_through_the_same_store(
    server: LoopbackDynamoDB, stores: Any
) -> None:
    writer = stores()
    writer.ensure_table()
    writer.write([make_record(1)])
    recreate(server, writer)

    writer.write([make_record(2)])  # the same store object, which registered "production" before

    assert ids(writer.query(UsageQuery())) == [2]
    assert "production" in writer.environments()
    assert writer.totals("production", "2026-11").calls == 1
    # And from then on for every other reader too: the read registered the environment again.
    assert ids(stores().query(UsageQuery())) == [2]


def test_a_reader_naming_the_environment_sees_them_without_the_registry(server: LoopbackDynamoDB, stores: Any) -> None:
    writer = stores()
    writer.ensure_table()
    writer.write([make_record(1)])
    recreate(server, writer)
    writer.write([make_record(2)])

    reader = stores()  # another process: `report -e production`, the service's /v1/usage
    assert ids(reader.query(UsageQuery(environment="production"))) == [2]


def test_a_writer_registers_again_after_a_failed_write(server: LoopbackDynamoDB, stores: Any) -> None:
    writer = stores()
    writer.ensure_table()
    writer.write([make_record(1)])
    server.client().delete_table(TableName=writer.table)
    with pytest.raises(StoreUnavailable, match="ledger init"):
        writer.write([make_record(2)])  # the service answers 503; the sender keeps the record
    writer.ensure_table()

    writer.write([make_record(2)])  # the sender's retry

    assert ids(stores().query(UsageQuery())) == [2]  # a fresh reader, listing environments from the registry


def test_a_writer_registers_again_after_its_refresh_interval(server: LoopbackDynamoDB, stores: Any) -> None:
    writer = stores(registry_refresh_s=0.0)  # in production: once a minute, one UpdateItem per environment
    writer.ensure_table()
    writer.write([make_record(1)])
    recreate(server, writer)

    writer.write([make_record(2)])

    assert ids(stores().query(UsageQuery())) == [2]


def test_the_registry_costs_nothing_on_the_hot_path(stores: Any) -> None:
    writer = stores()
    writer.ensure_table()
    writer.write([make_record(1)])
    updates: list[Any] = []
    writer.client.meta.events.register(
        "provide-client-params.dynamodb.UpdateItem", lambda params, **_: updates.append(1)
    )
    for n in range(2, 6):
        writer.write([make_record(n)])
    assert not updates  # registered once, refreshed only after registry_refresh_s
