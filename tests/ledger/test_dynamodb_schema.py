"""Store URLs, retention, keys and the item codec of the DynamoDB store (no server needed)."""

from __future__ import annotations

import zlib
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from dynamodb_server import make_record

from otel_ai_cost.contract import Record
from otel_ai_cost.ledger import dynamodb_schema as schema
from otel_ai_cost.ledger.dynamodb_store import DynamoDBStore, Retention, parse_url

DOC = Path(__file__).resolve().parents[2] / "docs" / "ledger.md"


pytestmark = pytest.mark.usefixtures("aws_environment")  # conftest.py: no real AWS credentials or config


# ---------------------------------------------------------------------------------------------------- URLs


def test_a_full_url_is_parsed() -> None:
    settings = parse_url(
        "dynamodb://ai-usage-metrics?region=us-east-1&endpoint_url=http://127.0.0.1:8000&shards=8"
        "&ttl_days=production:400,development:30&records_per_tx=10"
    )
    assert settings.table == "ai-usage-metrics"
    assert settings.region == "us-east-1"
    assert settings.endpoint_url == "http://127.0.0.1:8000"
    assert settings.shards == 8
    assert settings.records_per_transaction == 10
    assert settings.retention == Retention({"production": 400, "development": 30})


def test_defaults() -> None:
    settings = parse_url("dynamodb://Ledger.Table_1")
    assert (settings.table, settings.region, settings.endpoint_url) == ("Ledger.Table_1", None, None)
    assert (settings.shards, settings.records_per_transaction) == (16, 25)
    assert settings.retention.days("anything") is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///x.db", "not a dynamodb:// URL"),
        ("dynamodb://ab", "table name 'ab'"),
        ("dynamodb://table/extra", "expected dynamodb://TABLE"),
        ("dynamodb://table?regoin=us-east-1", "unknown parameter 'regoin'"),
        ("dynamodb://table?shards=4&shards=8", "shards given twice"),
        ("dynamodb://table?shards=0", "shards must be a whole number from 1 to 100"),
        ("dynamodb://table?shards=many", "shards must be a whole number"),
        ("dynamodb://table?region=", "region is empty"),
        ("dynamodb://table?endpoint_url=localhost:8000", "endpoint_url must be http"),
        ("dynamodb://table?ttl_days=production", "expected ENVIRONMENT:DAYS"),
        ("dynamodb://table?ttl_days=production:soon", "ttl_days for production"),
        ("dynamodb://table?ttl_days=a:1,a:2", "a given twice"),
        ("dynamodb://table?records_per_tx=100", "records_per_tx must be a whole number from 1 to 99"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_url(url)


def test_a_region_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="no AWS region"):
        DynamoDBStore.from_url("dynamodb://ledger")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    store = DynamoDBStore.from_url("dynamodb://ledger")
    assert store.region == "eu-west-1"
    store.close()


def test_retention_per_environment() -> None:
    retention = Retention.parse("production:400,development:0,*:30")
    assert retention.days("production") == 400
    assert retention.days("development") is None  # 0: never expire
    assert retention.days("staging") == 30
    assert Retention.parse("90").days("x") == 90
    record = make_record(1, environment="production")
    assert retention.expires_at(record) == int(record.timestamp.timestamp()) + 400 * 86400
    assert "production: 400 days" in retention.describe() and "other environments: 30 days" in retention.describe()


# ---------------------------------------------------------------------------------------------------- keys


def test_keys_are_environment_first_and_shard_last() -> None:
    record = make_record(3, job_id="job-9", batch_id="b", cicd_run_id="77")
    item = schema.record_item(record, shard=5, expires_at=None)
    assert item["PK"] == {"S": f"ENV#production#TRACE#{record.trace_id}"}
    assert item["SK"] == {"S": f"SPAN#{record.span_id}"}
    assert item["GSISK"] == {"S": f"2026-11-22T10:03:00.000000Z#{record.trace_id}#{record.span_id}"}
    assert item["GSI1PK"] == {"S": "ENV#production#S5"}
    assert item["GSI2PK"] == {"S": "ENV#production#MODEL#gpt-4o-2024-08-06#S5"}
    assert item["GSI3PK"] == {"S": "ENV#production#REQMODEL#gpt-4o#S5"}
    assert item["GSI4PK"] == {"S": "ENV#production#JOB#job-9#S5"}
    assert item["GSI5PK"] == {"S": "ENV#production#BATCH#b#S5"}
    assert item["GSI6PK"] == {"S": "ENV#production#CIRUN#77#S5"}
    assert schema.totals_partition("production", "2026-11", 3) == "ENV#production#TOTAL#2026-11#S3"
    assert schema.escape("a#b%c") == "a%23b%25c"


def test_sparse_indexes_leave_out_records_without_the_attribute() -> None:
    item = schema.record_item(make_record(1, request_model="m", response_model="m"), shard=0, expires_at=None)
    assert {"GSI1PK", "GSI2PK"} <= item.keys()
    assert not {"GSI3PK", "GSI4PK", "GSI5PK", "GSI6PK"} & item.keys()


def test_shards_are_stable_and_even() -> None:
    assert schema.shard_of("0" * 32, "1" * 16, 16) == zlib.crc32(("0" * 32 + "1" * 16).encode()) % 16
    counts = Counter(schema.shard_of(f"{n * 7919:032x}", f"{n:016x}", 16) for n in range(3200))
    assert len(counts) == 16 and max(counts.values()) < 1.3 * 200 and min(counts.values()) > 0.7 * 200


# ----------------------------------------------------------------------------------------------------- codec


def test_items_hold_numbers_as_exact_text_and_leave_defaults_out() -> None:
    record = make_record(1, amount=Decimal("0.000000000000000000123"), duration_ms=12.5, tags={"k": "v"})
    item = schema.record_item(record, shard=0, expires_at=1_900_000_000)
    assert item["amount"] == {"N": "0.000000000000000000123"}
    assert item["duration_ms"] == {"N": "12.5"}
    assert item["expires_at"] == {"N": "1900000000"}
    assert item["tags"] == {"M": {"k": {"S": "v"}}}
    assert "job_id" not in item and "note" not in item  # "" is not written
    assert all(isinstance(next(iter(v.values())), (str, dict)) for v in item.values())  # never a float
    assert schema.record_from_item(item) == record
    unpriced = make_record(2, amount=None)
    assert "amount" not in schema.record_item(unpriced, shard=0, expires_at=None)
    assert schema.record_from_item(schema.record_item(unpriced, shard=0, expires_at=None)).amount is None


def test_item_size_follows_dynamodb_rules() -> None:
    assert schema.item_size({"ab": {"S": "xyz"}}) == 5
    assert schema.item_size({"n": {"N": "12345"}}) == 1 + 4
    typical = schema.record_item(make_record(1, job_id="job-1"), shard=3, expires_at=1_900_000_000)
    assert 500 < schema.item_size(typical) < 1024  # one write unit (two in a transaction); see docs/ledger.md


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"trace_id": "XYZ"}, "trace_id must be 32"),
        ({"span_id": "0" * 15}, "span_id must be 16"),
        ({"environment": ""}, "environment is empty"),
        ({"timestamp": datetime(2026, 1, 1)}, "timezone-aware"),  # naive: the point of the test
        ({"amount": Decimal("NaN")}, "finite"),
        ({"amount": Decimal("1" * 39)}, "39 significant digits"),
        ({"amount": Decimal("1E+130")}, "outside DynamoDB's range"),
        ({"duration_ms": float("inf")}, "duration_ms"),
    ],
)
def test_records_dynamodb_would_reject_or_round_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(schema.InvalidRecord, match=message):
        schema.validate(make_record(1, **fields))


def test_thirty_eight_digits_are_accepted_exactly() -> None:
    amount = Decimal("12345678901234567890.123456789012345678")  # 38 significant digits, 18 decimal places
    schema.validate(make_record(1, amount=amount))
    assert schema.number_text(amount) == "12345678901234567890.123456789012345678"
    assert (
        schema.record_from_item(schema.record_item(make_record(1, amount=amount), shard=0, expires_at=None)).amount
        == amount
    )


def test_every_record_field_is_a_contract_name() -> None:
    names = {value for key, value in vars(Record).items() if key.isupper()}
    assert set(schema._FIELD_NAMES) | {Record.DAY} == names


# ------------------------------------------------------------------------------------------------------ docs


def test_the_document_names_every_key_and_index() -> None:
    text = DOC.read_text()
    for index in schema.INDEXES:
        assert f"`{index.name}`" in text and f"`{index.attribute}`" in text
    for fragment in ("ENV#{env}#TRACE#{trace_id}", "SPAN#{span_id}", "ENV#{env}#TOTAL#{period}#S{shard}", "GSISK",
                     "expires_at", "ENVIRONMENTS", "TransactWriteItems", "UnprocessedItems"):  # fmt: skip
        assert fragment in text, fragment


def test_timestamps_sort_as_text() -> None:
    early = make_record(1, timestamp=datetime(2026, 11, 22, 9, 59, 59, 999999, tzinfo=timezone.utc))
    late = make_record(2, timestamp=datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc))
    assert schema.time_sort_key(early) < schema.time_sort_key(late)
    low, high = schema.time_bounds("2026-11-22", "2026-11-22")
    assert low is not None and high is not None
    assert low < schema.time_sort_key(early) < schema.time_sort_key(late) < high
