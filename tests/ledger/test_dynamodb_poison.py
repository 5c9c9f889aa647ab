"""The DynamoDB store under bad input: every error a write can raise is one of the three classes of
`ledger/store.py` (`InvalidRecord` this record, `RetryBatch` this batch, `StoreUnavailable` the store), against
the real moto server on loopback (and botocore's Stubber only for what no emulator produces)."""

from __future__ import annotations

import random
import socket
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from dynamodb_server import FAKE_CREDENTIALS, REGION, LoopbackDynamoDB, make_record

from otel_ai_cost.ledger import dynamodb_retry as retry
from otel_ai_cost.ledger import dynamodb_schema as schema
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.store import InvalidRecord, RetryBatch, StoreUnavailable, UsageQuery

HUGE = 100_000  # characters: the review's model name


pytestmark = pytest.mark.usefixtures("aws_environment")  # conftest.py: no real AWS credentials or config


@pytest.fixture
def make_store(server: LoopbackDynamoDB) -> Iterator[Callable[..., DynamoDBStore]]:
    stores: list[DynamoDBStore] = []

    def make(**options: Any) -> DynamoDBStore:
        options.setdefault("shards", 2)
        store = DynamoDBStore(f"poison-{uuid.uuid4().hex[:12]}", region=REGION, endpoint_url=server.endpoint_url,
                              **options)  # fmt: skip
        stores.append(store)
        store.ensure_table()
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., DynamoDBStore]) -> DynamoDBStore:
    return make_store()


def stored_ids(store: DynamoDBStore) -> list[int]:
    return sorted(int(record.span_id, 16) - 1 for record in store.query(UsageQuery()))


def transactions_sent(store: DynamoDBStore) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    store.client.meta.events.register(
        "provide-client-params.dynamodb.TransactWriteItems", lambda params, **_: calls.append(params)
    )
    return calls


# ------------------------------------------------------------------------------- refused before anything is sent


def test_a_100000_character_model_is_refused_alone_before_sending(store: DynamoDBStore) -> None:
    sent = transactions_sent(store)
    with pytest.raises(InvalidRecord, match="response_model") as raised:
        store.write([make_record(1, response_model="m" * HUGE)])
    assert raised.value.key == make_record(1).key  # the caller can drop exactly this record
    assert not sent  # refused by the store, not by DynamoDB
    assert store.write([make_record(2)]).written == 1  # the store is fine: the next record goes in
    assert stored_ids(store) == [2]


# Within the ledger's text bounds (200 characters) a provider and a model can still make the running total's sort
# key PM#{provider}#{model} longer than DynamoDB's 1,024 bytes: 4-byte characters, or `#` escaped to 3 bytes.
WIDE_PROVIDER_MODEL = [{"provider": "\U0001d11e" * 150, "response_model": "\U0001d11e" * 150},
                       {"provider": "#" * 180, "response_model": "#" * 180}]  # fmt: skip


@pytest.mark.parametrize("fields", WIDE_PROVIDER_MODEL, ids=["4-byte characters", "escaped"])
def test_a_sort_key_over_dynamodbs_byte_limit_is_refused_before_sending(
    store: DynamoDBStore, fields: dict[str, str]
) -> None:
    sent = transactions_sent(store)
    with pytest.raises(InvalidRecord, match=r"provider, response_model or request_model.*SK.*limit 1024 bytes"):
        store.write([make_record(1, **fields)])
    assert not sent
    assert store.write([make_record(2)]).written == 1


KEY_FIELDS = [
    # field, value, the key that would be too long (the ledger's own bounds, limits.py, are not applied here)
    ("response_model", "m" * HUGE, "GSI2PK"),
    ("request_model", "r" * HUGE, "GSI3PK"),
    ("job_id", "j" * 3000, "GSI4PK"),
    ("batch_id", "b" * 3000, "GSI5PK"),
    ("cicd_run_id", "c" * 3000, "GSI6PK"),
    ("environment", "e" * 1100, "SK"),  # the registry's sort key ENV#{env}: 1024 bytes
    ("provider", "p" * 1100, "SK"),  # the running total's sort key PM#{provider}#{model}
    ("team", "t" * 1100, "SK"),  # TEAM#{team}
    ("operation_type", "o" * 1100, "SK"),  # OP#{operation_type}
]


@pytest.mark.parametrize(("name", "value", "key"), KEY_FIELDS, ids=[field[0] for field in KEY_FIELDS])
def test_every_key_is_checked_against_dynamodbs_byte_limits(name: str, value: str, key: str) -> None:
    with pytest.raises(InvalidRecord, match=rf"{name}.*{key}.*limit (1024|2048) bytes"):
        schema.validate(make_record(1, **{name: value}))


def test_keys_count_bytes_not_characters_and_the_escaping() -> None:
    # 700 x "é" is 1,400 bytes; 400 x "#" escapes to 1,200 bytes: both over the sort key's 1,024.
    for team in ("é" * 700, "#" * 400):
        with pytest.raises(InvalidRecord, match="team"):
            schema.validate(make_record(1, team=team))
    schema.validate(make_record(1, team="t" * 1000))  # TEAM# + 1000 bytes fits


@pytest.mark.parametrize("name", ["team", "response_model", "service", "operation", "note"])
def test_text_that_is_not_unicode_is_refused_not_a_crash(store: DynamoDBStore, name: str) -> None:
    with pytest.raises(InvalidRecord, match=name):
        schema.validate(make_record(1, **{name: "bad \udc80 surrogate"}))  # DynamoDB's layer on its own
    with pytest.raises(InvalidRecord, match=name):
        store.write([make_record(1, **{name: "bad \udc80 surrogate"})])


def test_a_tag_that_is_not_unicode_is_refused(store: DynamoDBStore) -> None:
    with pytest.raises(InvalidRecord, match="tags"):
        schema.validate(make_record(1, tags={"k\udc80": "v"}))
    with pytest.raises(InvalidRecord, match="tag key"):
        store.write([make_record(1, tags={"k\udc80": "v"})])


@pytest.mark.parametrize("name", ["input_tokens", "output_tokens", "web_search_requests", "schema_version"])
def test_an_integer_beyond_a_dynamodb_number_is_refused(store: DynamoDBStore, name: str) -> None:
    with pytest.raises(InvalidRecord, match=rf"{name}.*38"):
        schema.validate(make_record(1, **{name: 10**40}))  # DynamoDB's layer on its own
    with pytest.raises(InvalidRecord, match=name):
        store.write([make_record(1, **{name: 10**40})])


@pytest.mark.parametrize("name", ["amount", "computed_amount"])
def test_an_amount_that_would_make_a_large_running_total_unrepresentable_is_refused(name: str) -> None:
    # 25 decimal places: a total of 10^14 USD would then need 39 digits, and every later write to it would fail.
    with pytest.raises(InvalidRecord, match=rf"{name} has more than 24 decimal places"):
        schema.validate(make_record(1, **{name: Decimal("0.0000000000000000000000001")}))
    fine_amounts = ("0.100000000000000000000000", "1E-24", "12345.000000000000000000000001", "0.000014999999999999999")
    for fine in fine_amounts:
        schema.validate(make_record(1, **{name: Decimal(fine)}))


# --------------------------------------------------------------------- what still arrives from DynamoDB itself


@pytest.fixture
def no_precheck(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's own key checks switched off, so that DynamoDB's ValidationException arrives (the safety net)."""
    monkeypatch.setattr(schema, "check_keys", lambda record: None)


@pytest.mark.usefixtures("no_precheck")
def test_a_validation_exception_on_a_single_record_write_rejects_that_record(store: DynamoDBStore) -> None:
    store.write([make_record(1)])  # the environment is registered
    with pytest.raises(InvalidRecord, match="ValidationException") as raised:
        store.write([make_record(2, **WIDE_PROVIDER_MODEL[0])])
    assert raised.value.key == make_record(2).key
    assert stored_ids(store) == [1]


@pytest.mark.usefixtures("no_precheck")
def test_a_validation_exception_in_a_batch_asks_for_a_split_and_the_split_isolates_the_record(
    store: DynamoDBStore,
) -> None:
    store.write([make_record(1)])
    batch = [make_record(2), make_record(3, **WIDE_PROVIDER_MODEL[0]), make_record(4)]
    with pytest.raises(RetryBatch, match="split"):
        store.write(batch)
    # What a caller does with RetryBatch: the records one at a time. Only the bad one is rejected.
    outcomes = []
    for record in batch:
        try:
            store.write([record])
            outcomes.append("stored")
        except InvalidRecord:
            outcomes.append("rejected")
    assert outcomes == ["stored", "rejected", "stored"]
    assert stored_ids(store) == [1, 2, 4]
    assert store.totals("production", "2026-11").calls == 3  # nothing of the refused record was counted


# ------------------------------------------------------------------------------------ the store, not the record


def test_an_endpoint_that_refuses_connections_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = DynamoDBStore.from_url(
        f"dynamodb://ledger?region={REGION}&endpoint_url=http://127.0.0.1:{port}&deadline_s=2"
    )
    try:
        with pytest.raises(StoreUnavailable):
            store.write([make_record(1)])
    finally:
        store.close()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def stubbed() -> Iterator[tuple[DynamoDBStore, Stubber]]:
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url="http://127.0.0.1:9", **FAKE_CREDENTIALS)
    policy = retry.RetryPolicy(
        max_attempts=3, base_delay_s=0.01, max_delay_s=0.02, sleep=Sleeps(), rng=random.Random(1)
    )
    store = DynamoDBStore("ledger", client=client, shards=2, retry_policy=policy)
    with Stubber(client) as stub:
        yield store, stub
    store.close()


def cancelled(*reasons: str) -> dict[str, Any]:
    return {
        "service_error_code": "TransactionCanceledException",
        "service_message": f"Transaction cancelled [{', '.join(reasons)}]",
        "http_status_code": 400,
        "modeled_fields": {"Message": "cancelled", "CancellationReasons": [{"Code": reason} for reason in reasons]},
    }


def test_conflicts_beyond_the_retry_budget_ask_for_a_retry_of_the_batch(stubbed: tuple[DynamoDBStore, Stubber]) -> None:
    store, stub = stubbed
    stub.add_response("update_item", {})
    for _ in range(3):
        stub.add_client_error("transact_write_items", **cancelled("None", "TransactionConflict", *["None"] * 8))
    with pytest.raises(RetryBatch, match="TransactionConflict"):
        store.write([make_record(1)])


@pytest.mark.parametrize("reason", ["ValidationError", "ItemCollectionSizeLimitExceeded"])
def test_a_cancellation_for_a_limit_rejects_a_single_record(
    stubbed: tuple[DynamoDBStore, Stubber], reason: str
) -> None:
    store, stub = stubbed
    stub.add_response("update_item", {})
    stub.add_client_error("transact_write_items", **cancelled(reason, *["None"] * 8))
    with pytest.raises(InvalidRecord, match=reason):
        store.write([make_record(1)])


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("AccessDeniedException", 400),
        ("ResourceNotFoundException", 400),
        ("ThrottlingException", 400),
        ("InternalServerError", 500),
        ("SomethingNewException", 400),  # a code this version does not know: the store, never a crash
    ],
)
def test_store_level_errors_are_unavailable(stubbed: tuple[DynamoDBStore, Stubber], code: str, status: int) -> None:
    store, stub = stubbed
    stub.add_response("update_item", {})
    for _ in range(3):
        stub.add_client_error("transact_write_items", code, "no", http_status_code=status)
    with pytest.raises(StoreUnavailable, match=code):
        store.write([make_record(1)])


# ------------------------------------------------------------------------------------------------------ reads


@pytest.mark.parametrize(
    "query",
    [
        UsageQuery(model="m" * HUGE),
        UsageQuery(environment="e" * 3000),
        UsageQuery(job_id="j" * 3000),
        UsageQuery(environment="e" * 3000, trace_id="0" * 32),
    ],
    ids=["model", "environment", "job", "trace in environment"],
)
def test_a_query_for_a_key_no_record_can_have_is_empty_not_an_error(store: DynamoDBStore, query: UsageQuery) -> None:
    store.write([make_record(1)])
    sent = keys_sent(store)
    assert list(store.query(query)) == []
    assert store.aggregate(query, ["model"]) == []
    assert all(len(key.encode()) <= 2048 for key in sent)  # nothing DynamoDB would refuse is asked


def test_totals_of_an_environment_no_record_can_have_are_zero(store: DynamoDBStore) -> None:
    sent = keys_sent(store)
    assert store.totals("e" * 3000, "2026-11").calls == 0
    assert all(len(key.encode()) <= 1024 for key in sent)


def keys_sent(store: DynamoDBStore) -> list[str]:
    """Every key value of every Query and GetItem the store sends."""
    keys: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        keys.extend(value["S"] for value in params.get("ExpressionAttributeValues", {}).values() if "S" in value)
        keys.extend(value["S"] for value in params.get("Key", {}).values())

    for operation in ("Query", "GetItem"):
        store.client.meta.events.register(f"provide-client-params.dynamodb.{operation}", record)
    return keys


def test_a_cancellation_reason_this_version_does_not_know_is_unavailable(
    stubbed: tuple[DynamoDBStore, Stubber],
) -> None:
    store, stub = stubbed
    stub.add_response("update_item", {})
    stub.add_client_error("transact_write_items", **cancelled("SomethingNew", *["None"] * 8))
    with pytest.raises(StoreUnavailable, match="SomethingNew"):
        store.write([make_record(1)])


def test_throttled_cancellations_beyond_the_budget_are_unavailable(stubbed: tuple[DynamoDBStore, Stubber]) -> None:
    store, stub = stubbed
    stub.add_response("update_item", {})
    for _ in range(3):
        stub.add_client_error("transact_write_items", **cancelled("ThrottlingError", *["None"] * 8))
    with pytest.raises(StoreUnavailable, match="ThrottlingError"):
        store.write([make_record(1)])
