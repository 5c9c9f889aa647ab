"""The DynamoDB store against a real DynamoDB-API server (moto) on loopback, through boto3 over HTTP."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Context, Decimal
from typing import Any

import pytest
from dynamodb_server import BASE_TIME, REGION, LoopbackDynamoDB, make_record

from otel_ai_cost.contract import PricingStatus
from otel_ai_cost.ledger.dynamodb_schema import InvalidRecord
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore, Retention, SchemaMismatch, init_table
from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.store import StoreUnavailable, UsageQuery

WIDE = Context(prec=500)  # for computing expected sums independently of the store's arithmetic


pytestmark = pytest.mark.usefixtures("aws_environment")  # conftest.py: no real AWS credentials or config


@pytest.fixture
def make_store(server: LoopbackDynamoDB) -> Iterator[Callable[..., DynamoDBStore]]:
    """Stores on fresh tables (a unique name per test keeps tests independent and moto's tables small)."""
    stores: list[DynamoDBStore] = []

    def make(table: str | None = None, *, create: bool = True, **options: Any) -> DynamoDBStore:
        options.setdefault("shards", 4)
        store = DynamoDBStore(
            table or f"ledger-{uuid.uuid4().hex[:12]}", region=REGION, endpoint_url=server.endpoint_url, **options
        )
        stores.append(store)
        if create:
            store.ensure_table()
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., DynamoDBStore]) -> DynamoDBStore:
    return make_store()


class Calls:
    """Every DynamoDB API call a client makes (operation name and parameters), from botocore's own events."""

    def __init__(self, client: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        client.meta.events.register("provide-client-params.dynamodb", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, dict(params)))

    def named(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == operation]

    def clear(self) -> None:
        self.calls.clear()


def ids(records: Any) -> list[int]:
    return [int(record.span_id, 16) - 1 for record in records]


def exact_sum(amounts: Any) -> Decimal:
    total = Decimal(0)
    for amount in amounts:
        total = WIDE.add(total, amount)
    return total


# ------------------------------------------------------------------------------------------------ table init


def test_init_table_creates_the_exact_schema_with_on_demand_billing_and_ttl(server: LoopbackDynamoDB) -> None:
    table = f"ledger-{uuid.uuid4().hex[:12]}"
    url = f"dynamodb://{table}?region={REGION}&endpoint_url={server.endpoint_url}&ttl_days=production:400,*:30"

    summary = init_table(url)

    assert "created" in summary and "production: 400 days" in summary and "other environments: 30 days" in summary
    raw = server.client()
    description = raw.describe_table(TableName=table)["Table"]
    assert description["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {(d["AttributeName"], d["AttributeType"]) for d in description["AttributeDefinitions"]} == {
        (name, "S") for name in ("PK", "SK", "GSISK", "GSI1PK", "GSI2PK", "GSI3PK", "GSI4PK", "GSI5PK", "GSI6PK")
    }
    gsis = {gsi["IndexName"]: gsi for gsi in description["GlobalSecondaryIndexes"]}
    assert set(gsis) == {"env-time", "model-time", "request-model-time", "job-time", "batch-time", "ci-run-time"}
    for number, name in enumerate(["env-time", "model-time", "request-model-time", "job-time", "batch-time",
                                   "ci-run-time"], start=1):  # fmt: skip
        assert gsis[name]["KeySchema"] == [
            {"AttributeName": f"GSI{number}PK", "KeyType": "HASH"},
            {"AttributeName": "GSISK", "KeyType": "RANGE"},
        ]
        assert gsis[name]["Projection"] == {"ProjectionType": "ALL"}
    ttl = raw.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}

    again = init_table(url)  # idempotent: checks instead of failing
    assert "already exists, schema checked" in again


def test_ensure_table_refuses_a_table_with_another_schema(server: LoopbackDynamoDB, make_store: Any) -> None:
    table = f"foreign-{uuid.uuid4().hex[:12]}"
    server.client().create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    store = make_store(table, create=False)
    with pytest.raises(SchemaMismatch, match=r"primary key.*index env-time is missing"):
        store.ensure_table()


def test_a_missing_table_makes_the_store_unavailable_not_lossy(make_store: Any) -> None:
    store = make_store(create=False)
    with pytest.raises(StoreUnavailable, match=r"ResourceNotFoundException.*ledger init"):
        store.write([make_record(1)])


# -------------------------------------------------------------------------------------------- access paths


def test_every_access_path_returns_exactly_its_records_from_its_own_index(store: DynamoDBStore) -> None:
    records = [
        make_record(0, job_id="job-1", batch_id="batch-a"),
        make_record(1, job_id="job-1", cicd_run_id="run-77"),
        make_record(
            2,
            batch_id="batch-a",
            provider="anthropic",
            request_model="claude-sonnet-4-5",
            response_model="claude-sonnet-4-5",
        ),
        make_record(3, cicd_run_id="run-77", request_model="gpt-4o-mini", response_model=""),
        make_record(4, trace_id=f"{0:032x}", timestamp=BASE_TIME + timedelta(days=1)),  # second span of trace 0
        make_record(5, timestamp=BASE_TIME + timedelta(days=2), request_model="gpt-4o", response_model="gpt-4o"),
    ]
    assert store.write(records).written == 6
    calls = Calls(store.client)

    def run(query: UsageQuery, *indexes: str | None) -> list[int]:
        calls.clear()
        found = [record.span_id for record in store.query(query)]
        used = {params.get("IndexName") for params in calls.named("Query")}
        registry_reads = {None} if None not in indexes else set()  # the environment registry is in the table
        assert used - registry_reads == set(indexes), f"{query} read {used}"
        assert not calls.named("Scan")
        return [int(span, 16) - 1 for span in found]

    day = date(2026, 11, 22)
    model_indexes = ("model-time", "request-model-time")  # both model indexes, always together
    assert run(UsageQuery(environment="production", start_day=day, end_day=day), "env-time") == [0, 1, 2, 3]
    assert run(UsageQuery(environment="production", start_day=date(2026, 11, 23)), "env-time") == [4, 5]
    # model: the response model, else the request model, or the request model (a response model that differs)
    assert run(UsageQuery(environment="production", model="gpt-4o-2024-08-06"), *model_indexes) == [0, 1, 4]
    assert run(UsageQuery(environment="production", model="gpt-4o"), *model_indexes) == [0, 1, 4, 5]
    assert run(UsageQuery(environment="production", model="gpt-4o-mini", end_day=day), *model_indexes) == [3]
    assert run(UsageQuery(environment="production", provider="anthropic", model="claude-sonnet-4-5"),
               *model_indexes) == [2]  # fmt: skip
    assert run(UsageQuery(environment="production", job_id="job-1"), "job-time") == [0, 1]
    assert run(UsageQuery(environment="production", batch_id="batch-a"), "batch-time") == [0, 2]
    assert run(UsageQuery(environment="production", cicd_run_id="run-77"), "ci-run-time") == [1, 3]
    assert run(UsageQuery(environment="production", trace_id=f"{0:032X}"), None) == [0, 4]  # table, time order
    assert run(UsageQuery(environment="production", job_id="job-1", start_day=date(2026, 11, 23)), "job-time") == []


def test_day_ranges_are_inclusive_utc_days(store: DynamoDBStore) -> None:
    edges = [
        datetime(2026, 11, 21, 23, 59, 59, 999999, tzinfo=timezone.utc),
        datetime(2026, 11, 22, 0, 0, tzinfo=timezone.utc),
        datetime(2026, 11, 22, 23, 59, 59, 999999, tzinfo=timezone.utc),
        datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc),
    ]
    store.write([make_record(n, timestamp=moment) for n, moment in enumerate(edges)])
    one_day = date(2026, 11, 22)
    assert ids(store.query(UsageQuery(environment="production", start_day=one_day, end_day=one_day))) == [1, 2]
    assert ids(store.query(UsageQuery(environment="production", end_day=one_day))) == [0, 1, 2]
    assert ids(store.query(UsageQuery(environment="production", start_day=one_day))) == [1, 2, 3]
    assert list(store.query(UsageQuery(start_day=date(2026, 11, 23), end_day=one_day))) == []  # reversed: empty
    assert list(store.query(UsageQuery(trace_id="not-a-trace-id#ENV#x"))) == []


def test_a_query_without_environment_covers_every_environment_oldest_first(store: DynamoDBStore) -> None:
    store.write([make_record(n, environment=("production", "staging", "ci")[n % 3]) for n in range(9)])
    assert ids(store.query(UsageQuery())) == list(range(9))
    assert ids(store.query(UsageQuery(job_id=""))) == list(range(9))  # "no job id" is a filter, not an index key
    assert store.environments() == {"ci": 4, "production": 4, "staging": 4}


def test_records_round_trip_every_field(store: DynamoDBStore) -> None:
    record = make_record(
        7,
        operation_type="receipt_extraction",
        cache_read_input_tokens=5,
        cache_write_5m_input_tokens=6,
        cache_write_1h_input_tokens=7,
        reasoning_output_tokens=8,
        web_search_requests=2,
        cost_source="provider",
        pricing_version="2026-11-01",
        pricing_tier="batch",
        duration_ms=1234.567,
        outcome="error",
        error_type="RateLimitError",
        job_id="j",
        batch_id="b",
        team="ml",
        user_id="u-1",
        tags={"feature": "receipts", "pr": "42"},
        cicd_pipeline_name="ci",
        cicd_run_id="99",
        cicd_run_url="https://ci.example/99",
        cicd_task_name="test",
        vcs_repository_url="https://git.example/r",
        vcs_revision="abc123",
        vcs_ref_name="main",
        vcs_change_id="17",
        record_source="manual",
        note="dashboard figure",
    )
    store.write([record])
    assert list(store.query(UsageQuery(environment="production"))) == [record]


# ------------------------------------------------------------------------------------- idempotency, totals


def test_the_same_batch_twice_stores_and_counts_each_record_once(store: DynamoDBStore) -> None:
    records = [make_record(n) for n in range(30)]
    first = store.write(records)
    totals_after_first = store.totals("production", "2026-11")
    second = store.write(records)
    mixed = store.write([*records[:5], make_record(30), make_record(30)])  # old, new, and a repeat inside a batch

    assert (first.written, first.duplicates) == (30, 0)
    assert (second.written, second.duplicates) == (0, 30)
    assert (mixed.written, mixed.duplicates) == (1, 6)
    assert totals_after_first.calls == 30
    totals = store.totals("production", "2026-11")
    assert totals.calls == 31
    assert totals.amount == exact_sum(r.amount for r in [*records, make_record(30)])
    assert len(list(store.query(UsageQuery(environment="production")))) == 31


def test_concurrent_writers_of_overlapping_batches_count_each_record_once(make_store: Any) -> None:
    table = f"ledger-{uuid.uuid4().hex[:12]}"
    make_store(table)
    records = [make_record(n, amount=Decimal(f"0.{n:04d}00000000000017")) for n in range(64)]
    slices = [records[k * 8 : k * 8 + 24] for k in range(8)]  # every record is in up to three batches
    results = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(slices))

    def writer(batch: list[LedgerRecord]) -> None:
        store = make_store(table, create=False, records_per_transaction=6)  # its own client, like another process
        barrier.wait()
        try:
            results.append(store.write(batch))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(batch,)) for batch in slices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert sum(r.written for r in results) == 64
    assert sum(r.duplicates for r in results) == sum(len(batch) for batch in slices) - 64
    reader = make_store(table, create=False)
    totals = reader.totals("production", "2026-11-22")
    assert totals.calls == 64
    assert totals.amount == exact_sum(r.amount for r in records)
    assert ids(reader.query(UsageQuery(environment="production"))) == list(range(64))


def test_amounts_with_many_decimal_places_add_up_exactly(server: LoopbackDynamoDB, store: DynamoDBStore) -> None:
    amounts = [
        Decimal("0.000000123456789012"),
        Decimal("1234.567890123456789"),
        Decimal("0.1"),
        Decimal("0.2"),
        Decimal("9999999.999999999999"),  # 19 significant digits (the ledger's bound: at most 10^7 USD a record)
        Decimal("0.000000000001"),
    ]
    records = [make_record(n, amount=amount) for n, amount in enumerate(amounts * 5)]
    store.write(records[:13])
    store.write(records[13:])  # two writes: the totals are added to by several transactions
    expected = exact_sum(r.amount for r in records)

    assert expected == Decimal("50006174.339451234567890060")  # 26 significant digits, never a float
    totals = store.totals("production", "2026-11")
    assert totals.amount == expected
    assert sum(totals.by_provider_model.values(), Decimal(0)) == expected
    assert [r.amount for r in store.query(UsageQuery(environment="production"))] == [r.amount for r in records]
    # On the wire the record's Number is the exact decimal text.
    raw = server.client().get_item(
        TableName=store.table, Key={"PK": {"S": f"ENV#production#TRACE#{0:032x}"}, "SK": {"S": f"SPAN#{1:016x}"}}
    )
    assert raw["Item"]["amount"] == {"N": "0.000000123456789012"}


def test_an_amount_dynamodb_would_round_is_refused_before_anything_is_written(store: DynamoDBStore) -> None:
    too_precise = Decimal("0.123456789012345678901234567890123456789")  # 39 significant digits
    with pytest.raises(InvalidRecord, match="amount has more than"):  # decimal places: refused, never rounded
        store.write([make_record(1), make_record(2, amount=too_precise)])
    assert list(store.query(UsageQuery())) == []
    assert store.totals("production", "2026-11").calls == 0


def test_day_and_month_totals_per_environment_and_provider_model(store: DynamoDBStore) -> None:
    november_22 = [make_record(n, amount=Decimal("0.25")) for n in range(3)]
    november_23 = [
        make_record(10, timestamp=datetime(2026, 11, 23, 1, tzinfo=timezone.utc), amount=Decimal("1.5"),
                    provider="anthropic", request_model="claude-haiku-4-5", response_model=""),
        make_record(11, timestamp=datetime(2026, 11, 23, 2, tzinfo=timezone.utc), amount=None,
                    pricing_status=PricingStatus.UNPRICED.value),
    ]  # fmt: skip
    december = [make_record(20, timestamp=datetime(2026, 12, 1, tzinfo=timezone.utc), amount=Decimal("7"))]
    staging = [make_record(30, environment="staging", amount=Decimal("100"))]
    store.write([*november_22, *november_23, *december, *staging])
    calls = Calls(store.client)

    month = store.totals("production", "2026-11")
    assert (month.amount, month.calls, month.unpriced_calls) == (Decimal("2.25"), 5, 1)
    assert month.by_provider_model == {
        ("openai", "gpt-4o-2024-08-06"): Decimal("0.75"),
        ("anthropic", "claude-haiku-4-5"): Decimal("1.5"),
    }
    # running totals only: the total items' partitions, never a record, never an index
    queried = [params["ExpressionAttributeValues"][":pk"]["S"] for params in calls.named("Query")]
    assert queried and all("#TOTAL#2026-11#S" in pk for pk in queried)
    assert len(queried) == store.shards and not any("IndexName" in params for params in calls.named("Query"))

    day = store.totals("production", "2026-11-23")
    assert (day.amount, day.calls, day.unpriced_calls) == (Decimal("1.5"), 2, 1)
    assert store.totals("production", "2026-12").amount == Decimal("7")
    assert store.totals("staging", "2026-11").amount == Decimal("100")
    nothing = store.totals("nowhere", "2026-11")
    assert (nothing.amount, nothing.calls, nothing.by_provider_model) == (Decimal(0), 0, {})
    with pytest.raises(ValueError, match="period"):
        store.totals("production", "November")


def test_aggregate_groups_exactly_like_the_records_say(store: DynamoDBStore) -> None:
    records = [
        make_record(
            n,
            team=("ml", "ops")[n % 2],
            amount=Decimal("0.000000000003") * (n + 1),
            timestamp=BASE_TIME + timedelta(hours=20 * n),
        )
        for n in range(6)
    ]
    store.write(records)
    rows = store.aggregate(UsageQuery(environment="production"), ["day", "team"])
    expected: dict[tuple[str, str], list[LedgerRecord]] = {}
    for record in records:
        expected.setdefault((record.day, record.team), []).append(record)
    assert [tuple(value for _, value in row.group) for row in rows] == sorted(expected)
    for row in rows:
        group = expected[(row.group[0][1], row.group[1][1])]
        assert row.calls == len(group)
        assert row.amount == exact_sum(r.amount for r in group)
        assert row.input_tokens == 100 * len(group)
    (everything,) = store.aggregate(UsageQuery(environment="production"), [])
    assert everything.calls == 6 and everything.amount == exact_sum(r.amount for r in records)
    with pytest.raises(ValueError, match="cannot group by colour"):
        store.aggregate(UsageQuery(), ["colour"])


# -------------------------------------------------------------------------------------------------- isolation


def test_one_environment_never_sees_another_environments_records(server: LoopbackDynamoDB, make_store: Any) -> None:
    store = make_store(shards=1)  # one shard: colliding keys would really share a partition
    shared = {"job_id": "job-1", "batch_id": "b-1", "cicd_run_id": "run-1", "trace_id": f"{5:032x}"}
    production = [make_record(n, **shared) for n in range(3)]
    staging = [make_record(n + 10, environment="staging", **shared) for n in range(3)]
    # Names crafted to collide if '#' in a name were not escaped: env "a" + model "b#MODEL#c" vs env "a#MODEL#b" +
    # model "c" would both be ENV#a#MODEL#b#MODEL#c#S0.
    crafted = [
        make_record(20, environment="a", request_model="b#MODEL#c", response_model=""),
        make_record(21, environment="a#MODEL#b", request_model="c", response_model=""),
    ]
    store.write([*production, *staging, *crafted])

    for query in (
        UsageQuery(environment="production"),
        UsageQuery(environment="production", job_id="job-1"),
        UsageQuery(environment="production", batch_id="b-1"),
        UsageQuery(environment="production", cicd_run_id="run-1"),
        UsageQuery(environment="production", trace_id=f"{5:032x}"),
        UsageQuery(environment="production", model="gpt-4o"),
    ):
        assert {r.environment for r in store.query(query)} == {"production"}, query
        assert ids(store.query(query)) == [0, 1, 2]
    assert ids(store.query(UsageQuery(environment="a", model="b#MODEL#c"))) == [20]
    assert ids(store.query(UsageQuery(environment="a#MODEL#b", model="c"))) == [21]
    keys = {
        item["GSI2PK"]["S"]
        for item in server.client().scan(TableName=store.table)["Items"]  # a scan in a test only, to see the keys
        if "trace_id" in item and item["environment"]["S"].startswith("a")
    }
    assert keys == {"ENV#a#MODEL#b%23MODEL%23c#S0", "ENV#a%23MODEL%23b#MODEL#c#S0"}
    assert store.totals("production", "2026-11").calls == 3 and store.totals("staging", "2026-11").calls == 3
    assert [row.calls for row in store.aggregate(UsageQuery(environment="staging"), ["environment"])] == [3]


# ------------------------------------------------------------------------------------------------- sharding


def test_one_environment_day_is_spread_over_the_shards_and_read_back_whole(
    server: LoopbackDynamoDB, make_store: Any
) -> None:
    store = make_store(shards=8)
    records = [make_record(n, timestamp=BASE_TIME + timedelta(seconds=n)) for n in range(48)]
    store.write(records)
    raw = server.client()
    per_shard = []
    for shard in range(8):
        response = raw.query(
            TableName=store.table,
            IndexName="env-time",
            KeyConditionExpression="GSI1PK = :pk",
            ExpressionAttributeValues={":pk": {"S": f"ENV#production#S{shard}"}},
        )
        per_shard.append(response["Count"])
    assert sum(per_shard) == 48
    assert sum(1 for count in per_shard if count) >= 7 and max(per_shard) <= 14  # spread, not piled up
    assert ids(store.query(UsageQuery(environment="production", start_day=date(2026, 11, 22)))) == list(range(48))


def test_fewer_shards_later_still_read_what_more_shards_wrote(make_store: Any) -> None:
    table = f"ledger-{uuid.uuid4().hex[:12]}"
    wide = make_store(table, shards=16)
    records = [make_record(n) for n in range(24)]
    wide.write(records)
    narrow = make_store(table, create=False, shards=2)
    assert ids(narrow.query(UsageQuery(environment="production"))) == list(range(24))
    assert narrow.totals("production", "2026-11").calls == 24
    narrow.write([make_record(24)])
    assert narrow.environments() == {"production": 16}  # the registry keeps the largest shard count
    assert narrow.totals("production", "2026-11").calls == 25


def test_transactions_carry_many_records_and_merge_their_totals(store: DynamoDBStore) -> None:
    calls = Calls(store.client)
    store.write([make_record(n) for n in range(60)])
    transactions = calls.named("TransactWriteItems")
    assert len(transactions) == 3  # 25 + 25 + 10 records
    for params in transactions:
        actions = params["TransactItems"]
        puts = [a for a in actions if "Put" in a]
        updates = [a for a in actions if "Update" in a]
        assert len(actions) <= 100 and len(puts) in (25, 10)
        assert all(a["Put"]["ConditionExpression"] == "attribute_not_exists(PK)" for a in puts)
        assert len(updates) == 8  # day and month: overall, the one model, team and operation type: deltas merged
        calls_added = {a["Update"]["ExpressionAttributeValues"][":calls"]["N"] for a in updates}
        assert calls_added == {str(len(puts))}
    assert store.totals("production", "2026-11").calls == 60


# ---------------------------------------------------------------------------------------------------- TTL


def test_records_expire_per_environment_and_totals_never(server: LoopbackDynamoDB, make_store: Any) -> None:
    retention = Retention({"production": 400, "development": 0}, default_days=30)
    store = make_store(retention=retention)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    records = [
        make_record(1, environment="production", timestamp=now),
        make_record(2, environment="staging", timestamp=now),
        make_record(3, environment="development", timestamp=now),
        make_record(4, environment="staging", timestamp=now - timedelta(days=31)),  # already past retention
    ]
    result = store.write(records)
    # Record 4 would expire at once: refused, as a replay of an expired record must be (next test).
    assert (result.written, result.duplicates, result.pruned) == (3, 1, 1)
    items = server.client().scan(TableName=store.table)["Items"]  # a scan in a test only, to see every item
    expires = {item["trace_id"]["S"]: item.get("expires_at", {}).get("N") for item in items if "trace_id" in item}
    epoch = int(now.timestamp())
    assert expires == {
        f"{1:032x}": str(epoch + 400 * 86400),
        f"{2:032x}": str(epoch + 30 * 86400),
        f"{3:032x}": None,
    }
    assert all("expires_at" not in item for item in items if "trace_id" not in item)  # totals and registry
    # An expired record is not returned (DynamoDB deletes it lazily) but stays in the running totals.
    assert ids(store.query(UsageQuery(environment="staging"))) == [2]
    assert store.totals("staging", now.strftime("%Y-%m-%d")).calls == 1
    assert store.totals("staging", (now - timedelta(days=31)).strftime("%Y-%m-%d")).calls == 0


def test_a_record_replayed_after_its_item_expired_is_not_counted_twice(
    server: LoopbackDynamoDB, make_store: Any
) -> None:
    """DynamoDB's TTL deletes an expired record item but keeps its running totals; a replay of that record (a
    collector retry, a re-import of usage.jsonl) must not add its amount to the totals a second time."""
    store = make_store(retention=Retention({}, default_days=30))
    now = datetime.now(timezone.utc).replace(microsecond=0)
    day = now - timedelta(days=30) + timedelta(seconds=5)  # expires 5 s from now
    record = make_record(7, environment="staging", timestamp=day, amount=Decimal("0.25"))
    assert store.write([record]).written == 1
    period = day.strftime("%Y-%m")
    before = store.totals("staging", period)
    # It expires, and DynamoDB's TTL deletes the item (what its background sweep does; moto has none).
    client = server.client()
    [item] = [item for item in client.scan(TableName=store.table)["Items"] if "trace_id" in item]
    client.delete_item(TableName=store.table, Key={"PK": item["PK"], "SK": item["SK"]})
    time.sleep(max(0.0, int(item["expires_at"]["N"]) + 1 - time.time()))

    result = store.write([record])

    assert (result.written, result.duplicates, result.pruned) == (0, 1, 1)
    assert store.totals("staging", period) == before
    assert before.calls == 1 and before.amount == Decimal("0.25")


# -------------------------------------------------------------------------------------------------- repair


def test_rebuild_totals_recomputes_a_month_from_its_records(server: LoopbackDynamoDB, store: DynamoDBStore) -> None:
    store.write([make_record(n, amount=Decimal("0.010000000001")) for n in range(12)])
    before = store.totals("production", "2026-11")
    day_before = store.totals("production", "2026-11-22")
    server.damage_totals(store.table, "ADD calls :x, amount :x")
    assert store.totals("production", "2026-11") != before

    written = store.rebuild_totals("production", "2026-11")

    assert written == 8  # day and month: overall, per model, per team, per operation type
    assert store.totals("production", "2026-11") == before
    assert store.totals("production", "2026-11-22") == day_before
    assert before.calls == 12 and before.amount == Decimal("0.120000000012")


def test_a_closed_store_refuses_work(store: DynamoDBStore) -> None:
    store.close()
    with pytest.raises(StoreUnavailable, match="closed"):
        store.write([make_record(1)])
