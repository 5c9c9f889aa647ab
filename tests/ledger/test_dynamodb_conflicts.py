"""A record whose identity is already stored with other content (another amount, other token counts) is a
conflict, not a harmless replay: the DynamoDB store keeps the stored record, and counts and logs the conflict."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from dynamodb_server import REGION, LoopbackDynamoDB, make_record

from otel_ai_cost.ledger import dynamodb_store
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.store import UsageQuery

pytestmark = pytest.mark.usefixtures("aws_environment")  # conftest.py: no real AWS credentials or config


@pytest.fixture
def store(server: LoopbackDynamoDB) -> Iterator[DynamoDBStore]:
    store = DynamoDBStore(f"conflicts-{uuid.uuid4().hex[:12]}", region=REGION, endpoint_url=server.endpoint_url,
                          shards=2)  # fmt: skip
    store.ensure_table()
    yield store
    store.close()


def test_another_amount_for_a_stored_identity_is_counted_as_a_conflict(store: DynamoDBStore) -> None:
    store.write([make_record(1, amount=Decimal("0.5")), make_record(2)])

    replay = store.write([make_record(1, amount=Decimal("0.50")), make_record(2)])  # same content: a replay
    changed = store.write([make_record(1, amount=Decimal("0.7")), make_record(2, output_tokens=21), make_record(3)])

    assert (replay.written, replay.duplicates, replay.conflicts) == (0, 2, 0)
    assert (changed.written, changed.duplicates, changed.conflicts) == (1, 2, 2)
    assert [record.amount for record in store.query(UsageQuery()) if record.span_id == make_record(1).span_id] == [
        Decimal("0.5")
    ]  # the stored record is kept
    assert store.totals("production", "2026-11").amount == Decimal("0.5") + 2 * make_record(2).amount


def test_two_versions_of_one_identity_in_one_batch_are_a_conflict(store: DynamoDBStore) -> None:
    result = store.write([make_record(1), make_record(1, pricing_status="unpriced", amount=None), make_record(1)])
    assert (result.written, result.duplicates, result.conflicts) == (1, 2, 1)


def test_the_first_conflict_is_logged_once(store: DynamoDBStore, caplog: pytest.LogCaptureFixture,
                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr(dynamodb_store, "_logged", set())  # the once-per-process warnings given so far
    store.write([make_record(1, amount=Decimal("0.5"))])
    with caplog.at_level(logging.WARNING, logger="otel_ai_cost"):
        store.write([make_record(1, amount=Decimal("0.6"))])
        store.write([make_record(1, amount=Decimal("0.8"))])
    warnings = [r.getMessage() for r in caplog.records if "different content" in r.getMessage()]
    assert len(warnings) == 1
    assert "0.5" in warnings[0] and "0.6" in warnings[0] and make_record(1).span_id in warnings[0]
