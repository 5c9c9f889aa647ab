"""Retry paths of the DynamoDB store with botocore's Stubber: no emulator throttles, cancels for conflicts or
leaves `UnprocessedItems`, so the responses DynamoDB gives in those cases are played to a real boto3 client."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber
from dynamodb_server import FAKE_CREDENTIALS, REGION, make_record

from otel_ai_cost.ledger import dynamodb_retry as retry
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore
from otel_ai_cost.ledger.store import InvalidRecord, RetryBatch, StoreUnavailable

pytestmark = pytest.mark.usefixtures("aws_environment")  # conftest.py: no real AWS credentials or config


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def policy(sleeps: Sleeps) -> retry.RetryPolicy:
    return retry.RetryPolicy(max_attempts=5, base_delay_s=0.1, max_delay_s=0.8, sleep=sleeps, rng=random.Random(7))


@pytest.fixture
def client() -> Any:
    # A real client; the Stubber answers before anything reaches this (unroutable) endpoint.
    return boto3.client("dynamodb", region_name=REGION, endpoint_url="http://127.0.0.1:9", **FAKE_CREDENTIALS)


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def store(client: Any, policy: retry.RetryPolicy) -> Iterator[DynamoDBStore]:
    store = DynamoDBStore("ledger", client=client, shards=4, retry_policy=policy)
    yield store
    store.close()


def sent(client: Any, operation: str) -> list[dict[str, Any]]:
    """Records the parameters of every `operation` call (botocore event, before the Stubber answers)."""
    calls: list[dict[str, Any]] = []
    client.meta.events.register(f"provide-client-params.dynamodb.{operation}", lambda params, **_: calls.append(params))
    return calls


def cancelled(*reasons: str) -> dict[str, Any]:
    """The parts of a TransactionCanceledException response that DynamoDB sends."""
    return {
        "service_error_code": "TransactionCanceledException",
        "service_message": f"Transaction cancelled, please refer cancellation reasons for specific reasons "
        f"[{', '.join(reasons)}]",
        "http_status_code": 400,
        "response_meta": {},
        "modeled_fields": {
            "Message": "Transaction cancelled",
            "CancellationReasons": [{"Code": reason} for reason in reasons],
        },
    }


def registered(stub: Stubber) -> None:
    stub.add_response("update_item", {})  # the environment registry, once per environment


def test_throttled_transactions_are_retried_with_growing_jittered_backoff(
    stub: Stubber, store: DynamoDBStore, sleeps: Sleeps
) -> None:
    registered(stub)
    stub.add_client_error("transact_write_items", "ProvisionedThroughputExceededException", http_status_code=400)
    stub.add_client_error("transact_write_items", "ThrottlingException", http_status_code=400)
    stub.add_response("transact_write_items", {})

    result = store.write([make_record(1), make_record(2)])

    assert (result.written, result.duplicates, result.retries) == (2, 0, 2)
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.2 and 0 <= sleeps[1] <= 0.4  # full jitter under base * 2**attempt


def test_conflict_cancellations_are_retried_on_another_totals_shard(
    client: Any, stub: Stubber, store: DynamoDBStore, sleeps: Sleeps
) -> None:
    transactions = sent(client, "TransactWriteItems")
    registered(stub)
    stub.add_client_error("transact_write_items", **cancelled("None", "TransactionConflict", "None", "None", "None"))
    stub.add_client_error("transact_write_items", **cancelled("ThrottlingError", "None", "None", "None", "None"))
    stub.add_response("transact_write_items", {})

    result = store.write([make_record(1)])

    assert (result.written, result.retries, len(sleeps)) == (1, 2, 2)
    assert len({t["ClientRequestToken"] for t in transactions}) == 3  # nothing applied: new actions, new token
    assert all(t["TransactItems"][0] == transactions[0]["TransactItems"][0] for t in transactions)  # same Put
    totals_keys = [tuple(a["Update"]["Key"]["PK"]["S"] for a in t["TransactItems"][1:]) for t in transactions]
    assert all(pk.startswith("ENV#production#TOTAL#") for keys in totals_keys for pk in keys)


def test_a_throttled_request_is_resent_unchanged_with_its_token(
    client: Any, stub: Stubber, store: DynamoDBStore, sleeps: Sleeps
) -> None:
    transactions = sent(client, "TransactWriteItems")
    registered(stub)
    stub.add_client_error("transact_write_items", "InternalServerError", http_status_code=500)
    stub.add_response("transact_write_items", {})
    assert store.write([make_record(1)]).written == 1
    assert transactions[0] == transactions[1]  # it may have committed: the same token makes the resend safe


def test_a_condition_failure_marks_that_record_a_duplicate_and_resends_the_rest(
    client: Any, stub: Stubber, store: DynamoDBStore, sleeps: Sleeps
) -> None:
    transactions = sent(client, "TransactWriteItems")
    registered(stub)
    # 3 puts then 4 total updates; the second record is already stored.
    stub.add_client_error("transact_write_items", **cancelled("None", "ConditionalCheckFailed", *["None"] * 5))
    stub.add_response("transact_write_items", {})

    result = store.write([make_record(1), make_record(2), make_record(3)])

    assert (result.written, result.duplicates, result.retries) == (2, 1, 0)
    assert not sleeps  # progress, not a retry: no backoff
    resent = transactions[1]["TransactItems"]
    puts = [a["Put"]["Item"]["trace_id"]["S"] for a in resent if "Put" in a]
    assert puts == [make_record(1).trace_id, make_record(3).trace_id]
    added_calls = {a["Update"]["ExpressionAttributeValues"][":calls"]["N"] for a in resent if "Update" in a}
    assert added_calls == {"2"}  # the totals of the re-sent transaction leave the duplicate out
    assert transactions[0]["ClientRequestToken"] != transactions[1]["ClientRequestToken"]


def test_an_exhausted_budget_raises_store_unavailable_with_retry_after(
    stub: Stubber, store: DynamoDBStore, policy: retry.RetryPolicy, sleeps: Sleeps
) -> None:
    registered(stub)
    for _ in range(policy.max_attempts):
        stub.add_client_error("transact_write_items", "ProvisionedThroughputExceededException", http_status_code=400)

    with pytest.raises(StoreUnavailable, match="still failing after 5 attempts") as raised:
        store.write([make_record(1)])

    assert raised.value.retry_after_s == policy.retry_after_s == 1.0
    assert len(sleeps) == policy.max_attempts - 1


def test_the_time_budget_stops_retries_before_the_attempt_budget(stub: Stubber, client: Any, sleeps: Sleeps) -> None:
    class Longest(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    policy = retry.RetryPolicy(max_attempts=50, base_delay_s=1.0, max_delay_s=30.0, deadline_s=3.5, sleep=sleeps,
                               rng=Longest())  # fmt: skip
    store = DynamoDBStore("ledger", client=client, retry_policy=policy)
    registered(stub)
    for _ in range(2):
        stub.add_client_error("transact_write_items", **cancelled("TransactionConflict"))
    with pytest.raises(RetryBatch, match=r"after 2 attempts.*TransactionConflict"):  # this batch, not the store
        store.write([make_record(1)])
    assert sleeps == [2.0]  # the next wait (4 s) would end past the 3.5 s deadline: give up instead of sleeping


def test_a_validation_cancellation_is_not_retried(stub: Stubber, store: DynamoDBStore, sleeps: Sleeps) -> None:
    registered(stub)
    stub.add_client_error("transact_write_items", **cancelled("ValidationError", "None", "None", "None", "None"))
    with pytest.raises(InvalidRecord, match="transaction cancelled: ValidationError"):  # this record, alone
        store.write([make_record(1)])
    assert not sleeps


def test_a_missing_table_is_unavailable_at_once(stub: Stubber, store: DynamoDBStore, sleeps: Sleeps) -> None:
    stub.add_client_error("update_item", "ResourceNotFoundException", "Requested resource not found")
    with pytest.raises(StoreUnavailable, match="ledger init"):
        store.write([make_record(1)])
    assert not sleeps


def test_throttled_reads_are_retried_too(stub: Stubber, store: DynamoDBStore, sleeps: Sleeps) -> None:
    stub.add_response("get_item", {})  # environment registry: never written with more shards
    for shard in range(4):
        if shard == 2:
            stub.add_client_error("query", "ThrottlingException", http_status_code=400)
        stub.add_response("query", {"Items": []})
    assert store.totals("production", "2026-11").calls == 0
    assert len(sleeps) == 1


def test_connection_errors_are_transient(policy: retry.RetryPolicy, sleeps: Sleeps) -> None:
    answers: list[Any] = [EndpointConnectionError(endpoint_url="http://x"), {"ok": 1}]

    def operation() -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert retry.call(policy, "Query", operation) == ({"ok": 1}, 1)
    assert len(sleeps) == 1


def test_unprocessed_items_are_resent_until_none_is_left(client: Any, stub: Stubber, policy: retry.RetryPolicy) -> None:
    requests = [{"PutRequest": {"Item": {"PK": {"S": f"p{n}"}, "SK": {"S": "s"}}}} for n in range(30)]
    stub.add_response(
        "batch_write_item",
        {"UnprocessedItems": {"ledger": requests[3:6]}},
        expected_params={"RequestItems": {"ledger": requests[:25]}},  # at most 25 per call
    )
    stub.add_response("batch_write_item", {}, expected_params={"RequestItems": {"ledger": requests[3:6]}})
    stub.add_response("batch_write_item", {}, expected_params={"RequestItems": {"ledger": requests[25:]}})

    assert retry.batch_write(client, "ledger", requests, policy) == 1


def test_unprocessed_items_that_never_go_through_raise_store_unavailable(
    client: Any, stub: Stubber, policy: retry.RetryPolicy
) -> None:
    requests = [{"PutRequest": {"Item": {"PK": {"S": "p"}, "SK": {"S": "s"}}}}]
    for _ in range(policy.max_attempts):
        stub.add_response("batch_write_item", {"UnprocessedItems": {"ledger": requests}})
    with pytest.raises(StoreUnavailable, match="1 unprocessed items"):
        retry.batch_write(client, "ledger", requests, policy)


def test_botocore_retries_are_configured_explicitly() -> None:
    store = DynamoDBStore.from_url(f"dynamodb://ledger?region={REGION}&endpoint_url=http://127.0.0.1:9")
    try:
        config = store.client.meta.config
        assert config.retries == {"mode": "standard", "total_max_attempts": retry.BOTOCORE_ATTEMPTS}
        assert (config.connect_timeout, config.read_timeout) == (2, 5)  # bounded by the write's deadline
    finally:
        store.close()


def test_botocore_retries_are_counted_in_the_write_result(stub: Stubber, store: DynamoDBStore) -> None:
    registered(stub)
    stub.add_response("transact_write_items", {"ResponseMetadata": {"RetryAttempts": 2}})
    assert store.write([make_record(1)]).retries == 2
