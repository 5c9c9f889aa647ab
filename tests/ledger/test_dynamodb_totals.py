"""Running totals per team and per operation type on DynamoDB: the ledger service's scoped /metrics gauges read
them in a bounded number of requests, however many records the month holds, and the figures are exact."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from decimal import Context, Decimal
from typing import Any

import pytest
from dynamodb_server import REGION, LoopbackDynamoDB, make_record

from otel_ai_cost.contract import PricingStatus
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.record import LedgerRecord

WIDE = Context(prec=500)  # expected sums, independently of the store's arithmetic
TEAMS = ("search", "billing", "", "ops#1")  # "" = calls without a team; "#" must be escaped in keys
OPERATION_TYPES = ("chat", "embeddings", "")


pytestmark = pytest.mark.usefixtures("aws_environment")  # conftest.py: no real AWS credentials or config


@pytest.fixture
def store(server: LoopbackDynamoDB) -> Iterator[DynamoDBStore]:
    store = DynamoDBStore(f"totals-{uuid.uuid4().hex[:12]}", region=REGION, endpoint_url=server.endpoint_url, shards=4)
    store.ensure_table()
    yield store
    store.close()


def records(start: int, count: int) -> list[LedgerRecord]:
    made = []
    for n in range(start, start + count):
        unpriced = n % 7 == 0
        made.append(
            make_record(
                n,
                team=TEAMS[n % len(TEAMS)],
                operation_type=OPERATION_TYPES[n % len(OPERATION_TYPES)],
                amount=None if unpriced else Decimal(f"0.{n:04d}00000000000001"),
                pricing_status=PricingStatus.UNPRICED.value if unpriced else PricingStatus.PRICED.value,
                response_model=f"model-{n % 3}",
            )
        )
    return made


def expected(written: list[LedgerRecord], field: str) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for record in written:
        sums[getattr(record, field)] = WIDE.add(sums[getattr(record, field)], record.amount or Decimal(0))
    return {key: value.normalize(WIDE) for key, value in sorted(sums.items())}


def normalized(sums: dict[str, Decimal]) -> dict[str, Decimal]:
    return {key: value.normalize(WIDE) for key, value in sums.items()}


class Requests:
    """Counts every DynamoDB request a client sends (botocore's event for each API call)."""

    def __init__(self, client: Any) -> None:
        self.count = 0
        client.meta.events.register("provide-client-params.dynamodb", self._seen)

    def _seen(self, **_: Any) -> None:
        self.count += 1


def test_totals_by_team_and_operation_type_are_exact_in_a_bounded_number_of_requests(store: DynamoDBStore) -> None:
    written = records(1, 12)
    store.write(written)
    requests = Requests(store.client)
    small = store.totals("production", "2026-11")
    few = requests.count

    more = records(100, 120)
    store.write(more)
    written += more
    requests.count = 0
    month = store.totals("production", "2026-11")

    assert requests.count == few  # 120 more records, not one more request
    assert few <= 1 + store.shards  # the registry, then one Query per shard
    assert normalized(month.by_team) == expected(written, "team")
    assert normalized(month.by_operation_type) == expected(written, "operation_type")
    assert set(month.by_team) == set(TEAMS) and set(month.by_operation_type) == set(OPERATION_TYPES)
    assert sum(month.by_team.values(), Decimal(0)) == month.amount  # every call in exactly one team
    assert small.by_team != month.by_team
    day = store.totals("production", "2026-11-22")
    on_the_22nd = [record for record in written if record.day == "2026-11-22"]
    assert normalized(day.by_team) == expected(on_the_22nd, "team")


def test_rebuild_totals_rebuilds_the_team_and_operation_type_totals(
    server: LoopbackDynamoDB, store: DynamoDBStore
) -> None:
    store.write(records(1, 30))
    before = store.totals("production", "2026-11")
    server.damage_totals(store.table, "ADD amount :x")
    assert store.totals("production", "2026-11").by_team != before.by_team

    store.rebuild_totals("production", "2026-11")

    assert store.totals("production", "2026-11") == before


def test_many_teams_in_one_batch_stay_within_the_transaction_action_limit(store: DynamoDBStore) -> None:
    transactions: list[Any] = []
    store.client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems", lambda params, **_: transactions.append(params)
    )
    batch = [make_record(n, team=f"team-{n}", operation_type=f"op-{n}", response_model=f"m-{n}") for n in range(15)]
    assert store.write(batch).written == 15
    # Each record adds to 8 total items of its own: 9 actions a record, split under DynamoDB's 100 per transaction.
    assert len(transactions) >= 2 and all(len(t["TransactItems"]) <= 100 for t in transactions)
    month = store.totals("production", "2026-11")
    assert len(month.by_team) == 15 and len(month.by_operation_type) == 15
