"""`GET /v1/usage` of the ledger service: aggregation in the shape of the seeds' `/ai_usage`, paged records, and
400s that name the bad parameter. Records are written to a real SQLite store, then queried over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
import requests

from otel_ai_cost.ledger.record import LedgerRecord
from otel_ai_cost.ledger.service import LedgerService, ServiceConfig
from otel_ai_cost.ledger.sqlite_store import SQLiteStore

T1 = datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)
T2 = datetime(2026, 11, 21, 14, 0, tzinfo=timezone.utc)


def record(n: int, timestamp: datetime, **fields: Any) -> LedgerRecord:
    values: dict[str, Any] = {
        "environment": "production",
        "service": "billing",
        "provider": "openai",
        "request_model": "gpt-4o-mini",
        "input_tokens": 1000,
        "output_tokens": 200,
        "amount": Decimal("0.00027"),
        **fields,
    }
    return LedgerRecord(trace_id=f"{n:032x}", span_id=f"{n:016x}", timestamp=timestamp, **values)


RECORDS = [
    record(1, T1, job_id="job-1"),
    record(2, T1, job_id="job-1", amount=Decimal("0.1")),  # same timestamp as 1: paging must not lose either
    record(3, T1.replace(hour=10), service="search", provider="anthropic", request_model="claude-haiku-4-5"),
    record(4, T2, amount=None, pricing_status="unpriced"),
    record(5, T2, environment="staging", amount=Decimal("5")),
]


@pytest.fixture
def service(tmp_path) -> Iterator[LedgerService]:
    store = SQLiteStore(tmp_path / "ledger.db")
    store.write(RECORDS)
    with LedgerService(store, ServiceConfig(port=0)) as service:
        yield service


def get(ledger: LedgerService, **params: str) -> requests.Response:
    return requests.get(f"{ledger.url}/v1/usage", params=params, timeout=10)


def test_aggregation_by_day_and_service_is_exact(service):
    response = get(service, environment="production", aggregation="day,service")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    document = response.json()
    assert document["aggregation"] == ["day", "service"]
    assert document["query"] == {"environment": "production"}
    rows = {(row["day"], row["service"]): row for row in document["rows"]}
    assert set(rows) == {("2026-11-20", "billing"), ("2026-11-20", "search"), ("2026-11-21", "billing")}
    billing = rows[("2026-11-20", "billing")]
    assert billing == {
        "day": "2026-11-20",
        "service": "billing",
        "amount": "0.10027",
        "currency": "USD",
        "calls": 2,
        "unpriced_calls": 0,
        "unknown_cost_calls": 0,
        "input_tokens": 2000,
        "output_tokens": 400,
        "cache_read_input_tokens": 0,
        "cache_write_input_tokens": 0,
        "reasoning_output_tokens": 0,
    }
    assert rows[("2026-11-21", "billing")]["unpriced_calls"] == 1
    assert rows[("2026-11-21", "billing")]["unknown_cost_calls"] == 1  # unpriced: unknown, not $0
    assert "lower bound" in rows[("2026-11-21", "billing")]["note"] and "note" not in billing
    assert rows[("2026-11-21", "billing")]["amount"] == "0"
    assert document["summary"]["amount"] == "0.10054"  # the staging record is not there: one environment only
    assert document["summary"]["calls"] == 4


def test_filters_narrow_the_aggregation(service):
    rows = get(service, start_date="2026-11-21", end_date="2026-11-21", aggregation="environment").json()["rows"]
    assert {row["environment"]: row["amount"] for row in rows} == {"production": "0", "staging": "5"}
    rows = get(service, job_id="job-1", aggregation="model").json()["rows"]
    assert [(row["model"], row["calls"], row["amount"]) for row in rows] == [("gpt-4o-mini", 2, "0.10027")]
    rows = get(service, model="claude-haiku-4-5", provider="anthropic", aggregation="month,provider").json()["rows"]
    assert [(row["month"], row["provider"], row["calls"]) for row in rows] == [("2026-11", "anthropic", 1)]


def test_records_are_listed_oldest_first_a_page_at_a_time(service):
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10):
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        document = get(service, **params).json()
        seen += document["records"]
        cursor = document["next_cursor"]
        if cursor is None:
            break
    assert [r["trace_id"][-1] for r in seen] == ["1", "2", "3", "4", "5"]
    assert seen[0]["amount"] == "0.00027" and seen[3]["amount"] is None
    assert seen[0]["timestamp"] == "2026-11-20T09:30:00.000000Z"
    assert seen[0]["day"] == "2026-11-20"


def test_records_page_through_ties_of_one_timestamp(service):
    first = get(service, limit="1").json()
    second = get(service, limit="1", cursor=first["next_cursor"]).json()
    assert [first["records"][0]["span_id"], second["records"][0]["span_id"]] == [f"{1:016x}", f"{2:016x}"]


def test_record_filters(service):
    records = get(service, environment="staging").json()["records"]
    assert [(r["environment"], r["amount"]) for r in records] == [("staging", "5")]
    assert get(service, trace_id=f"{3:032X}").json()["records"][0]["service"] == "search"
    assert get(service, service="nope").json() == {"query": {"service": "nope"}, "records": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"start_date": "2026-13-01"}, "start_date"),
        ({"end_date": "yesterday"}, "end_date"),
        ({"start_date": "2026-11-21", "end_date": "2026-11-20"}, "start_date"),
        ({"aggregation": "day,colour"}, "aggregation"),
        ({"aggregation": ""}, "aggregation"),
        ({"aggregation": "day,day"}, "aggregation"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"aggregation": "day", "limit": "5"}, "limit"),
        ({"enviroment": "production"}, "enviroment"),  # a typo must not widen the query to every environment
        ({"environment": ""}, "environment"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(service, params, parameter):
    response = get(service, **params)
    assert response.status_code == 400
    assert response.json()["parameter"] == parameter
    assert response.json()["error"]


def test_a_repeated_parameter_is_refused(service):
    response = requests.get(f"{service.url}/v1/usage?environment=a&environment=b", timeout=10)
    assert response.status_code == 400
    assert response.json()["parameter"] == "environment"
